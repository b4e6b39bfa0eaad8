"""The InterCode Bash reward's pure parts, checked against hand-computed and original-behaviour values."""

import math

import pytest

from leap_gym.envs.intercode_bash import reward as rw


def test_tfidf_matches_scikit_learn_defaults():
    # idf(hello) = ln(3/3)+1 = 1, idf(world) = idf(there) = ln(3/2)+1; l2-normalised rows
    idf = math.log(1.5) + 1
    expected = 1 / (1 + idf * idf)
    assert rw.tfidf_similarity("hello world", "Hello there") == pytest.approx(expected, abs=1e-15)
    assert rw.tfidf_similarity("aa bb", "cc dd x") == 0.0
    for a, b in (("5\n", "5\n"), ("a b c", "a b c d")):  # 1-char tokens vanish: empty vocabulary
        with pytest.raises(ValueError):
            rw.tfidf_similarity(a, b)


def test_similarity_falls_back_to_equality():
    assert rw.similarity_part("5\n", "5\n") == (1.0, 0.33)
    assert rw.similarity_part("5\n", "6\n") == (0.0, 0.0)
    assert rw.similarity_part("", "") == (1.0, 0.33)
    assert rw.similarity_part("x", None) == (0.0, 0.0)
    assert rw.similarity_part("same words here", "same words here")[1] == 0.33


def test_reward_parts_and_exact_maximum():
    assert rw.combine(0.33, 0.33, 0.33) == 1.0  # the success test is exact equality, as in the original
    p1, miss, extra, same = rw.file_diff_part([("a", "M")], [("a", "M")])
    assert (p1, miss, extra, same) == (0.33, [], [], [])
    assert rw.file_diff_part([("a", "M"), ("b", "??")], [("a", "M")])[0] == 0.05
    p1, miss, extra, same = rw.file_diff_part([("c", "D"), ("b", "??")], [("a", "M"), ("b", "??")])
    assert p1 == 0.0 and miss == [("a", "M")] and extra == [("c", "D")] and same == ["b"]


def test_original_status_parser_quirk_and_fixed_parser():
    text = ' M testbed/a.txt\n?? "testbed/sp ace"\n'
    with pytest.raises(IndexError):
        rw.parse_status(text)  # odd token count, as the original
    assert rw.parse_status(" M a\n?? b/\n") == [("a", "M"), ("b/", "??")]
    assert rw.parse_status_lines(text) == [("testbed/a.txt", "M"), ("testbed/sp ace", "??")]
    assert rw.parse_status_lines('?? "caf\\303\\251 \\"q\\""\n') == [('café "q"', "??")]
