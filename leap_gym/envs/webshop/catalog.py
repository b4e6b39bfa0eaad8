"""The procedural WebShop catalog: seeded products, near-miss distractors and human-style goals, all lazy.

Nothing is stored per product: product ``i`` is a pure function of ``(seed, i)``, so a million-product catalog
costs only its search index. Products come in families of ``FAMILY`` slots: slot 0 is an *anchor* (the product
a goal may target), slots 1..9 are near-misses derived from it, the rest are ordinary products of the same
type:

- ``missing_attr``: lacks one anchor attribute everywhere (attributes, title, bullets, description);
- ``option_absent``: one option group offers only values that do not fuzzy-match the anchor's;
- ``over_budget``: the same product priced above any price bound a goal on the anchor can have;
- ``sibling``: another type of the category sharing only the top breadcrumb level and no title noun;
- ``stuffed``: a keyword-stuffed title (attributes hyphenated, so not substrings) over weaker attributes;
- ``option_in_text``: an option group mentioned in the description but not selectable.

Goals follow the human-goal format (``instruction_text`` with the original's price clause, ``attributes``,
``goal_options`` as a list, ``price_upper``); there are ``NUM_GOALS`` of them (the human-goal count), split
like the original after a ``random.Random(233)`` shuffle: test = first 500, eval = next 1,000, train = the
rest.

Deviations from the original, on purpose: prices (including the hidden price of ranged items and the goal
price bound) come from seeded generators instead of the global ``random`` state; products carry
``title_nouns`` and a hidden ``price``.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterator, Sequence
from typing import Any

from leap_gym.envs.webshop.reward import fuzzy_match, normalize_color
from leap_gym.envs.webshop.vocab import (
    ATTRIBUTE_SENTENCES,
    BULLET_TAILS,
    CATEGORIES,
    GENERIC_FILLER,
    INTRO_SENTENCES,
    OPENINGS,
    QUALIFIERS,
    TYPES,
    ProductType,
)

GENERATOR_VERSION = 2  # bump whenever generated products change: it keys the cached search indexes
FAMILY = 16
SLOT_KINDS = ("anchor", "missing_attr", "missing_attr", "option_absent", "over_budget", "sibling", "stuffed",
              "option_in_text", "missing_attr", "sibling")
NUM_GOALS = 12_087
SPLIT_SEED = 233
SPLITS = ("train", "eval", "test", "all")
MIN_PRODUCTS, MAX_PRODUCTS = 1_000, 1_000_000

TITLE_TAILS = {
    "beauty": ("for Women", "Gift Set", "Beauty Essentials", "Salon Quality", "for Everyday Makeup"),
    "food": ("Snack", "Family Size", "Gourmet Gift", "Pantry Staple", "Healthy Snacking"),
    "fashion": ("for Outdoor Walking Trekking", "Casual Everyday Wear", "Gift for Him or Her",
                "Classic Style"),
    "furniture": ("for Bedroom Entryway", "Home Decor", "Modern Farmhouse Style", "for Dorm Apartment"),
    "electronics": ("for PC Laptop", "for Home Office", "for Gaming Streaming", "Latest Model"),
}


def _rng(*parts: int) -> random.Random:
    """An independent generator for one product or goal (string seeds hash with SHA-512: no collisions)."""
    return random.Random("/".join(str(p) for p in parts))


# --- ASINs: a bijection between product numbers and 10-character ids ----------------------------------------
_ASIN_MOD = 36 ** 8
_ASIN_MUL = 1_741_577_045_357  # coprime with 36: invertible modulo 36**8
_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _asin(seed: int, i: int) -> str:
    v = (i * _ASIN_MUL + seed * 7_919 + 12_345) % _ASIN_MOD
    out = []
    for _ in range(8):
        v, r = divmod(v, 36)
        out.append(_DIGITS[r])
    return "B0" + "".join(reversed(out))


def _asin_index(seed: int, asin: str) -> int | None:
    asin = asin.upper()
    if len(asin) != 10 or not asin.startswith("B0"):
        return None
    v = 0
    for ch in asin[2:]:
        d = _DIGITS.find(ch)
        if d < 0:
            return None
        v = v * 36 + d
    return ((v - seed * 7_919 - 12_345) * pow(_ASIN_MUL, -1, _ASIN_MOD)) % _ASIN_MOD


# --- option conflicts
# ----------------------------------------------------------------------------------------
@functools.cache
def _conflicts(value: str, axis: tuple[str, ...]) -> frozenset[str]:
    """Values of ``axis`` a goal asking for ``value`` would accept (the reward's option match)."""
    return frozenset(v for v in axis if fuzzy_match(normalize_color(v), normalize_color(value)))


# --- product specs
# -------------------------------------------------------------------------------------------
def _type(ct: tuple[int, int]) -> ProductType:
    return CATEGORIES[ct[0]].types[ct[1]]


def _price(rng: random.Random, lo: float, hi: float) -> dict[str, Any]:
    u = rng.random()
    base = round(lo * (hi / lo) ** rng.random(), 2)
    if u < 0.04:
        return {"pricing": None, "price": 100.0}
    if u < 0.2:
        top = round(base * rng.uniform(1.15, 1.8), 2)
        return {"pricing": [base, top], "price": round(rng.uniform(base, top), 2)}
    return {"pricing": [base], "price": base}


def _random_spec(rng: random.Random, ct: tuple[int, int]) -> dict[str, Any]:
    cat, ptype = CATEGORIES[ct[0]], _type(ct)
    own = list(ptype.attributes)
    shared = [a for a in cat.attributes if a not in own]
    n_own = rng.randint(2, min(5, len(own)))
    attrs = rng.sample(own, n_own) + rng.sample(shared, rng.randint(1, min(3, len(shared))))
    rng.shuffle(attrs)
    axes = list(ptype.options)
    rng.shuffle(axes)
    n_groups = min(len(axes), rng.choices((0, 1, 2, 3), (0.15, 0.35, 0.35, 0.15))[0])
    options = {}
    for g in sorted(axes[:n_groups], key=list(ptype.options).index):
        pool = ptype.options[g]
        k = rng.randint(2, min(12, len(pool)))
        keep = set(rng.sample(range(len(pool)), k))
        options[g] = [v for i, v in enumerate(pool) if i in keep]
    return {"type": ct, "brand": rng.choice(cat.brands), "attrs": attrs, "title_attrs": rng.randint(1, 2),
            "options": options, **_price(rng, *ptype.price),
            "material": rng.choice(ptype.materials) if ptype.materials and rng.random() < 0.6 else None,
            "tail": rng.choice(TITLE_TAILS[cat.name]), "stuffed": False, "text_options": {},
            "line": rng.choice(QUALIFIERS[ptype.query])}


def _other_brand(rng: random.Random, spec: dict[str, Any]) -> str:
    brands = [b for b in CATEGORIES[spec["type"][0]].brands if b != spec["brand"]]
    return rng.choice(brands)


def _drop_attr(rng: random.Random, spec: dict[str, Any], which: int) -> dict[str, Any]:
    out = dict(spec, attrs=list(spec["attrs"]), brand=_other_brand(rng, spec))
    removed = out["attrs"].pop(which % len(out["attrs"]))
    ptype, cat = _type(spec["type"]), CATEGORIES[spec["type"][0]]
    spare = [a for a in ptype.attributes + cat.attributes if a not in spec["attrs"] and a != removed]
    if spare:
        out["attrs"].append(rng.choice(spare))
    return out


def _derive(kind: str, anchor: dict[str, Any], rng: random.Random, slot: int) -> dict[str, Any]:
    ptype = _type(anchor["type"])
    if kind == "option_absent" and anchor["options"]:
        group = rng.choice(sorted(anchor["options"]))
        pool = ptype.options[group]
        taken = set().union(*(_conflicts(v, pool) for v in anchor["options"][group]))
        free = [v for v in pool if v not in taken]
        if free:
            options = dict(anchor["options"], **{group: free[: rng.randint(1, len(free))]})
            return dict(anchor, options=options, brand=_other_brand(rng, anchor))
    if kind == "over_budget":
        return dict(anchor, brand=_other_brand(rng, anchor), pricing=[round(anchor["price"] * 1.6 + 45, 2)],
                    price=round(anchor["price"] * 1.6 + 45, 2))
    if kind == "sibling":
        cat = CATEGORIES[anchor["type"][0]]
        parts = {p.strip() for p in ptype.breadcrumb.split("›")}
        sibs = [(anchor["type"][0], t) for t, other in enumerate(cat.types)
                if other is not ptype and not set(other.nouns) & set(ptype.nouns)
                and len(parts & {p.strip() for p in other.breadcrumb.split("›")}) <= 1]
        if sibs:
            sib = _random_spec(rng, rng.choice(sibs))
            shared = [a for a in anchor["attrs"] if a in cat.attributes]
            sib["attrs"] = shared + [a for a in sib["attrs"] if a not in shared]
            sib["brand"] = _other_brand(rng, anchor)
            sib["material"] = None
            return sib
    if kind == "stuffed":
        out = _drop_attr(rng, anchor, rng.randrange(len(anchor["attrs"])))
        out["attrs"] = [a for a in out["attrs"] if a in anchor["attrs"]][:-1] or out["attrs"][:1]
        out["stuffed"] = True
        out["stuffed_words"] = list(anchor["attrs"])
        return out
    if kind == "option_in_text" and anchor["options"]:
        group = rng.choice(sorted(anchor["options"]))
        options = {g: v for g, v in anchor["options"].items() if g != group}
        return dict(anchor, options=options, text_options={group: anchor["options"][group]},
                    brand=_other_brand(rng, anchor))
    return _drop_attr(rng, anchor, slot)


def _title_case(phrase: str) -> str:
    return " ".join(w[:1].upper() + w[1:] for w in phrase.split())


def _render(spec: dict[str, Any], rng: random.Random, asin: str) -> dict[str, Any]:
    """The product record in the original's normalised field names (plus hidden ``price`` and
    ``title_nouns``)."""
    ct = spec["type"]
    cat, ptype = CATEGORIES[ct[0]], _type(ct)
    attrs = spec["attrs"]
    if spec["stuffed"]:
        words = [w.replace(" ", "-") for w in spec["stuffed_words"] if " " in w]
        title = " ".join([spec["brand"], _title_case(" ".join(words)), _title_case(spec["line"]), ptype.title,
                          ptype.title, spec["tail"]])
    else:
        shown = [_title_case(a) for a in attrs[: spec["title_attrs"]]]
        parts = [spec["brand"], *shown, _title_case(spec["line"]), ptype.title]
        if spec["material"]:
            parts.append(_title_case(spec["material"]))
        parts.append(spec["tail"])
        title = " ".join(parts)
        first_opts = [v[0] for v in spec["options"].values()][:1]
        if first_opts and rng.random() < 0.5:
            title += " - " + _title_case(first_opts[0])
    type_name = f"{spec['line']} {ptype.title.lower()}"
    sentences = [rng.choice(INTRO_SENTENCES).format(brand=spec["brand"], type=type_name)]
    for a in attrs:
        if rng.random() < 0.7:
            s = rng.choice(ATTRIBUTE_SENTENCES)
            sentences.append(s.format(a=a, A=a[:1].upper() + a[1:]))
    for g, values in spec["text_options"].items():
        sentences.append(f"Also made in {', '.join(values)} ({g}).")
    fillers = list(cat.filler) + list(GENERIC_FILLER)
    sentences += rng.sample(fillers, rng.randint(4, 7))
    head, tail = sentences[:1], sentences[1:]
    rng.shuffle(tail)
    description = " ".join(head + tail)
    bullet_attrs = rng.sample(attrs, min(len(attrs), rng.randint(2, 5)))
    bullets = [f"{_title_case(a)} {rng.choice(BULLET_TAILS)}" for a in bullet_attrs]
    bullets += rng.sample(cat.filler, rng.randint(1, 2))
    pricing = spec["pricing"]
    if pricing is None:
        prices, tag = [100.0], "$100.0"
    elif len(pricing) == 1:
        prices, tag = list(pricing), f"${pricing[0]}"
    else:
        prices, tag = list(pricing[:2]), f"${pricing[0]} to ${pricing[1]}"
    nouns = [w.lower() for w in spec["brand"].replace("&", " ").split()] + list(ptype.nouns)
    if spec["material"] and not spec["stuffed"]:
        nouns.append(spec["material"])
    return {
        "asin": asin, "name": title, "Title": title, "Description": description, "BulletPoints": bullets,
        "pricing": prices, "Price": tag, "price": spec["price"],
        "options": {g: list(v) for g, v in spec["options"].items()}, "Attributes": list(attrs),
        "category": cat.name, "query": ptype.query, "product_category": ptype.breadcrumb,
        "Rating": "N.A.", "Reviews": [], "title_nouns": nouns,
    }


def index_text(product: dict[str, Any]) -> str:
    """The text the original indexes: title, description, first bullet and the option text, lowercased."""
    option_text = ", and ".join(f"{g}: {', '.join(v)}" for g, v in product.get("options", {}).items())
    bullets = product.get("BulletPoints") or [""]
    return " ".join([product["Title"], product.get("Description", ""), bullets[0], option_text]).lower()


def price_bound(rng: random.Random, price: float) -> tuple[float, str]:
    """The original's price bound: max of 2 distinct draws among the first 4 tens above ``price``, with
    clause."""
    cands = [p for p in range(10, 1000, 10) if p > price][:4]
    if len(cands) < 2:
        return 1_000_000.0, ""
    upper = float(max(rng.sample(cands, 2)))
    return upper, f", and price lower than {upper:.2f} dollars"


_OPTION_PHRASES = {
    "color": ("in {v} color", "in the color {v}", "{v} colored"),
    "size": ("in size {v}", "in {v} size", "size {v}"), "flavor name": ("in {v} flavor", "{v} flavored"),
    "scent": ("with {v} scent", "in {v} scent"),
    "style": ("in {v} style",), "length": ("{v} long", "in {v} length"), "fit type": ("in {v} fit",),
    "item package quantity": ("{v}",),
}


def _instruction(rng: random.Random, ptype: ProductType, line: str, attrs: list[str],
                 opts: dict[str, str]) -> str:
    opening = rng.choices([o for o, _ in OPENINGS], [w for _, w in OPENINGS])[0]
    phrase = rng.choice(ptype.phrases)
    for lead in ("pair of ", "box of ", "bag of ", "bottle of ", ""):
        if phrase.startswith(lead):
            phrase = lead + line + " " + phrase[len(lead):]
            break
    plural = phrase.endswith("s") and not phrase.startswith(("pair", "box", "bag", "bottle", "pack"))
    form = rng.randrange(3)
    if form == 0 and len(attrs) <= 2:
        np_ = " ".join(attrs) + " " + phrase
    elif form == 1:
        np_ = phrase + (" that are " if plural else " that is ") + _join(attrs)
    else:
        np_ = phrase + " with " + _join(attrs)
    art = "" if plural else ("an " if np_[0] in "aeiou" else "a ")
    text = f"{opening} {art}{np_}"
    clauses = [rng.choice(_OPTION_PHRASES.get(g, ("{v}",))).format(v=v) for g, v in opts.items()]
    if clauses:
        text += (" " + " and ".join(clauses) if len(clauses) == 1
                 else ", " + ", ".join(clauses[:-1]) + " and " + clauses[-1])
    return text


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


class _LazyGoals(Sequence):
    def __init__(self, catalog: GeneratedCatalog, ids: list[int]):
        self._catalog, self._ids = catalog, ids

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self._catalog.goal(self._ids[i])


class GeneratedCatalog:
    """A seeded catalog of ``num_products`` products (1,000..1,000,000) and ``NUM_GOALS`` goals."""

    kind = "generated"

    def __init__(self, num_products: int = 10_000, seed: int = 0):
        if not MIN_PRODUCTS <= num_products <= MAX_PRODUCTS:
            raise ValueError(f"num_products must lie in [{MIN_PRODUCTS}, {MAX_PRODUCTS}], got {num_products}")
        self.num_products, self.seed = int(num_products), int(seed)
        self.num_families = self.num_products // FAMILY
        self.product = functools.lru_cache(maxsize=4096)(self._product)
        self.goal = functools.lru_cache(maxsize=2048)(self._goal)
        self._anchor_spec = functools.lru_cache(maxsize=4096)(self._anchor)
        order = list(range(NUM_GOALS))
        random.Random(SPLIT_SEED).shuffle(order)
        self._split_ids = {"test": order[:500], "eval": order[500:1500], "train": order[1500:], "all": order}

    @property
    def cache_key(self) -> str:
        return f"generated-v{GENERATOR_VERSION}-seed{self.seed}-n{self.num_products}"

    def __len__(self) -> int:
        return self.num_products

    def asin(self, i: int) -> str:
        return _asin(self.seed, i)

    def index_of(self, asin: str) -> int | None:
        i = _asin_index(self.seed, asin)
        return i if i is not None and i < self.num_products else None

    def _anchor(self, family: int) -> dict[str, Any]:
        rng = _rng(self.seed, "anchor", family)
        return _random_spec(rng, rng.choice(TYPES))

    def spec(self, i: int) -> dict[str, Any]:
        """The generation spec of product ``i`` (its family's anchor decides near-misses)."""
        family, slot = divmod(i, FAMILY)
        if family >= self.num_families:  # the tail: unrelated products
            rng = _rng(self.seed, "tail", i)
            return _random_spec(rng, rng.choice(TYPES))
        anchor = self._anchor_spec(family)
        if slot == 0:
            return anchor
        rng = _rng(self.seed, "slot", i)
        if slot < len(SLOT_KINDS):
            return _derive(SLOT_KINDS[slot], anchor, rng, slot)
        return _random_spec(rng, anchor["type"])

    def _product(self, i: int) -> dict[str, Any]:
        if not 0 <= i < self.num_products:
            raise IndexError(f"product {i} out of range (catalog has {self.num_products})")
        return _render(self.spec(i), _rng(self.seed, "text", i), self.asin(i))

    def index_texts(self) -> Iterator[str]:
        for i in range(self.num_products):
            yield index_text(self._product(i))

    def _goal(self, g: int) -> dict[str, Any]:
        rng = _rng(self.seed, "goal", g)
        family = rng.randrange(self.num_families)
        target = self._product(family * FAMILY)
        spec = self._anchor_spec(family)
        n_att = min(len(spec["attrs"]), rng.choices((1, 2, 3, 4), (0.2, 0.35, 0.3, 0.15))[0])
        attrs = rng.sample(spec["attrs"], n_att)
        groups = sorted(spec["options"])
        n_opt = min(len(groups), rng.choices((0, 1, 2, 3), (0.25, 0.4, 0.25, 0.1))[0])
        chosen = sorted(rng.sample(groups, n_opt), key=groups.index)
        assignment = {g_: rng.choice(spec["options"][g_]) for g_ in chosen}
        upper, clause = price_bound(rng, target["price"])
        text = _instruction(rng, _type(spec["type"]), spec["line"], attrs, assignment)
        return {
            "asin": target["asin"], "category": target["category"], "query": target["query"],
            "name": target["name"], "product_category": target["product_category"],
            "instruction_text": text.strip(".") + clause, "attributes": attrs,
            "goal_options": list(assignment.values()), "option_assignment": assignment,
            "price_upper": upper, "weight": 1, "title_nouns": list(target["title_nouns"]), "goal_id": g,
        }

    def goals(self, split: str) -> Sequence[dict[str, Any]]:
        if split not in self._split_ids:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        return _LazyGoals(self, self._split_ids[split])
