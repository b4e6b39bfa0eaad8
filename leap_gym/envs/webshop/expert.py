"""The privileged expert: the remaining action plan that buys the goal's target with the right options.

From any page it finds the shortest route the UI allows: click the target when it is listed, page towards it
when it is among the current hits, go ``< prev`` from a wrong item when the results it came from hold the
target, and otherwise ``back to search`` and search with the chosen query. On the target's page it clicks each
goal option value not chosen yet, then ``buy now``.
"""

from __future__ import annotations

import re
from typing import Any

from leap_gym.envs.webshop.pages import (
    BACK,
    BUY,
    DONE,
    ITEM,
    NEXT,
    PREV,
    RESULTS,
    RESULTS_PER_PAGE,
    SEARCH,
    SUBPAGE,
    PageState,
)

_PRICE_CLAUSE = re.compile(r",? and price lower than [\d.]+ dollars$")


QUERY_KINDS = ("type_attributes", "instruction", "title")  # the last is not realisable by a student


def candidate_queries(goal: dict[str, Any], target: dict[str, Any]) -> list[tuple[str, str]]:
    """``(kind, query)`` the expert may type, most realisable first: type + attributes, the instruction
    (without the price clause), the target's title."""
    words = [goal.get("query", "")] + list(goal.get("attributes") or [])
    instruction = _PRICE_CLAUSE.sub("", goal.get("instruction_text", "")).strip()
    out: list[tuple[str, str]] = []
    queries = (" ".join(w for w in words if w), instruction, target["Title"].lower())
    for kind, q in zip(QUERY_KINDS, queries, strict=True):
        q = " ".join(q.lower().split())
        if q and q not in [c for _, c in out]:
            out.append((kind, q))
    return out


def choose_query(ranked: list[tuple[str, int | None]]) -> tuple[str, int | None]:
    """The first query that lists the target on results page 1, else the one that lists it earliest."""
    for q, rank in ranked:
        if rank is not None and rank < RESULTS_PER_PAGE:
            return q, rank
    found = [(rank, i) for i, (q, rank) in enumerate(ranked) if rank is not None]
    if found:
        _, i = min(found)
        return ranked[i]
    return ranked[-1]


def _from_results(page_num: int, rank: int, target_asin: str) -> list[str]:
    want = rank // RESULTS_PER_PAGE + 1
    moves = ([f"click[{NEXT}]"] * (want - page_num) if want > page_num
             else [f"click[{PREV}]"] * (page_num - want))
    return moves + [f"click[{target_asin.lower()}]"]


def plan(state: PageState, target_asin: str, target_index: int, option_keys: list[tuple[str, str]],
         query: str, query_rank: int | None) -> list[str]:
    """The remaining actions from ``state``. ``option_keys`` are ``(group, value)`` pairs to select."""
    if state.page == DONE:
        return []
    finish = [f"click[{v}]" for g, v in option_keys] + [f"click[{BUY}]"]
    from_search = [f"search[{query}]"] + (_from_results(1, query_rank, target_asin) if query_rank is not None
                                          else [f"click[{target_asin.lower()}]"]) + finish
    rank = state.hits.index(target_index) if target_index in state.hits else None
    if state.page == SEARCH:
        return from_search
    if state.page == RESULTS:
        if rank is not None:
            return _from_results(state.page_num, rank, target_asin) + finish
        return [f"click[{BACK}]"] + from_search
    on_target = state.asin is not None and state.asin.upper() == target_asin.upper()
    if state.page == SUBPAGE:
        if on_target:
            return [f"click[{PREV}]"] + _finish_on_item(state, option_keys)
        return [f"click[{PREV}]"] + plan(PageState(page=ITEM, hits=state.hits, page_num=state.page_num,
                                                   asin=state.asin), target_asin, target_index, option_keys,
                                         query, query_rank)
    if state.page == ITEM:
        if on_target:
            return _finish_on_item(state, option_keys)
        if rank is not None:
            return [f"click[{PREV}]"] + _from_results(state.page_num, rank, target_asin) + finish
        return [f"click[{BACK}]"] + from_search
    return []


def _finish_on_item(state: PageState, option_keys: list[tuple[str, str]]) -> list[str]:
    todo = [f"click[{v}]" for g, v in option_keys if state.options.get(g) != v]
    return todo + [f"click[{BUY}]"]
