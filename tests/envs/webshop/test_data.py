"""The loader for the original data files, on small hand-made files in the real format."""

import json
import random

import pytest

from leap_gym.envs.webshop.data import (
    DataError, FileCatalog, human_goals, iter_json_array, load_products, parse_pricing, split_goals,
)


def _product(asin, name, **kw):
    p = {"asin": asin, "name": name, "full_description": f"All about the {name}.",
         "small_description": ["Waterproof membrane", "Rubber sole"], "pricing": "$59.99",
         "images": [f"https://img/{asin}.jpg"], "customization_options": None, "category": "fashion",
         "query": " Hiking Boots ", "product_category": "Clothing, Shoes & Jewelry › Men › Shoes › Boots",
         "brand": "dropped", "list_price": "$99", "total_reviews": 3, "product_information": {"x": 1}}
    p.update(kw)
    return p


PRODUCTS = [
    _product("B0TEST0001", "TrailMax Men's Waterproof Hiking Boot", customization_options={
        "Color": [{"value": " Brown ", "image": None}, {"value": "Black/Grey", "image": "u"}],
        "Size": [{"value": "9", "image": None}, {"value": "10", "image": None}], "Width": None}),
    _product("B0TEST0002", "Camp Sock 3-Pack", pricing="$9.5 - $14", small_description="Soft cotton blend"),
    _product("nan", "Broken"),
    _product("B0TEST00031", "Too Long Asin"),
    _product("B0TEST0001", "Duplicate Of The First"),
    _product("B0TEST0004", "Rain Jacket", pricing=None),
    _product("B0TEST0005", "Wool Hat", pricing="", category="fashion"),
]
INS = {"B0TEST0001": {"attributes": ["waterproof", "rubber sole"], "instruction": "x", "instruction_attributes": []}}
HUMAN = {
    "B0TEST0001": [
        {"instruction": "i want a pair of waterproof hiking boots for men in size 10.",
         "instruction_attributes": ["waterproof", "rubber sole"], "instruction_options": ["10", "black"],
         "options": ["size: 10", "color: black | grey"], "worker_id": "w", "assignment_id": "a"},
        {"instruction": "boots please", "instruction_attributes": [], "instruction_options": []},
    ],
    "B0TEST0002": [{"instruction": "i need cotton socks", "instruction_attributes": ["cotton"],
                    "instruction_options": []}],
}


@pytest.fixture
def data_dir(tmp_path):
    (tmp_path / "items_shuffle_1000.json").write_text(json.dumps(PRODUCTS, indent=1))
    (tmp_path / "items_ins_v2_1000.json").write_text(json.dumps(INS))
    (tmp_path / "items_human_ins.json").write_text(json.dumps(HUMAN))
    return tmp_path


def test_streaming_matches_json_load(data_dir):
    path = data_dir / "items_shuffle_1000.json"
    for chunk in (1, 7, 64, 1 << 20):
        assert list(iter_json_array(path, chunk_size=chunk)) == PRODUCTS


@pytest.mark.parametrize("text,msg", [("", "empty"), ('{"a": 1}', "list"), ('[{"asin": "B0"}, {"asin"', "truncated"),
                                      ('[{"asin": "B0"} {"asin": 1}]', "truncated")])
def test_bad_files_give_clear_errors(tmp_path, text, msg):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(DataError, match=msg):
        list(iter_json_array(path, chunk_size=4))


def test_pricing_parse():
    assert parse_pricing("$12.99") == ([12.99], "$12.99")
    assert parse_pricing("$10.99 - $15.99") == ([10.99, 15.99], "$10.99 to $15.99")
    assert parse_pricing("$1,299.00") == ([1299.0], "$1299.0")
    assert parse_pricing(None) == ([100.0], "$100.0") and parse_pricing("") == ([100.0], "$100.0")


def test_normalisation(data_dir):
    products = load_products(data_dir / "items_shuffle_1000.json", INS)
    assert [p["asin"] for p in products] == ["B0TEST0001", "B0TEST0002", "B0TEST0004", "B0TEST0005"]
    boot, sock, jacket, hat = products
    assert boot["options"] == {"color": ["brown", "black | grey"], "size": ["9", "10"]}
    assert boot["Title"] == boot["name"] and boot["Description"] == "All about the TrailMax Men's Waterproof Hiking Boot."
    assert boot["Attributes"] == ["waterproof", "rubber sole"] and sock["Attributes"] == ["DUMMY_ATTR"]
    assert boot["query"] == "hiking boots" and boot["price"] == 59.99 and boot["Price"] == "$59.99"
    assert sock["BulletPoints"] == ["Soft cotton blend"] and sock["Price"] == "$9.5 to $14.0"
    assert 9.5 <= sock["price"] <= 14.0
    assert jacket["pricing"] == [100.0] and hat["Price"] == "$100.0"
    assert "brand" not in boot and "list_price" not in boot
    assert [p["asin"] for p in load_products(data_dir / "items_shuffle_1000.json", INS, num_products=2)] == [
        "B0TEST0001", "B0TEST0002"]  # truncation happens before filtering


def test_human_goals(data_dir):
    products = load_products(data_dir / "items_shuffle_1000.json", INS)
    goals = human_goals(products, HUMAN)
    assert len(goals) == 2  # the instruction without attributes is skipped
    g = goals[0]
    assert g["instruction_text"].startswith("i want a pair of waterproof hiking boots for men in size 10, and price "
                                            "lower than ")
    assert g["price_upper"] in (70.0, 80.0, 90.0) and g["instruction_text"].endswith(f"{g['price_upper']:.2f} dollars")
    assert g["goal_options"] == ["10", "black"] and g["attributes"] == ["waterproof", "rubber sole"]
    assert g["name"] == products[0]["name"] and g["query"] == "hiking boots" and g["weight"] == 1


def test_splits():
    goals = [{"i": i} for i in range(2000)]
    full = split_goals(goals, full=True)
    order = list(goals)
    random.seed(233)
    random.shuffle(order)
    assert full["test"] == order[:500] and full["eval"] == order[500:1500] and full["train"] == order[1500:]
    part = split_goals(goals, full=False)
    assert part["train"] == part["eval"] == part["test"] == order


def test_env_on_real_format_files(data_dir, tmp_path):
    import gymnasium as gym

    env = gym.make("leap/WebShop-v0", data_dir=str(data_dir), split="test", cache_dir=str(tmp_path / "cache"),
                   observation_mode="text")
    obs, info = env.reset(seed=0, options={"task_index": 0})
    cat = env.unwrapped.catalog
    assert isinstance(cat, FileCatalog) and len(cat) == 4
    assert info["task_id"].startswith("file/test/")
    while True:
        obs, r, term, trunc, info = env.step(info["privileged"]["expert_action"])
        if term:
            break
    assert r == 1.0 and info["won"]
    env.close()


def test_missing_files(tmp_path):
    with pytest.raises(DataError, match="items_shuffle"):
        FileCatalog(tmp_path)
