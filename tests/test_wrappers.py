import gymnasium as gym

from leap_gym.wrappers import StudentView
from tests.toy_env import TOY_ID


def test_student_view_drops_privileged_and_marked_keys():
    env = StudentView(gym.make(TOY_ID))
    obs, info = env.reset(seed=0)
    assert "privileged" not in info and "secret" not in info
    assert info["task"] and info["admissible_actions"]
    _, _, _, _, info = env.step(info["admissible_actions"][0])
    assert "privileged" not in info and "secret" not in info


def test_student_view_vector_sync_and_async():
    from leap_gym.wrappers import StudentViewVector

    for cls, kw in ((gym.vector.SyncVectorEnv, {}), (gym.vector.AsyncVectorEnv, {"shared_memory": False})):
        env = StudentViewVector(cls([lambda: gym.make(TOY_ID) for _ in range(2)], **kw))
        obs, info = env.reset(seed=0)
        assert len(obs) == 2 and "privileged" not in info and "secret" not in info and "_secret" not in info
        _, _, _, _, info = env.step(tuple(a[0] for a in info["admissible_actions"]))
        assert "privileged" not in info and "won" in info
        env.close()
