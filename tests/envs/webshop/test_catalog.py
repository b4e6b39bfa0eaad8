"""The procedural catalog: determinism, ASINs, attribute hygiene, near-miss distractors, goals and splits."""

import itertools
import re

import pytest

from leap_gym.envs.webshop.catalog import FAMILY, NUM_GOALS, SLOT_KINDS, GeneratedCatalog, index_text
from leap_gym.envs.webshop.reward import attribute_matches, compute_reward, fuzzy_match
from leap_gym.envs.webshop.vocab import CATEGORIES


def _slot_kind(cat, i):
    """What product ``i`` of a family is (``SLOT_KINDS``); products past the last family are background."""
    family, slot = divmod(i, FAMILY)
    if family >= cat.num_families or slot >= len(SLOT_KINDS):
        return "background"
    return SLOT_KINDS[slot]


@pytest.fixture(scope="module")
def cat():
    return GeneratedCatalog(num_products=2_000, seed=0)


def test_deterministic_and_seeded(cat):
    again = GeneratedCatalog(num_products=2_000, seed=0)
    assert [cat.product(i) for i in range(40)] == [again.product(i) for i in range(40)]
    other = GeneratedCatalog(num_products=2_000, seed=1)
    assert cat.product(0) != other.product(0)
    assert cat.goals("test")[0] == again.goals("test")[0]


def test_asins_are_a_bijection():
    big = GeneratedCatalog(num_products=1_000_000, seed=3)
    for i in itertools.chain(range(50), [999_999, 123_456, 500_000]):
        a = big.asin(i)
        assert re.fullmatch(r"B0[0-9A-Z]{8}", a) and big.index_of(a) == i and big.index_of(a.lower()) == i
    assert len({big.asin(i) for i in range(5000)}) == 5000
    assert big.index_of("B0NOTREAL!") is None and big.index_of("X") is None


def test_size_bounds():
    with pytest.raises(ValueError):
        GeneratedCatalog(num_products=999)
    with pytest.raises(ValueError):
        GeneratedCatalog(num_products=1_000_001)


def test_attribute_pools_do_not_match_each_other():
    for c in CATEGORIES:
        for t in c.types:
            pool = sorted(set(t.attributes) | set(c.attributes))
            for a, b in itertools.combinations(pool, 2):
                assert not fuzzy_match(a, b), (c.name, a, b)
                assert a not in b and b not in a, (c.name, a, b)


def test_products_match_only_their_own_attributes(cat):
    for i in range(0, 2_000, 7):
        p = cat.product(i)
        c = next(c for c in CATEGORIES if c.name == p["category"])
        t = next(t for t in c.types if t.query == p["query"])
        for a in set(t.attributes) | set(c.attributes):
            assert attribute_matches(p, [a]) == (1 if a in p["Attributes"] else 0), (i, a, p["Title"])


def test_product_fields_and_text(cat):
    p = cat.product(5)
    for key in ("asin", "name", "Title", "Description", "BulletPoints", "pricing", "Price", "price",
                "options", "Attributes", "category", "query", "product_category", "title_nouns"):
        assert key in p
    assert p["Price"].startswith("$") and len(p["Description"].split()) >= 30
    assert 3 <= len(p["BulletPoints"]) <= 7
    assert all(v == v.lower() for vs in p["options"].values() for v in vs)
    text = index_text(p)
    assert text == text.lower() and p["Title"].lower() in text


def _best_purchase_reward(product, goal):
    chosen = [v for vs in product["options"].values() for v in vs if v in goal["goal_options"]]
    return compute_reward(product, goal, product["price"], chosen)[0]


def test_targets_score_one_and_distractors_fall_short(cat):
    shortfalls = {"over_budget": 0, "sibling": 0, "missing_attr": 0, "option_absent": 0, "option_in_text": 0}
    counts = dict.fromkeys(shortfalls, 0)
    for goal in cat.goals("test")[:150]:
        t = cat.index_of(goal["asin"])
        assert t % FAMILY == 0
        assert _best_purchase_reward(cat.product(t), goal) == 1.0
        for j in range(t + 1, t + FAMILY):
            kind = _slot_kind(cat, j)
            if kind in shortfalls:
                counts[kind] += 1
                shortfalls[kind] += _best_purchase_reward(cat.product(j), goal) < 1.0
    assert shortfalls["over_budget"] == counts["over_budget"] > 0  # always over any bound the goal can have
    assert shortfalls["sibling"] == counts["sibling"] > 0  # r_type 0
    # only when the goal asks for what is missing
    for kind in ("missing_attr", "option_absent", "option_in_text"):
        assert 0 < shortfalls[kind] <= counts[kind]


def test_goals_in_human_format(cat):
    for goal in cat.goals("train")[:200]:
        target = cat.product(cat.index_of(goal["asin"]))
        text = goal["instruction_text"]
        assert text == text.lower() and not text.endswith(".")
        assert set(goal["attributes"]) <= set(target["Attributes"]) and 1 <= len(goal["attributes"]) <= 4
        values = {v for vs in target["options"].values() for v in vs}
        assert set(goal["goal_options"]) <= values and len(goal["goal_options"]) <= 3
        m = re.search(r", and price lower than (\d+\.\d\d) dollars$", text)
        cands = [p for p in range(10, 1000, 10) if p > target["price"]][:4]
        if len(cands) >= 2:
            assert m and float(m.group(1)) == goal["price_upper"] and goal["price_upper"] in cands[1:]
        else:
            assert m is None and goal["price_upper"] == 1_000_000
        for a in goal["attributes"]:
            assert a in text


def test_splits_like_the_original(cat):
    sizes = {s: len(cat.goals(s)) for s in ("test", "eval", "train", "all")}
    assert sizes == {"test": 500, "eval": 1000, "train": NUM_GOALS - 1500, "all": NUM_GOALS}
    ids = {s: {g["goal_id"] for g in cat.goals(s)[:300]} for s in ("test", "eval", "train")}
    assert not (ids["test"] & ids["eval"]) and not (ids["test"] & ids["train"])
    assert not (ids["eval"] & ids["train"])
    import random

    order = list(range(NUM_GOALS))
    random.seed(233)
    random.shuffle(order)  # the original's global-random shuffle gives the same order
    assert [g["goal_id"] for g in cat.goals("test")[:20]] == order[:20]
    with pytest.raises(ValueError):
        cat.goals("dev")
