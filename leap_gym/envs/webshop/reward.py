"""WebShop's reward at Buy Now, written from the original's formula (``web_agent_site/engine/goal.py``).

    reward = r_type * (n_att + n_opt + r_price) / (A + O + 1)

with A goal attributes and O goal options. Fuzzy scores use ``rapidfuzz``'s token-set ratio with the same
preprocessing as the original's ``thefuzz`` (lowercase, non-alphanumerics to spaces); integer scores can
differ slightly from thefuzz's difflib fallback, but the ``> 85`` decisions the reward takes agree.

Title nouns (for ``r_type``) came from spaCy's ``en_core_web_lg`` in the original. That model is not on PyPI,
so the extractor is pluggable: records that carry ``title_nouns`` (the procedural catalog writes them) use
those; otherwise spaCy is used when a model is installed, else ``heuristic_nouns`` (documented below).

Deviation (a bug fix, documented): ``goal_options`` may be a list of values or a dict; a dict counts its
values (the original iterated ``(name, value)`` tuples for synthetic goals).
"""

from __future__ import annotations

import functools
import importlib.util
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from rapidfuzz import fuzz, utils

NounExtractor = Callable[[str], list[str]]

COLORS = (
    "alabaster apricot aqua ash asphalt azure banana beige black blue blush bordeaux bronze brown burgundy "
    "camel camo caramel champagne charcoal cheetah chestnut chocolate christmas coffee cognac copper coral "
    "cranberry cream crystal dark denim eggplant elephant espresso fuchsia gold granite grape graphite grass "
    "gray green grey heather indigo ivory ivy khaki lavender lemon leopard light lilac lime magenta maroon "
    "mauve merlot midnight mint mocha multicolor mushroom mustard natural navy nude olive orange peach "
    "pewter pink plum purple rainbow red rose royal rust sand sapphire seashell silver skull slate steel "
    "stone stonewash sunflower tan taupe teal tiger turquoise violet walnut wheat white wine yellow").split()

FUZZY_THRESHOLD = 85  # a match needs a token-set ratio strictly above this


def token_set_ratio(a: str, b: str) -> int:
    """Integer token-set ratio (0..100) after thefuzz-style preprocessing; empty strings score 0."""
    return int(round(fuzz.token_set_ratio(a, b, processor=utils.default_process)))


def fuzzy_match(a: str, b: str) -> bool:
    return token_set_ratio(a, b) > FUZZY_THRESHOLD


def normalize_color(value: str) -> str:
    """The first colour of the (alphabetical) list occurring as a substring, else the value.

    So "dark brown" -> "brown" and "light blue" -> "blue" ("brown"/"blue" come first in the list).
    """
    for color in COLORS:
        if color in value:
            return color
    return value


# --- title nouns
# -----------------------------------------------------------------------------------------------

_STOPWORDS = frozenset(
    "a an and are as at be but by for from if in into is it its no not of on or such that the their then "
    "there these they this to was will with without you your our we i me my he she him her his them us all "
    "any both each few more most other some own same so than too very can just should now per up down out "
    "over under again further once here when where why how what which who whom while off".split())
_ADJECTIVES = frozenset(
    "new best premium high low soft hard light heavy large small medium big mini long short wide slim thin "
    "thick extra super ultra easy quick fast slow free natural organic original classic modern vintage "
    "simple pure fresh hot cold warm cool dry wet full half double single triple non anti multi pro plus "
    "compatible adjustable portable durable comfortable breathable washable waterproof lightweight "
    "professional men women mens womens unisex x xl xxl xs s m l".split())
_ADJ_SUFFIXES = ("ful", "less", "ous", "ive", "able", "ible", "proof", "ly", "ish")
_UNITS = frozenset("oz fl ml lb lbs g kg mm cm inch inches in ft ct".split())
_WORD = re.compile(r"[a-z]+")


def heuristic_nouns(title: str) -> list[str]:
    """Lowercased title words that are probably nouns, without a POS tagger.

    Keeps alphabetic words of 2+ letters that are not stopwords, colour names, units, listed common
    adjectives, or words of 7+ letters with adjective suffixes (-ful, -less, -ous, -ive, -able, -ible, -proof,
    -ly, -ish) or past participles (-ed, 5+ letters). Duplicates are kept, like the original's goal noun list.
    Adjectives and colours that a real tagger would drop are the main error source; identical titles still
    score 1.
    """
    out = []
    for word in _WORD.findall(title.lower()):
        if len(word) < 2 or word in _STOPWORDS or word in _ADJECTIVES or word in _UNITS or word in _COLOR_SET:
            continue
        if (len(word) >= 7 and word.endswith(_ADJ_SUFFIXES)) or (len(word) >= 5 and word.endswith("ed")):
            continue
        out.append(word)
    return out


_COLOR_SET = frozenset(COLORS)


@functools.lru_cache(maxsize=1)
def _spacy_pipeline() -> Any | None:
    for model in ("en_core_web_lg", "en_core_web_md", "en_core_web_sm"):
        if importlib.util.find_spec(model) is not None:
            import spacy  # heavy: imported only when a model is installed

            return spacy.load(model, disable=["parser", "ner", "lemmatizer"])
    return None


def spacy_nouns(title: str) -> list[str]:
    """The original's extractor: tokens tagged NOUN or PROPN by an installed spaCy English model."""
    nlp = _spacy_pipeline()
    if nlp is None:
        raise RuntimeError("no spaCy English model is installed (e.g. `python -m spacy download "
                           "en_core_web_lg`)")
    return [t.text.lower() for t in nlp(title) if t.pos_ in ("PNOUN", "NOUN", "PROPN")]


def get_noun_extractor(name: str = "auto") -> NounExtractor:
    """``"spacy"``, ``"heuristic"``, or ``"auto"`` (spaCy when a model is installed, else the heuristic)."""
    if name == "spacy":
        return spacy_nouns
    if name == "heuristic":
        return heuristic_nouns
    if name == "auto":
        return spacy_nouns if _spacy_pipeline() is not None else heuristic_nouns
    raise ValueError(f"unknown noun extractor {name!r} (expected 'auto', 'spacy' or 'heuristic')")


# --- reward components
# ----------------------------------------------------------------------------------------

def _category_parts(breadcrumb: str) -> set[str]:
    return {p.strip() for p in breadcrumb.split("›")}


def type_reward(product: Mapping[str, Any], goal: Mapping[str, Any],
                noun_extractor: NounExtractor | None = None) -> dict[str, Any]:
    """``r_type`` with its inputs: query match, breadcrumb overlap >= 2, title-noun overlap."""
    query_match = product.get("query") == goal.get("query")
    category_match = len(_category_parts(product.get("product_category", ""))
                         & _category_parts(goal.get("product_category", ""))) >= 2
    if noun_extractor is None and "title_nouns" in product and "title_nouns" in goal:
        purchased, desired = list(product["title_nouns"]), list(goal["title_nouns"])
    else:
        extract = noun_extractor or get_noun_extractor("auto")
        purchased, desired = extract(product.get("name", "")), extract(goal.get("name", ""))
    title_score = len(set(purchased) & set(desired)) / len(desired) if desired else 0.2
    r_type = 1.0
    if not (query_match or category_match or title_score > 0.2):
        r_type = 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return {"r_type": r_type, "query_match": query_match, "category_match": category_match,
            "title_score": title_score}


def attribute_matches(product: Mapping[str, Any], goal_attributes: Iterable[str]) -> int:
    """Goal attributes matched by a product attribute (ratio > 85) or found in its title, bullets or
    description."""
    attrs = list(product.get("Attributes") or []) or ["DUMMY_ATTR"]
    title = product.get("Title", "").lower()
    bullets = " ".join(product.get("BulletPoints") or []).lower()
    description = (product.get("Description") or "").lower()
    n = 0
    for g in goal_attributes:
        if any(fuzzy_match(p, g) for p in attrs) or g in title or g in bullets or g in description:
            n += 1
    return n


def option_matches(chosen: Iterable[str], goal_options: Iterable[str]) -> int:
    """Goal options matched (ratio > 85 after colour normalisation) by some chosen option value."""
    chosen = [normalize_color(c) for c in chosen]
    return sum(1 for g in goal_options if any(fuzzy_match(c, normalize_color(g)) for c in chosen))


def _values(options: Mapping[str, str] | Iterable[str] | None) -> list[str]:
    if options is None:
        return []
    if isinstance(options, Mapping):
        return list(options.values())
    return list(options)


def compute_reward(purchased_product: Mapping[str, Any], goal: Mapping[str, Any], price: float,
                   options: Mapping[str, str] | Iterable[str] | None,
                   noun_extractor: NounExtractor | None = None) -> tuple[float, dict[str, Any]]:
    """The reward of buying ``purchased_product`` at hidden ``price`` with chosen option values ``options``.

    Returns ``(reward, breakdown)``; ``breakdown`` has ``r_type``, ``r_att``, ``r_option`` (None when the goal
    has no options), ``r_price``, their weights, ``query_match``, ``category_match``, ``title_score`` and the
    counts.
    """
    goal_attrs = list(goal.get("attributes") or [])
    goal_opts = _values(goal.get("goal_options"))
    n_a, n_o = len(goal_attrs), len(goal_opts)
    breakdown = type_reward(purchased_product, goal, noun_extractor)
    n_att = attribute_matches(purchased_product, goal_attrs)
    n_opt = option_matches(_values(options), goal_opts)
    r_price = 1.0 if price <= goal["price_upper"] else 0.0
    denom = n_a + n_o + 1
    reward = breakdown["r_type"] * (n_att + n_opt + r_price) / denom
    breakdown.update({
        "r_att": n_att / n_a if n_a else 0.0, "w_att": n_a / denom,
        "r_option": n_opt / n_o if n_o else None, "w_option": n_o / denom if n_o else None,
        "r_price": r_price, "w_price": 1 / denom, "n_att": n_att, "n_opt": n_opt, "reward": reward,
    })
    return reward, breakdown
