"""The loader for the original data files, on small hand-made files in the real format."""

import json
import random

import pytest

from leap_gym.envs.webshop.data import (
    DataError,
    FileCatalog,
    human_goals,
    iter_json_array,
    iter_json_object,
    iter_products,
    load_attributes,
    parse_pricing,
    split_goals,
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
INS = {"B0TEST0001": {"attributes": ["waterproof", "rubber sole"], "instruction": "x",
                      "instruction_attributes": []}}
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


@pytest.mark.parametrize("text,msg",
                         [("", "empty"), ('{"a": 1}', "list"), ('[{"asin": "B0"}, {"asin"', "truncated"),
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
    products = list(iter_products(data_dir / "items_shuffle_1000.json", INS))
    assert [p["asin"] for p in products] == ["B0TEST0001", "B0TEST0002", "B0TEST0004", "B0TEST0005"]
    boot, sock, jacket, hat = products
    assert boot["options"] == {"color": ["brown", "black | grey"], "size": ["9", "10"]}
    assert boot["Title"] == boot["name"]
    assert boot["Description"] == "All about the TrailMax Men's Waterproof Hiking Boot."
    assert boot["Attributes"] == ["waterproof", "rubber sole"] and sock["Attributes"] == ["DUMMY_ATTR"]
    assert boot["query"] == "hiking boots" and boot["price"] == 59.99 and boot["Price"] == "$59.99"
    assert sock["BulletPoints"] == ["Soft cotton blend"] and sock["Price"] == "$9.5 to $14.0"
    assert 9.5 <= sock["price"] <= 14.0
    assert jacket["pricing"] == [100.0] and hat["Price"] == "$100.0"
    assert "brand" not in boot and "list_price" not in boot
    assert [p["asin"] for p in iter_products(data_dir / "items_shuffle_1000.json", INS, num_products=2)] == [
        "B0TEST0001", "B0TEST0002"]  # truncation happens before filtering


def test_human_goals(data_dir):
    products = list(iter_products(data_dir / "items_shuffle_1000.json", INS))
    goals = human_goals(products, HUMAN)
    assert len(goals) == 2  # the instruction without attributes is skipped
    g = goals[0]
    assert g["instruction_text"].startswith("i want a pair of waterproof hiking boots for men in size 10, "
                                            "and price lower than ")
    assert g["price_upper"] in (70.0, 80.0,
                                90.0) and g["instruction_text"].endswith(f"{g['price_upper']:.2f} dollars")
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

    env = gym.make("leap/WebShop-v0", tasks="files", data_dir=str(data_dir), split="test",
                   cache_dir=str(tmp_path / "cache"), observation_mode="text")
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


def test_streaming_objects(data_dir):
    for chunk in (1, 5, 1 << 20):
        assert dict(iter_json_object(data_dir / "items_human_ins.json", chunk_size=chunk)) == HUMAN
    attributes = load_attributes(data_dir / "items_ins_v2_1000.json")
    assert attributes == {"B0TEST0001": ("waterproof", "rubber sole")}
    with pytest.raises(DataError, match="object"):
        list(iter_json_object(data_dir / "items_shuffle_1000.json"))


def test_file_catalog_store_is_built_once_and_read_on_demand(data_dir, tmp_path, monkeypatch):
    cache = tmp_path / "store"
    cat = FileCatalog(data_dir, cache_dir=cache)
    products = list(iter_products(data_dir / "items_shuffle_1000.json", INS))
    assert len(cat) == 4 and [cat.product(i) for i in range(4)] == products
    assert cat.index_of("B0TEST0004") == 2 and cat.index_of("b0test0004") == 2
    assert cat.index_of("B0NONE") is None
    assert cat.asin(1) == "B0TEST0002" and len(cat.goals("all")) == 2
    calls = []
    monkeypatch.setattr(FileCatalog, "_build_store", lambda *a: calls.append(a))
    again = FileCatalog(data_dir, cache_dir=cache)
    assert calls == [] and again.goals("test") == cat.goals("test")
    (next(cache.glob("*-store")) / "offsets.npy").write_bytes(b"garbage")
    with pytest.raises(DataError, match="corrupt"):
        FileCatalog(data_dir, cache_dir=cache)


def _line_with(path, needle):
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


@pytest.mark.parametrize("name,needle", [("items_shuffle_1000.json", "Rain Jacket"),
                                         ("items_human_ins.json", "i need cotton socks")])
def test_non_utf8_files_name_the_file_and_line(data_dir, tmp_path, name, needle):
    path = data_dir / name
    line = _line_with(path, needle) if name != "items_human_ins.json" else 1
    path.write_bytes(path.read_bytes().replace(needle.encode(), needle.encode() + b"\xe9t\xe9"))
    with pytest.raises(DataError, match=rf"{path}: line {line}: not UTF-8 \(byte \d+ is b'\\xe9'\)"):
        FileCatalog(data_dir, cache_dir=tmp_path / "store")


def test_streamed_json_errors_name_the_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('[\n{"asin": "B0"},\n{"asin": "B1"}\n{"asin": "B2"}]')
    for chunk in (4, 1 << 20):
        with pytest.raises(DataError, match=rf"{path}: line 4: invalid or truncated JSON"):
            list(iter_json_array(path, chunk_size=chunk))


@pytest.mark.parametrize("field,value,msg", [("instruction", None, "'instruction': None, expected text"),
                                             ("instruction_attributes", "cotton", "expected a list")])
def test_a_bad_goal_names_the_file_line_and_asin(data_dir, tmp_path, field, value, msg):
    """Not an AttributeError in the middle of building the goals."""
    human = json.loads(json.dumps(HUMAN))
    human["B0TEST0002"][0][field] = value
    path = data_dir / "items_human_ins.json"
    path.write_text(json.dumps(human, indent=1))
    line = _line_with(path, '"B0TEST0002"')
    with pytest.raises(DataError, match=rf"{path}: line {line}: ASIN B0TEST0002: instruction 0 has .*{msg}"):
        FileCatalog(data_dir, cache_dir=tmp_path / "store")


def test_a_truncated_product_store_fails_at_load_not_mid_episode(data_dir, tmp_path):
    cache = tmp_path / "store"
    FileCatalog(data_dir, cache_dir=cache)
    products = next(cache.glob("*-store")) / "products.jsonl"
    text = products.read_bytes()
    products.write_bytes(text[: len(text) // 2])
    with pytest.raises(DataError,
                       match=r"corrupt WebShop product store .* \(delete it to rebuild\): products.jsonl"):
        FileCatalog(data_dir, cache_dir=cache)
    # same size, damaged in the middle: the read of that product names the file and line
    products.write_bytes(text.replace(b'"B0TEST0002"', b'"B0TEST0002 ', 1))
    cat = FileCatalog(data_dir, cache_dir=cache)
    with pytest.raises(DataError, match=rf"{products}: line 2: .*delete .* to rebuild"):
        cat.product(1)


def test_truncated_catalog_uses_all_goals_for_every_split(data_dir, tmp_path):
    cat = FileCatalog(data_dir, num_products=2, cache_dir=tmp_path / "s")
    assert len(cat) == 2 and cat.goals("train") == cat.goals("test") == cat.goals("eval")


def test_missing_files(tmp_path):
    with pytest.raises(DataError, match="items_shuffle"):
        FileCatalog(tmp_path)


def test_pages_reproduce_the_spec_examples_exactly(data_dir, tmp_path):
    """The spec's worked example (the original templates run on this product), in both observation modes."""
    import gymnasium as gym

    env = gym.make("leap/WebShop-v0", tasks="files", data_dir=str(data_dir), split="test",
                   cache_dir=str(tmp_path / "c"), observation_mode="text")
    goals = env.unwrapped.goals
    k = next(i for i, g in enumerate(goals) if g["asin"] == "B0TEST0001")
    obs, info = env.reset(seed=0, options={"task_index": k})
    ins = info["task"]
    assert obs == f"WebShop [SEP] Instruction: [SEP] {ins} [SEP] Search"
    obs, *_, info = env.step("search[waterproof hiking boot]")
    assert obs.startswith(f"Instruction: [SEP] {ins} [SEP] Back to Search [SEP] Page 1 (Total results: ")
    assert "[SEP] Next > [SEP] B0TEST0001 [SEP] TrailMax Men's Waterproof Hiking Boot [SEP] $59.99" in obs
    obs, *_, info = env.step("click[b0test0001]")
    assert obs == (f"Instruction: [SEP] {ins} [SEP] Back to Search [SEP] < Prev [SEP] color [SEP] brown "
                   "[SEP] black | grey [SEP] size [SEP] 9 [SEP] 10 [SEP] TrailMax Men's Waterproof Hiking "
                   "Boot [SEP] Price: $59.99 [SEP] Rating: N.A. [SEP] Description [SEP] Features [SEP] "
                   "Reviews [SEP] Buy Now")
    assert info["available_actions"]["clickables"] == ["back to search", "< prev", "description", "features",
                                                       "reviews", "buy now", "brown", "black | grey", "9",
                                                       "10"]
    obs, *_, info = env.step("click[features]")
    assert obs == (f"Instruction: [SEP] {ins} [SEP] Back to Search [SEP] < Prev [SEP] Waterproof membrane "
                   "[SEP] Rubber sole")
    env.step("click[< prev]")
    env.unwrapped.observation_mode = "text_rich"
    obs, *_, info = env.step("click[10]")
    assert obs == (f"You have clicked 10.\nInstruction:\n{ins}\n[button] Back to Search [button_]\n"
                   "[button] < Prev [button_]\ncolor\n  [button] brown [button_]\n  [button] black | grey "
                   "[button_]\nsize\n  [button] 9 [button_]\n  [clicked button] 10 [clicked button_]\n"
                   "TrailMax Men's Waterproof Hiking Boot\nPrice: $59.99\nRating: N.A.\n"
                   "[button] Description [button_]\n[button] Features [button_]\n[button] Reviews [button_]\n"
                   "[button] Buy Now [button_]")
    obs, r, term, _, info = env.step("click[buy now]")
    # goal: waterproof + rubber sole (attributes), options 10 and black (only 10 chosen), price within bound
    assert term and r == pytest.approx((2 + 1 + 1) / 5) and info["reward_breakdown"]["r_option"] == 0.5
    env.close()
