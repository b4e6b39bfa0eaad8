"""WebShop's pages as the original text env sees them: visible strings in page order, and the clickables.

A page is a list of ``(kind, text)`` elements, kind one of ``text``, ``button``, ``option`` (an option value
label), ``asin`` (a product link). ``to_text`` gives the ``[SEP]``-joined form; ``to_text_rich`` the button
markup with clicked state, exactly as the original's HTML-to-text conversion lays them out (one line per
visible string).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

SEARCH, RESULTS, ITEM, SUBPAGE, DONE = "search", "results", "item", "item_sub", "done"
RESULTS_PER_PAGE = 10
BACK, NEXT, PREV, BUY = "back to search", "next >", "< prev", "buy now"
SUBPAGES = ("Description", "Features", "Reviews")

Element = tuple[str, str]


@dataclass
class PageState:
    """The session state of the original (goal kept by the env)."""

    page: str = SEARCH
    keywords: list[str] = field(default_factory=list)
    page_num: int = 1
    hits: list[int] = field(default_factory=list)  # catalog indices of the top-50, best first
    asin: str | None = None  # the open product
    asins: set[str] = field(default_factory=set)  # products opened since the last search page
    options: dict[str, str] = field(default_factory=dict)  # group -> chosen value
    subpage: str | None = None
    reward: float | None = None
    breakdown: dict[str, Any] | None = None


def _header(instruction: str) -> list[Element]:
    return [("text", "Instruction:"), ("text", instruction), ("button", "Back to Search")]


def page_hits(state: PageState) -> list[int]:
    start = (state.page_num - 1) * RESULTS_PER_PAGE
    return state.hits[start:start + RESULTS_PER_PAGE] if start >= 0 else []


def elements(state: PageState, instruction: str, catalog) -> list[Element]:
    """The visible strings of the current page, in document order."""
    if state.page == SEARCH:
        return [("text", "WebShop"), ("text", "Instruction:"), ("text", instruction), ("button", "Search")]
    if state.page == RESULTS:
        out = _header(instruction) + [("text", f"Page {state.page_num} (Total results: {len(state.hits)})")]
        if state.page_num > 1:
            out.append(("button", "< Prev"))
        out.append(("button", "Next >"))
        for i in page_hits(state):
            p = catalog.product(i)
            out += [("asin", p["asin"]), ("text", p["Title"]), ("text", p["Price"])]
        return out
    product = catalog.product(catalog.index_of(state.asin))
    if state.page == ITEM:
        out = _header(instruction) + [("button", "< Prev")]
        for group, values in product["options"].items():
            out.append(("text", group))
            out += [("option", v) for v in values]
        out += [("text", product["Title"]), ("text", f"Price: {product['Price']}"), ("text", "Rating: N.A.")]
        out += [("button", s) for s in SUBPAGES] + [("button", "Buy Now")]
        return out
    if state.page == SUBPAGE:
        out = _header(instruction) + [("button", "< Prev")]
        if state.subpage == "Description":
            out.append(("text", product["Description"]))
        elif state.subpage == "Features":
            out += [("text", b) for b in product["BulletPoints"]]
        return out
    # done page, including the original's CSS-hidden debug block (still visible to the text conversion)
    return [("text", "Thank you for shopping with us!"), ("text", "Your code:"), ("text", "None"),
            ("text", "(Paste it in your MTurk interface.)"), ("text", "Purchased"), ("text", "asin"),
            ("text", state.asin or ""), ("text", "options"), ("text", json.dumps(state.options)),
            ("text", "attrs"), ("text", "None"), ("text", "category"), ("text", "None"), ("text", "query"),
            ("text", "None"), ("text", "product category"), ("text", "None"), ("text", "Target"),
            ("text", "asin"), ("text", "options"), ("text", "attrs"), ("text", "price upper"),
            ("text", "instuction text"), ("text", "category"), ("text", "product category"),
            ("text", "query"), ("text", "Goal"), ("text", "None"), ("text", "Reward"),
            ("text", "Your score (min 0.0, max 1.0)"),
            ("text", repr(float(state.reward or 0.0))), ("text", "Reward Details"), ("text", "None")]


def clickables(state: PageState, catalog) -> dict[str, str]:
    """Lowercased clickable keys of the current page, in the original's order, mapped to their kind.

    Option values map to ``"option:<group>"``; when two groups share a value the later group owns the key.
    """
    if state.page == SEARCH:
        return {"search": "search"}
    if state.page == RESULTS:
        keys = {BACK: "button"}
        if state.page_num > 1:
            keys[PREV] = "button"
        keys[NEXT] = "button"
        for i in page_hits(state):
            keys[catalog.asin(i).lower()] = "asin"
        return keys
    if state.page == ITEM:
        keys = {BACK: "button", PREV: "button"}
        keys.update({s.lower(): "subpage" for s in SUBPAGES})
        keys[BUY] = "button"
        for group, values in catalog.product(catalog.index_of(state.asin))["options"].items():
            for v in values:
                keys[v] = "option:" + group
        return keys
    if state.page == SUBPAGE:
        return {BACK: "button", PREV: "button"}
    return {}


def to_text(elems: list[Element]) -> str:
    return " [SEP] ".join(t.strip() for _, t in elems if t.strip())


def to_text_rich(elems: list[Element], state: PageState) -> str:
    chosen = json.dumps(state.options)
    lines, prefix = [], ""
    for kind, t in elems:
        if not t.strip():
            continue
        if kind == "button":
            lines.append(f"[button] {t} [button_]")
        elif kind == "option":
            if f'"{t}"' in chosen:
                lines.append(f"  [clicked button] {t} [clicked button_]")
                prefix = f"You have clicked {t}.\n" + prefix
            else:
                lines.append(f"  [button] {t} [button_]")
        elif kind == "asin":
            mark = "clicked button" if t.upper() in state.asins else "button"
            lines.append(f"\n[{mark}] {t} [{mark}_]")
        else:
            lines.append(t)
    return prefix + "\n".join(lines)
