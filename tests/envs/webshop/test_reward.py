"""The reward, component by component, with worked examples written from the original's formula."""

from difflib import SequenceMatcher

import pytest

from leap_gym.envs.webshop.reward import (
    compute_reward,
    get_noun_extractor,
    heuristic_nouns,
    normalize_color,
    option_matches,
    token_set_ratio,
    type_reward,
)

CAT = "Clothing, Shoes & Jewelry › Men › Shoes › Outdoor › Hiking Boots"


def product(**kw):
    p = {"name": "TrailMax Men's Waterproof Hiking Boot", "Title": "TrailMax Men's Waterproof Hiking Boot",
         "query": "hiking boots", "product_category": CAT, "Attributes": ["waterproof", "rubber sole"],
         "BulletPoints": ["Lace up closure"], "Description": "A sturdy boot.",
         "title_nouns": ["trailmax", "hiking", "boot"]}
    p.update(kw)
    return p


def goal(**kw):
    g = {"name": "TrailMax Men's Waterproof Hiking Boot", "query": "hiking boots", "product_category": CAT,
         "attributes": ["waterproof", "rubber sole"], "goal_options": ["black", "10"], "price_upper": 80.0,
         "title_nouns": ["trailmax", "hiking", "boot"]}
    g.update(kw)
    return g


def test_perfect_purchase_scores_one():
    r, b = compute_reward(product(), goal(), 59.99, {"color": "black", "size": "10"})
    assert r == 1.0
    assert b["r_type"] == 1.0 and b["r_att"] == 1.0 and b["r_option"] == 1.0 and b["r_price"] == 1.0
    assert b["w_att"] == pytest.approx(2 / 5) and b["w_option"] == pytest.approx(2 / 5)
    assert b["w_price"] == pytest.approx(1 / 5)


def test_price_over_bound_loses_one_share():
    r, b = compute_reward(product(), goal(), 80.01, ["black", "10"])
    assert r == pytest.approx(4 / 5) and b["r_price"] == 0.0
    assert compute_reward(product(), goal(), 80.0, ["black", "10"])[0] == 1.0  # <= is inclusive


def test_missing_option_and_no_options_chosen():
    assert compute_reward(product(), goal(), 50, ["black"])[0] == pytest.approx(4 / 5)
    r, b = compute_reward(product(), goal(), 50, [])
    assert r == pytest.approx(3 / 5) and b["r_option"] == 0.0


def test_goal_without_options_has_no_option_term():
    r, b = compute_reward(product(), goal(goal_options=[]), 50, ["black"])
    assert r == 1.0 and b["r_option"] is None and b["w_option"] is None
    assert b["w_price"] == pytest.approx(1 / 3)


def test_attribute_by_fuzzy_attribute_and_by_text_substring():
    p = product(Attributes=["long lasting color"], Description="Gluten free and tasty.",
                BulletPoints=["Easy to clean"])
    g = goal(attributes=["long lasting", "gluten free", "easy to clean", "Gluten Free", "sugar free"],
             goal_options=[])
    r, b = compute_reward(p, g, 10, [])
    # long lasting: token subset of an attribute (ratio 100); gluten free: in the lowercased description;
    # easy to clean: in the bullets; "Gluten Free" is not re-lowercased, so only the fuzzy path could match it
    # and no attribute is close; sugar free matches nothing.
    assert b["n_att"] == 3 and r == pytest.approx((3 + 1) / 6)


def test_dummy_attribute_when_product_has_none():
    p = product(Attributes=[], Title="x", BulletPoints=[], Description="")
    r, b = compute_reward(p, goal(attributes=["dummy attr"], goal_options=[]), 10, [])
    assert b["n_att"] == 1  # "DUMMY_ATTR" token-set matches "dummy attr": the original's quirk, kept


def test_option_colour_normalisation_and_lenient_matches():
    # the first colour of the alphabetical list that is a substring wins
    assert normalize_color("dark brown") == "brown" and normalize_color("light blue") == "blue"
    assert normalize_color("dark") == "dark" and normalize_color("clear") == "clear"
    assert option_matches(["x-large"], ["large"]) == 1  # subset token set
    assert option_matches(["light grey"], ["light blue"]) == 0  # "grey" vs "blue"
    assert option_matches(["dark brown"], ["light brown"]) == 1  # both normalise to "brown"
    assert option_matches(["pack of 3"], ["pack of 2"]) == 1  # ratio 88 > 85
    assert option_matches(["red"], ["blue"]) == 0
    assert option_matches(["navy blue"], ["black"]) == 0  # "navy blue" -> "blue" (first in list order)


def test_type_rules_in_order():
    # identical nouns and query: 1
    assert type_reward(product(), goal())["r_type"] == 1.0
    # no query or category match, title score 1/3 > 0.2: still 1
    other = dict(query="boots", product_category="Clothing, Shoes & Jewelry › Kids")
    b = type_reward(product(**other, title_nouns=["hiking", "x", "y"]), goal())
    assert b["title_score"] == pytest.approx(1 / 3) and b["r_type"] == 1.0 and not b["category_match"]
    # title score 1/6 (in [0.1, 0.2]) without query/category match: 0.5
    g6 = goal(title_nouns=["a", "b", "c", "d", "e", "hiking"])
    assert type_reward(product(**other), g6)["r_type"] == 0.5
    # the same nouns but a query match: 1
    assert type_reward(product(), g6)["r_type"] == 1.0
    # title score 1/11 < 0.1: 0.1 even with a query match (the later rule wins)
    g11 = goal(title_nouns=list("abcdefghij") + ["hiking"])
    assert type_reward(product(), g11)["r_type"] == 0.1
    # no shared noun: 0
    assert type_reward(product(title_nouns=["z"]), goal())["r_type"] == 0.0
    # empty goal nouns: title score 0.2, which is not > 0.2, so it depends on query/category
    assert type_reward(product(**other), goal(title_nouns=[]))["r_type"] == 0.5
    assert type_reward(product(), goal(title_nouns=[]))["r_type"] == 1.0


def test_category_match_needs_two_shared_levels():
    b = type_reward(product(query="q", product_category="Clothing, Shoes & Jewelry › Men › Watches"), goal())
    assert b["category_match"] is True
    b = type_reward(product(query="q", product_category="Clothing, Shoes & Jewelry › Women"), goal())
    assert b["category_match"] is False


def test_total_is_type_times_share():
    p = product(query="boots", product_category="Other › Kids",
                title_nouns=["hiking", "q", "r", "s", "t", "u"])
    g = goal(title_nouns=["a", "b", "c", "d", "e", "hiking"])  # title score 1/6 -> r_type 0.5
    r, b = compute_reward(p, g, 50, ["black", "10"])
    assert b["r_type"] == 0.5 and r == pytest.approx(0.5)


def test_goal_options_as_dict_count_values():
    r, _ = compute_reward(product(), goal(goal_options={"color": "black", "size": "10"}), 50, ["black", "10"])
    assert r == 1.0


def _thefuzz_token_set_ratio(a, b):
    """The original's scorer (thefuzz 0.19 without python-Levenshtein), from its definition."""
    import re

    def prep(s):
        s = s.encode("ascii", "ignore").decode().lower()
        return re.sub(r"\W+|_", " ", s).strip()

    def ratio(x, y):
        return int(round(100 * SequenceMatcher(None, x, y).ratio()))

    a, b = prep(a), prep(b)
    if not a or not b:
        return 0
    ta, tb = set(a.split()), set(b.split())
    inter = " ".join(sorted(ta & tb))
    d1, d2 = " ".join(sorted(ta - tb)), " ".join(sorted(tb - ta))
    s1, s2 = (inter + " " + d1).strip(), (inter + " " + d2).strip()
    return max(ratio(inter, s1), ratio(inter, s2), ratio(s1, s2))


@pytest.mark.parametrize("a,b", [
    ("long lasting", "long lasting color"), ("gluten free", "sugar free"), ("pack of 2", "pack of 3"),
    ("12 ounce", "32 ounce"), ("x-large", "large"), ("vitamin c", "vitamin e"), ("rubber sole", "rubber"),
    ("machine wash", "machine washable"), ("black", "black | grey"), ("10", "size 10"), ("3 ft", "6 ft"),
    ("high protein", "high fiber"), ("noise cancelling", "noise canceling"), ("", "x"),
])
def test_fuzzy_decision_agrees_with_thefuzz(a, b):
    assert (token_set_ratio(a, b) > 85) == (_thefuzz_token_set_ratio(a, b) > 85)


def test_heuristic_nouns_and_extractor_choice():
    assert heuristic_nouns("TrailMax Men's Waterproof Hiking Boot, Black, Size 10") == ["trailmax", "hiking",
                                                                                        "boot", "size"]
    assert heuristic_nouns("Gold Plated HDMI Cable 6 ft") == ["hdmi", "cable"]
    assert get_noun_extractor("heuristic") is heuristic_nouns
    with pytest.raises(ValueError):
        get_noun_extractor("nltk")


def test_spacy_extractor_needs_a_model():
    from leap_gym.envs.webshop.reward import _spacy_pipeline, spacy_nouns

    if _spacy_pipeline() is not None:
        pytest.skip("a spaCy English model is installed")
    assert get_noun_extractor("auto") is heuristic_nouns
    with pytest.raises(RuntimeError, match="spaCy"):
        spacy_nouns("Hiking Boot")


def test_reward_uses_extractor_on_names_without_catalog_nouns():
    p = product()
    g = goal()
    del p["title_nouns"], g["title_nouns"]
    r, b = compute_reward(p, g, 50, ["black", "10"], noun_extractor=heuristic_nouns)
    assert r == 1.0 and b["title_score"] == 1.0
    r, b = compute_reward(product(name="Camp Sock 3-Pack"), goal(), 50, ["black", "10"],
                          noun_extractor=heuristic_nouns)
    assert b["title_score"] == 0.0 and r == 0.0
