import pytest

from leap_gym.spaces import UnicodeText


def test_contains_any_unicode_string():
    space = UnicodeText()
    for s in ["", "go to shelf 1", "héllo wörld ✓ 中文", "line\nbreak\ttab", "[SEP] click[Buy Now]"]:
        assert space.contains(s)
    assert not space.contains(3)
    assert not space.contains(b"bytes")
    assert not UnicodeText(max_length=3).contains("abcd")


def test_sample_is_seeded_and_contained():
    a, b = UnicodeText(seed=1), UnicodeText(seed=1)
    samples = [a.sample() for _ in range(5)]
    assert samples == [b.sample() for _ in range(5)]
    assert all(a.contains(s) for s in samples)


def test_shared_memory_round_trip_is_live_and_copies_to_a_tuple():
    import copy

    from gymnasium.vector.utils import create_shared_memory, read_from_shared_memory, write_to_shared_memory

    space = UnicodeText(max_length=8)
    shm = create_shared_memory(space, n=2)
    view = read_from_shared_memory(space, shm, n=2)
    for texts in (("", "x"), ("héllo", "日本語テキスト"), ("\udcff surr", "12345678")):
        for i, text in enumerate(texts):
            write_to_shared_memory(space, i, text, shm)
        assert tuple(view) == texts and copy.deepcopy(view) == texts and type(copy.deepcopy(view)) is tuple
    with pytest.raises(ValueError, match="cannot hold"):
        write_to_shared_memory(space, 0, "123456789", shm)
