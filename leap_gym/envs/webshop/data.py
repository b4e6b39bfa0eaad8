"""The original WebShop data files: streaming loader, normalisation, human goals, shuffle and splits.

Files (from the WebShop project; not shipped with leap-gym):

- ``items_shuffle_1000.json`` / ``items_shuffle.json``: a JSON list of scraped products (the full one is ~5 GB and
  is streamed element by element, never loaded whole);
- ``items_ins_v2_1000.json`` / ``items_ins_v2.json``: ASIN -> ``{attributes, instruction, instruction_attributes}``;
- ``items_human_ins.json``: ASIN -> list of ``{instruction, instruction_attributes, instruction_options, ...}``.

Normalisation and goal construction follow the original's ``load_products`` and ``get_human_goals``. Goals are
shuffled with ``random.Random(233)`` (the same permutation as ``random.seed(233); random.shuffle``); when all
products are loaded the splits are test = first 500, eval = next 1,000, train = the rest, and with a truncated
product set (``num_products``) every split is all goals, as in the original. Deviation: hidden prices of ranged
items and goal price bounds come from a generator seeded with ``seed`` instead of the unseeded global ``random``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from leap_gym.envs.webshop.catalog import index_text, price_bound

SPLIT_SEED = 233


class DataError(ValueError):
    """A WebShop data file that is missing or cannot be read, with the file and what is wrong."""


def iter_json_array(path: str | os.PathLike, chunk_size: int = 1 << 20) -> Iterator[Any]:
    """Yield the elements of a top-level JSON array one at a time, reading ``chunk_size`` characters at a time."""
    decoder = json.JSONDecoder()
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        buf, pos, consumed = "", 0, 0

        def nonspace(need_more: int = chunk_size) -> bool:
            """Advance ``pos`` to the next non-space character, reading on; False at the end of the file."""
            nonlocal buf, pos, consumed
            while True:
                while pos < len(buf) and buf[pos].isspace():
                    pos += 1
                if pos < len(buf):
                    return True
                more = f.read(need_more)
                if not more:
                    return False
                consumed += pos
                buf, pos = more, 0

        def fail(what: str) -> DataError:
            return DataError(f"{path}: invalid or truncated JSON near character {consumed + pos}: {what}")

        if not nonspace():
            raise DataError(f"{path}: empty file, expected a JSON list")
        if buf[pos] != "[":
            raise DataError(f"{path}: expected a JSON list at the top level")
        pos += 1
        first = True
        while True:
            if not nonspace():
                raise fail("unexpected end of file")
            if buf[pos] == "]":
                return
            if not first:
                if buf[pos] != ",":
                    raise fail("expected ',' or ']'")
                pos += 1
                if not nonspace():
                    raise fail("unexpected end of file")
            while True:
                try:
                    obj, end = decoder.raw_decode(buf, pos)
                    break
                except json.JSONDecodeError as e:
                    more = f.read(max(chunk_size, len(buf) - pos))  # grows with the element: no quadratic re-reads
                    if not more:
                        pos = e.pos
                        raise fail(e.msg) from None
                    consumed += pos
                    buf, pos = buf[pos:] + more, 0
            yield obj
            first = False
            pos = end
            if pos > chunk_size:
                consumed += pos
                buf, pos = buf[pos:], 0


def _load_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None


def parse_pricing(pricing: Any) -> tuple[list[float], str]:
    """The original's price parse: pieces after each ``$``, digits and dots kept; missing -> ``[100.0]``."""
    if not pricing:
        return [100.0], "$100.0"
    values = []
    for piece in str(pricing).split("$")[1:]:
        digits = re.sub(r"[^\d.]", "", piece)
        try:
            values.append(float(digits))
        except ValueError:
            continue
    if not values:
        return [100.0], "$100.0"
    if len(values) == 1:
        return values, f"${values[0]}"
    return values[:2], f"${values[0]} to ${values[1]}"


def normalize_product(raw: dict[str, Any], attributes: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """One product in the original's normalised fields, with its hidden ``price`` drawn once."""
    bullets = raw.get("small_description")
    bullets = bullets if isinstance(bullets, list) else ([bullets] if bullets else [])
    prices, tag = parse_pricing(raw.get("pricing"))
    options: dict[str, list[str]] = {}
    for group, contents in (raw.get("customization_options") or {}).items():
        if contents is None:
            continue
        options[group.lower()] = [c["value"].strip().replace("/", " | ").lower() for c in contents]
    asin = raw["asin"]
    attrs = (attributes.get(asin) or {}).get("attributes") or ["DUMMY_ATTR"]
    images = raw.get("images") or [None]
    return {
        "asin": asin, "name": raw.get("name", ""), "Title": raw.get("name", ""),
        "Description": raw.get("full_description") or "", "BulletPoints": bullets,
        "pricing": prices, "Price": tag, "price": prices[0] if len(prices) == 1 else rng.uniform(*prices[:2]),
        "options": options, "Attributes": attrs, "category": raw.get("category", ""),
        "query": (raw.get("query") or "").lower().strip(), "product_category": raw.get("product_category", ""),
        "Rating": "N.A.", "Reviews": [], "MainImage": images[0],
    }


def load_products(path: str | os.PathLike, attributes: dict[str, Any], num_products: int | None = None,
                  seed: int = 0) -> list[dict[str, Any]]:
    """Stream, truncate to ``num_products``, drop bad/duplicate ASINs, normalise."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out = []
    for i, raw in enumerate(iter_json_array(path)):
        if num_products is not None and i >= num_products:
            break
        if not isinstance(raw, dict) or "asin" not in raw:
            raise DataError(f"{path}: element {i} is not a product object with an 'asin'")
        asin = str(raw["asin"])
        if asin == "nan" or len(asin) > 10 or asin in seen:
            continue
        seen.add(asin)
        out.append(normalize_product(raw, attributes, rng))
    return out


def human_goals(products: list[dict[str, Any]], human: dict[str, Any], seed: int = 0) -> list[dict[str, Any]]:
    """The original's human goals, in product order (each instruction with attributes; price clause added)."""
    rng = random.Random(seed + 1)
    goals = []
    for p in products:
        for ins in human.get(p["asin"], []):
            attrs = ins.get("instruction_attributes") or []
            if not attrs:
                continue
            upper, clause = price_bound(rng, p["price"])
            goals.append({
                "asin": p["asin"], "category": p["category"], "query": p["query"], "name": p["name"],
                "product_category": p["product_category"],
                "instruction_text": ins["instruction"].strip(".") + clause, "attributes": list(attrs),
                "goal_options": list(ins.get("instruction_options") or []), "price_upper": upper, "weight": 1,
            })
    return goals


def split_goals(goals: list[dict[str, Any]], full: bool) -> dict[str, list[dict[str, Any]]]:
    """Shuffle with seed 233; test/eval/train = [:500], [500:1500], [1500:] for the full set, else all goals."""
    goals = list(goals)
    random.Random(SPLIT_SEED).shuffle(goals)
    if not full:
        return {"train": goals, "eval": goals, "test": goals, "all": goals}
    return {"test": goals[:500], "eval": goals[500:1500], "train": goals[1500:], "all": goals}


def _find(data_dir: Path, names: tuple[str, ...]) -> Path:
    for name in names:
        if (data_dir / name).is_file():
            return data_dir / name
    raise DataError(f"none of {list(names)} found in {data_dir}")


class FileCatalog:
    """Products and human goals from the original's files in ``data_dir``.

    Uses the full files (``items_shuffle.json``, ``items_ins_v2.json``) when present, else the 1k ones.
    """

    kind = "file"

    def __init__(self, data_dir: str | os.PathLike, num_products: int | None = None, seed: int = 0):
        data_dir = Path(data_dir)
        self.seed = seed
        self.products_path = _find(data_dir, ("items_shuffle.json", "items_shuffle_1000.json"))
        attrs_path = _find(data_dir, ("items_ins_v2.json", "items_ins_v2_1000.json"))
        human_path = _find(data_dir, ("items_human_ins.json",))
        attributes = _load_json(attrs_path)
        human = _load_json(human_path)
        if not isinstance(attributes, dict) or not isinstance(human, dict):
            raise DataError(f"{attrs_path} and {human_path} must hold JSON objects keyed by ASIN")
        self.products = load_products(self.products_path, attributes, num_products, seed)
        self._index = {p["asin"]: i for i, p in enumerate(self.products)}
        self._splits = split_goals(human_goals(self.products, human, seed), full=num_products is None)
        st = self.products_path.stat()
        ident = f"{self.products_path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{num_products}|{seed}"
        self.cache_key = "file-" + hashlib.sha1(ident.encode()).hexdigest()[:16]

    def __len__(self) -> int:
        return len(self.products)

    def product(self, i: int) -> dict[str, Any]:
        return self.products[i]

    def asin(self, i: int) -> str:
        return self.products[i]["asin"]

    def index_of(self, asin: str) -> int | None:
        return self._index.get(asin.upper(), self._index.get(asin))

    def index_texts(self) -> Iterator[str]:
        return (index_text(p) for p in self.products)

    def goals(self, split: str) -> Sequence[dict[str, Any]]:
        if split not in self._splits:
            raise ValueError(f"unknown split {split!r}; expected one of {sorted(self._splits)}")
        return self._splits[split]
