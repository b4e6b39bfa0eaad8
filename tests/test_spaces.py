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
