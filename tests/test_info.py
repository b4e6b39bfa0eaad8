"""The info contract's privileged and recorded keys (``leap_gym.info``)."""

from leap_gym.info import record_info, strip_privileged


def test_strip_privileged_handles_vector_masks():
    info = {"privileged": [1, 2], "_privileged": [True, True], "won": [False, True], "_won": [True, True]}
    assert strip_privileged(info) == {"won": [False, True], "_won": [True, True]}


def test_record_info_keeps_privileged_and_drops_bulk():
    info = {"privileged": {"x": 1}, "task_id": "a", "admissible_actions": ["a"] * 100, "won": False}
    assert record_info(info) == {"privileged": {"x": 1}, "task_id": "a", "won": False}
