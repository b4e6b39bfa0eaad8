"""The original WebShop data files: streaming loader, normalisation, human goals, shuffle and splits.

Files (from the WebShop project; not shipped with leap-gym):

- ``items_shuffle_1000.json`` / ``items_shuffle.json``: a JSON list of scraped products (the full one is ~5 GB
  and is streamed element by element, never loaded whole);
- ``items_ins_v2_1000.json`` / ``items_ins_v2.json``: ASIN ->
  ``{attributes, instruction, instruction_attributes}``;
- ``items_human_ins.json``: ASIN -> list of
  ``{instruction, instruction_attributes, instruction_options, ...}``.

Normalisation and goal construction follow the original's ``load_products`` and ``get_human_goals``. Goals are
shuffled with ``random.Random(233)`` (the same permutation as ``random.seed(233); random.shuffle``); when all
products are loaded the splits are test = first 500, eval = next 1,000, train = the rest, and with a truncated
product set (``num_products``) every split is all goals, as in the original. Deviation: hidden prices of
ranged items and goal price bounds come from a generator seeded with ``seed`` instead of the unseeded global
``random``.
"""

from __future__ import annotations

import codecs
import functools
import hashlib
import json
import os
import random
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from leap_gym.envs.webshop.catalog import index_text, price_bound
from leap_gym.envs.webshop.search import cache_root

SPLIT_SEED = 233
STORE_FORMAT = 2  # 2: meta.json records the size of products.jsonl, checked at load


class DataError(ValueError):
    """A WebShop data file that is missing or cannot be read, with the file and what is wrong."""


def utf8_error(path: str | os.PathLike) -> DataError:
    """A ``DataError`` naming the line and byte of the first invalid UTF-8 in ``path`` (read in chunks)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    start, lines = 0, 1
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            pending = decoder.getstate()[0]
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as e:
                data = pending + chunk
                lines += data.count(b"\n", 0, e.start)
                return DataError(f"{path}: line {lines}: not UTF-8 (byte "
                                 f"{start - len(pending) + e.start} is {data[e.start:e.start + 1]!r})")
            start += len(chunk)
            lines += chunk.count(b"\n")
    return DataError(f"{path}: not UTF-8")


def _line_of(path: Path, needle: str) -> int | None:
    """The line on which ``needle`` first occurs in a text file (for error messages only)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            if needle in line:
                return lineno
    return None


class _Reader:
    """A forward-only JSON token reader over a text file, holding at most one element (plus a chunk) in
    memory."""

    def __init__(self, f, path: Path, chunk_size: int):
        self.f, self.path, self.chunk = f, path, chunk_size
        self.buf, self.pos, self.consumed, self.lines = "", 0, 0, 1
        self.decoder = json.JSONDecoder()

    def fail(self, what: str) -> DataError:
        line = self.lines + self.buf.count("\n", 0, self.pos)
        return DataError(f"{self.path}: line {line}: invalid or truncated JSON near character "
                         f"{self.consumed + self.pos}: {what}")

    def read(self, size: int) -> str:
        try:
            return self.f.read(size)
        except UnicodeDecodeError:
            raise utf8_error(self.path) from None

    def drop(self, upto: int) -> None:
        """Forget the buffer before ``upto`` (counting its characters and lines)."""
        self.consumed += upto
        self.lines += self.buf.count("\n", 0, upto)
        self.buf, self.pos = self.buf[upto:], self.pos - upto

    def peek(self) -> str:
        """The next non-space character ('' at the end of the file), reading on as needed."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos].isspace():
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            more = self.read(self.chunk)
            if not more:
                return ""
            self.drop(self.pos)
            self.buf = more

    def expect(self, chars: str) -> str:
        c = self.peek()
        if not c:
            raise self.fail("unexpected end of file")
        if c not in chars:
            raise self.fail(f"expected one of {list(chars)}, got {c!r}")
        self.pos += 1
        return c

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                obj, end = self.decoder.raw_decode(self.buf, self.pos)
                break
            except json.JSONDecodeError as e:
                more = self.read(max(self.chunk, len(self.buf) - self.pos))  # grows with the element
                if not more:
                    self.pos = e.pos
                    raise self.fail(e.msg) from None
                self.drop(self.pos)
                self.buf += more
        self.pos = end
        if self.pos > self.chunk:
            self.drop(self.pos)
        return obj


def _iter_container(path: str | os.PathLike, opener: str, chunk_size: int) -> Iterator[Any]:
    path = Path(path)
    closer = "]" if opener == "[" else "}"
    kind = "list" if opener == "[" else "object"
    with open(path, encoding="utf-8") as f:
        r = _Reader(f, path, chunk_size)
        first = r.peek()
        if not first:
            raise DataError(f"{path}: empty file, expected a JSON {kind}")
        if first != opener:
            raise DataError(f"{path}: expected a JSON {kind} at the top level")
        r.pos += 1
        if r.peek() == closer:
            return
        while True:
            if opener == "[":
                yield r.value()
            else:
                key = r.value()
                if not isinstance(key, str):
                    raise r.fail("expected a string key")
                r.expect(":")
                yield key, r.value()
            if r.expect("," + closer) == closer:
                return


def iter_json_array(path: str | os.PathLike, chunk_size: int = 1 << 20) -> Iterator[Any]:
    """Yield the elements of a top-level JSON list one at a time (the 5 GB product file is never loaded
    whole)."""
    return _iter_container(path, "[", chunk_size)


def iter_json_object(path: str | os.PathLike, chunk_size: int = 1 << 20) -> Iterator[tuple[str, Any]]:
    """Yield the ``(key, value)`` pairs of a top-level JSON object one at a time."""
    return _iter_container(path, "{", chunk_size)


def _load_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except UnicodeDecodeError:
        raise utf8_error(path) from None


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


def normalize_product(raw: dict[str, Any], attributes: Mapping[str, Any],
                      rng: random.Random) -> dict[str, Any]:
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
    entry = attributes.get(asin)
    attrs = list((entry.get("attributes") if isinstance(entry, dict) else entry) or ["DUMMY_ATTR"])
    images = raw.get("images") or [None]
    return {
        "asin": asin, "name": raw.get("name", ""), "Title": raw.get("name", ""),
        "Description": raw.get("full_description") or "", "BulletPoints": bullets,
        "pricing": prices, "Price": tag, "price": prices[0] if len(prices) == 1 else rng.uniform(*prices[:2]),
        "options": options, "Attributes": attrs, "category": raw.get("category", ""),
        "query": (raw.get("query") or "").lower().strip(),
        "product_category": raw.get("product_category", ""), "Rating": "N.A.", "Reviews": [],
        "MainImage": images[0],
    }


def load_attributes(path: str | os.PathLike) -> dict[str, list[str]]:
    """ASIN -> attributes from ``items_ins_v2*.json``, streamed (the instructions in it are not kept;
    attribute strings are interned, since the same phrases recur across products)."""
    out = {}
    for asin, entry in iter_json_object(path):
        if isinstance(entry, dict) and entry.get("attributes"):
            out[asin] = tuple(sys.intern(str(a)) for a in entry["attributes"])
    return out


def iter_products(path: str | os.PathLike, attributes: Mapping[str, Any], num_products: int | None = None,
                  seed: int = 0) -> Iterator[dict[str, Any]]:
    """Stream, truncate to ``num_products`` (before filtering, like the original), drop bad/duplicate ASINs,
    normalise."""
    rng = random.Random(seed)
    seen: set[str] = set()
    for i, raw in enumerate(iter_json_array(path)):
        if num_products is not None and i >= num_products:
            break
        if not isinstance(raw, dict) or "asin" not in raw:
            raise DataError(f"{path}: element {i} is not a product object with an 'asin'")
        asin = str(raw["asin"])
        if asin == "nan" or len(asin) > 10 or asin in seen:
            continue
        seen.add(asin)
        yield normalize_product(raw, attributes, rng)


def check_human_goals(human: Mapping[str, Any], path: Path | None = None) -> None:
    """Raise ``DataError`` naming the file, line and ASIN of the first instruction ``human_goals`` cannot
    use."""
    for asin, entries in human.items():
        problem = None if isinstance(entries, list) else "expected a list of instructions"
        for i, ins in enumerate(entries if problem is None else ()):
            if not isinstance(ins, dict):
                problem = f"instruction {i} is not an object"
            elif not isinstance(ins.get("instruction"), str):
                problem = f"instruction {i} has 'instruction': {ins.get('instruction')!r}, expected text"
            else:
                for key in ("instruction_attributes", "instruction_options"):
                    if not isinstance(ins.get(key) or [], list):
                        problem = f"instruction {i} has {key!r}: {ins[key]!r}, expected a list"
            if problem:
                break
        if problem:
            line = _line_of(path, f'"{asin}"') if path is not None else None
            where = f"{path}: line {line}: " if line else (f"{path}: " if path is not None else "")
            raise DataError(f"{where}ASIN {asin}: {problem}")


def human_goals(products: Iterable[dict[str, Any]], human: Mapping[str, Any],
                seed: int = 0) -> list[dict[str, Any]]:
    """The original's human goals, in product order (each instruction with attributes; price clause added).

    ``human`` must pass ``check_human_goals``.
    """
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
    """Shuffle with seed 233; test/eval/train = [:500], [500:1500], [1500:] for the full set, else all
    goals."""
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
    """Products and human goals from the original's files in ``data_dir``, kept on disk, not in memory.

    Uses the full files (``items_shuffle.json``, ``items_ins_v2.json``) when present, else the 1k ones. The
    first use streams the product file once into a store under ``cache_dir`` (normalised products as JSON
    lines with their byte offsets, the ASINs, the goals), written to a temporary directory and renamed into
    place; products are then read on demand (an LRU cache keeps recent ones), so memory stays small even for
    the 1.18M products.
    """

    kind = "file"

    def __init__(self, data_dir: str | os.PathLike, num_products: int | None = None, seed: int = 0,
                 cache_dir: str | os.PathLike | None = None):
        data_dir = Path(data_dir)
        self.seed = seed
        self.products_path = _find(data_dir, ("items_shuffle.json", "items_shuffle_1000.json"))
        self.attrs_path = _find(data_dir, ("items_ins_v2.json", "items_ins_v2_1000.json"))
        self.human_path = _find(data_dir, ("items_human_ins.json",))
        ident = [str(num_products), str(seed), str(STORE_FORMAT)]
        for p in (self.products_path, self.attrs_path, self.human_path):
            st = p.stat()
            ident.append(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}")
        self.cache_key = "file-" + hashlib.sha1("\n".join(ident).encode()).hexdigest()[:16]
        root = Path(cache_dir) if cache_dir is not None else cache_root() / "webshop"
        store = root / f"{self.cache_key}-store"
        if not (store / "meta.json").exists():
            self._build_store(store, num_products)
        self._store = store
        try:
            meta = _load_json(store / "meta.json")
            self._offsets = np.load(store / "offsets.npy")
            asins = np.load(store / "asins.npy")
            with open(store / "goals.json", encoding="utf-8") as f:
                goals = json.load(f)
            size = (store / "products.jsonl").stat().st_size
        except (OSError, ValueError) as e:
            raise DataError(f"corrupt WebShop product store at {store} (delete it to rebuild): {e}") from None
        if (size, len(self._offsets)) != (meta.get("bytes"), meta.get("products")):  # e.g. a truncated copy
            raise DataError(f"corrupt WebShop product store at {store} (delete it to rebuild): "
                            f"products.jsonl has {size} bytes and offsets.npy {len(self._offsets)} products, "
                            f"meta.json says {meta.get('bytes')} bytes and {meta.get('products')} products")
        self._order = np.argsort(asins, kind="stable")
        self._sorted = asins[self._order]
        self._asins = asins
        self._products_file = store / "products.jsonl"
        self._splits = split_goals(goals, full=num_products is None)
        self.product = functools.lru_cache(maxsize=4096)(self._product)

    def _build_store(self, store: Path, num_products: int | None) -> None:
        attributes = load_attributes(self.attrs_path)
        human = _load_json(self.human_path)
        if not isinstance(human, dict):
            raise DataError(f"{self.human_path} must hold a JSON object keyed by ASIN")
        check_human_goals(human, self.human_path)
        store.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{store.name}.", dir=store.parent))
        try:
            offsets, asins = [], []
            with open(tmp / "products.jsonl", "wb") as out:
                def written() -> Iterator[dict[str, Any]]:
                    for p in iter_products(self.products_path, attributes, num_products, self.seed):
                        offsets.append(out.tell())
                        asins.append(p["asin"])
                        out.write(json.dumps(p, ensure_ascii=False).encode("utf-8") + b"\n")
                        yield p

                goals = human_goals(written(), human, self.seed)
            np.save(tmp / "offsets.npy", np.asarray(offsets, dtype=np.int64))
            np.save(tmp / "asins.npy", np.asarray(asins, dtype="U10"))
            with open(tmp / "goals.json", "w", encoding="utf-8") as f:
                json.dump(goals, f)
            with open(tmp / "meta.json", "w", encoding="utf-8") as f:
                json.dump({"format": STORE_FORMAT, "products": len(asins), "goals": len(goals),
                           "bytes": (tmp / "products.jsonl").stat().st_size}, f)
            try:
                os.rename(tmp, store)
            except OSError:
                if not (store / "meta.json").exists():  # not a concurrent builder's finished store
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def __len__(self) -> int:
        return len(self._offsets)

    def _product(self, i: int) -> dict[str, Any]:
        if not 0 <= i < len(self._offsets):
            raise IndexError(f"product {i} out of range (catalog has {len(self._offsets)})")
        with open(self._products_file, "rb") as f:
            f.seek(int(self._offsets[i]))
            return self._parse(f.readline(), i + 1)

    def _parse(self, line: bytes, lineno: int) -> dict[str, Any]:
        try:
            return json.loads(line)
        except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
            raise DataError(f"{self._products_file}: line {lineno}: {e} (the product store is corrupt; "
                            f"delete {self._store} to rebuild it)") from None

    def asin(self, i: int) -> str:
        return str(self._asins[i])

    def index_of(self, asin: str) -> int | None:
        for key in (asin, asin.upper()):
            j = int(np.searchsorted(self._sorted, key))
            if j < len(self._sorted) and self._sorted[j] == key:
                return int(self._order[j])
        return None

    def index_texts(self) -> Iterator[str]:
        with open(self._products_file, "rb") as f:
            for lineno, line in enumerate(f, 1):
                yield index_text(self._parse(line, lineno))

    def goals(self, split: str) -> Sequence[dict[str, Any]]:
        if split not in self._splits:
            raise ValueError(f"unknown split {split!r}; expected one of {sorted(self._splits)}")
        return self._splits[split]
