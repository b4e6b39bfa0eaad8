"""The WebShop expert teacher, with a privilege knob (LEAP's realizability ablation), and its leak facts.

- ``privilege < 0.25``: no privileged state. It searches with the instruction's words, opens the visible
  result whose title shares the most words with the instruction (within the price bound), picks option values
  named in the instruction, and buys. This is the "teacher without privilege" baseline.
- ``0.25 <= privilege < 0.75`` (default 0.5): uses the privileged target to choose among actions a student
  could take from what it sees (queries built from the instruction, visible results, paging, option values
  named in the instruction) and explains with general reasons that name no privileged fact.
- ``privilege >= 0.75``: follows the env's privileged expert (which may search the target's exact title) and
  may state the target's ASIN, title and hidden price.

Reasons are short first-person sentences drawn from templates, varied deterministically per task and step.

With privilege, a student action is kept (not corrected) when its recorded outcome shortened the privileged
expert's plan by at least one action: it lies on a shortest route to buying the target with a goal-satisfying
option assignment (goal options clicked in another order, another query that lists the target as early). A
different product that would also score 1.0 is not recognised: the recorded state names one target, and
whether another product satisfies the goal needs the reward's product data.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from leap_gym.agents.teachers.base import Teacher, plan_shortened
from leap_gym.records import Trajectory

SEARCH_PLACEHOLDER = "search[<query>]"
_PRICE_CLAUSE = re.compile(r",? and price lower than ([\d.]+) dollars$")
_PAGE = re.compile(r"Page (\d+) \(Total results: (\d+)\)")
_OPENINGS = re.compile(r"^(i am looking for|im looking for|i'm looking for|i would like|i need|i want to "
                       r"buy|i want|find me|i'm searching for|i am searching for|can you get me|show me|get "
                       r"me)\s+")
_FILLER = frozenset("a an the some i am im i'm would like need want for with that is are and in of to it me "
                    "my colored flavored size color style fit".split())
_WORD = re.compile(r"[a-z0-9]+(?:[.'][a-z0-9]+)*")

REASONS: dict[str, tuple[str, ...]] = {
    "search": ("I'll search for the product type together with the key features the instruction asks for.",
               "I need to find candidates first, so I'll search using the main words of the request.",
               "Let me search with the product type and the required features."),
    "open": ("This result looks like the right type of product with the features I need, at a price within "
             "my budget, so I'll open it.",
             "This listing matches the request best among the results here; I'll check its details.",
             "The title of this result fits what I'm asked for, so I'll take a closer look."),
    "next": ("None of the results on this page fit every requirement, so I'll check the next page.",
             "These results don't quite match; the next page may have a better fit.",
             "I haven't found a good match yet; let me look further down the results."),
    "prev": ("A better candidate was on an earlier results page, so I'll go back.",
             "I'll go back to the previous results page to reconsider the listings there."),
    "back_results": ("This item doesn't meet all the requirements, so I'll go back to the results.",
                     "This product isn't quite what I need; let me return to the results."),
    "back_search": ("These results don't match the request well, so I'll start a new search.",
                    "This isn't going anywhere; I'll go back and search again with better words."),
    "item_search": ("This item doesn't meet the requirements and the results I came from have nothing "
                    "better, so I'll search again.",
                    "This product is not what I need; I'll go back and try a different search."),
    "option": ("The instruction asks for {value}, so I'll select that option.",
               "I need {value}, so I'm choosing it before buying.",
               "The request specifies {value}; selecting it now."),
    "buy": ("This item has the required features and options within my budget, so I'll buy it.",
            "Everything the instruction asks for is covered here, so I'll buy it now.",
            "This matches the request, so I'll complete the purchase."),
    "subpage": ("I've seen enough here, so I'll go back to the product page.",
                "Let me return to the item page to decide."),
    "done": ("The purchase is complete.",),
}
PRIVILEGED_REASONS: dict[str, tuple[str, ...]] = {
    "search": ("The target product is \"{title}\"; searching for \"{query}\" lists it.",),
    "open": ("This is the target product {asin} (\"{title}\"), so I'll open it.",),
    "next": ("The target {asin} is on a later results page, so I'll go to the next page.",),
    "prev": ("The target {asin} was on an earlier results page.",),
    "back_results": ("This is not the target {asin}; the target is in the results I came from.",),
    "back_search": ("The target {asin} is not in these results, so I'll search again.",),
    "item_search": ("This is not the target {asin}, and it is not in these results; I'll search again.",),
    "option": ("The target needs the option {value} selected.",),
    "buy": ("This is the target {asin}; its hidden price is {price:.2f}, within budget, so I'll buy it.",),
}


def _segments(observation: str) -> list[str]:
    """Visible strings of an observation in either text mode."""
    if " [SEP] " in observation:
        return [s.strip() for s in observation.split(" [SEP] ")]
    out = []
    for line in observation.split("\n"):
        line = line.strip()
        m = re.fullmatch(r"\[(?:clicked )?button\] (.*) \[(?:clicked )?button_\]", line)
        out.append(m.group(1) if m else line)
    return [s for s in out if s]


def _page(step) -> str:
    acts = step.admissible_actions or []
    obs = step.observation
    if obs.startswith("Thank you for shopping") or " [SEP] Thank you for shopping" in obs:
        return "done"
    if "click[buy now]" in acts:
        return "item"
    if "click[next >]" in acts:
        return "results"
    if "click[back to search]" in acts:
        return "subpage"
    return "search"


def _words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _FILLER]


def instruction_query(instruction: str) -> str:
    """A query a student could write: the instruction without its opening and price clause."""
    text = _PRICE_CLAUSE.sub("", instruction.lower()).strip()
    text = _OPENINGS.sub("", text)
    return " ".join(_words(text))


def _price_bound(instruction: str) -> float:
    m = _PRICE_CLAUSE.search(instruction.lower())
    return float(m.group(1)) if m else float("inf")


def _tag_low(tag: str) -> float | None:
    m = re.search(r"\$([\d.]+)", tag)
    try:
        return float(m.group(1)) if m else None
    except ValueError:
        return None


_ITEM_CLICK = re.compile(r"click\[(b0\w{8}|item - .+)\]", re.DOTALL)


def _results(step) -> list[tuple[str, str, str]]:
    """(action, title, price tag) of the visible results, from the observation and the candidates (product
    clicks are ``click[<asin>]``, or ``click[item - <title>]`` under the LEAP candidate format)."""
    segs = _segments(step.observation)
    lower = [s.lower() for s in segs]
    out = []
    for a in step.admissible_actions or []:
        m = _ITEM_CLICK.fullmatch(a)
        if not m:
            continue
        key = m.group(1)
        if key.startswith("item - "):
            title = key[len("item - "):]
            i = lower.index(title) - 1 if title in lower else -1
        else:
            i = lower.index(key) if key in lower else -1
        if i >= 0 and i + 2 < len(segs):
            out.append((a, segs[i + 1], segs[i + 2]))
    return out


def _visited(trajectory: Trajectory, t: int) -> set[str]:
    return {s.action for s in trajectory.steps[:t] if _ITEM_CLICK.fullmatch(s.action or "")}


class WebShopExpertTeacher(Teacher):
    """Programmatic WebShop teacher; ``privilege`` in [0, 1] (see the module docstring)."""

    name = "webshop-expert"

    def __init__(self, privilege: float = 0.5, seed: int = 0):
        if not 0.0 <= privilege <= 1.0:
            raise ValueError(f"privilege must lie in [0, 1], got {privilege}")
        self.privilege, self.seed = float(privilege), int(seed)

    @property
    def level(self) -> str:
        return "none" if self.privilege < 0.25 else ("full" if self.privilege >= 0.75 else "hint")

    def _reason(self, trajectory: Trajectory, t: int, kind: str, privileged: bool = False, **fmt: Any) -> str:
        table = PRIVILEGED_REASONS if privileged and kind in PRIVILEGED_REASONS else REASONS
        options = table[kind]
        h = hashlib.blake2b(f"{self.seed}|{trajectory.task_id}|{trajectory.task}|{t}|{kind}".encode(),
                            digest_size=4).digest()
        return options[int.from_bytes(h, "big") % len(options)].format(**fmt)

    def propose(self, trajectory: Trajectory, t: int) -> tuple[str, str]:
        step = trajectory.steps[t]
        priv = step.info.get("privileged") or {}
        if self.level == "none" or not priv:  # no privileged state recorded: act on the visible page only
            return self._propose_unprivileged(trajectory, t)
        action = priv.get("expert_action") or ""
        page = _page(step)
        if page == "done" or not action:
            return self._reason(trajectory, t, "done"), action or "click[buy now]"
        if page == "search" and action.startswith("search["):
            action = self._search_action(priv)
        kind = self._kind(action, page)
        if self.level == "full":
            target = priv.get("target") or {}
            return self._reason(trajectory, t, kind, True, title=target.get("Title", ""),
                                asin=priv.get("target_asin", ""), price=float(target.get("price", 0.0)),
                                query=action[len("search["):-1] if action.startswith("search[") else "",
                                value=action[len("click["):-1]), action
        return self._reason(trajectory, t, kind, value=action[len("click["):-1]), action

    def keep_reason(self, trajectory: Trajectory, t: int) -> str | None:
        step = trajectory.steps[t]
        if self.level == "none" or _page(step) == "done" or not plan_shortened(trajectory, t):
            return None
        action = step.action.strip()
        return self._reason(trajectory, t, self._kind(action, _page(step)), value=action[len("click["):-1])

    def _search_action(self, priv: dict[str, Any]) -> str:
        """At ``hint`` level prefer a query built from the instruction that lists the target (title last)."""
        if self.level == "full":
            return priv["expert_action"]
        ranked = [(q["query"], q["rank"]) for q in priv.get("search_queries", []) if q.get("kind") != "title"]
        realizable = [(q, r) for q, r in ranked if r is not None]
        if realizable:
            q, _ = min(realizable, key=lambda qr: (qr[1] // 10, ranked.index(qr)))
            return f"search[{q}]"
        return priv["expert_action"]

    @staticmethod
    def _kind(action: str, page: str) -> str:
        if action.startswith("search["):
            return "search"
        if action == "click[buy now]":
            return "buy"
        if action == "click[next >]":
            return "next"
        if action == "click[< prev]":
            return {"subpage": "subpage", "item": "back_results"}.get(page, "prev")
        if action == "click[back to search]":
            return "item_search" if page in ("item", "subpage") else "back_search"
        if page == "item":
            return "option"
        return "open"

    # --- privilege 0
    # ------------------------------------------------------------------------------------------
    def _propose_unprivileged(self, trajectory: Trajectory, t: int) -> tuple[str, str]:
        step = trajectory.steps[t]
        instruction = trajectory.task or step.info.get("task", "")
        page = _page(step)
        if page == "done":
            return self._reason(trajectory, t, "done"), "click[buy now]"
        if page == "search":
            return self._reason(trajectory, t, "search"), f"search[{instruction_query(instruction)}]"
        if page == "subpage":
            return self._reason(trajectory, t, "subpage"), "click[< prev]"
        if page == "results":
            want = set(_words(_PRICE_CLAUSE.sub("", instruction.lower())))
            bound = _price_bound(instruction)
            seen = _visited(trajectory, t)
            best, best_score = None, -1.0
            for action, title, tag in _results(step):
                low = _tag_low(tag)
                score = len(want & set(_words(title))) - (5.0 if low is not None and low > bound else 0.0)
                if action not in seen and score > best_score:
                    best, best_score = action, score
            m = _PAGE.search(step.observation)
            page_num = int(m.group(1)) if m else 1
            if best is None and page_num < 3:
                return self._reason(trajectory, t, "next"), "click[next >]"
            if best is None:
                return self._reason(trajectory, t, "back_search"), "click[back to search]"
            return self._reason(trajectory, t, "open"), best
        # item page: select option values the instruction names, then buy
        acts = step.admissible_actions or []
        values = acts[acts.index("click[buy now]") + 1:] if "click[buy now]" in acts else []
        text = _PRICE_CLAUSE.sub("", instruction.lower())
        clicked = {s.action for s in trajectory.steps[self._arrival(trajectory, t):t]}
        for a in values:
            v = a[len("click["):-1]
            if a not in clicked and a != SEARCH_PLACEHOLDER and re.search(
                    r"(?<![\w.])" + re.escape(v) + r"(?![\w.])", text):
                return self._reason(trajectory, t, "option", value=v), a
        return self._reason(trajectory, t, "buy"), "click[buy now]"

    @staticmethod
    def _arrival(trajectory: Trajectory, t: int) -> int:
        """The step at which the current item page was opened."""
        for k in range(t - 1, -1, -1):
            if _ITEM_CLICK.fullmatch(trajectory.steps[k].action or ""):
                return k + 1
        return 0


def privileged_only_facts(trajectory: Trajectory, t: int) -> list[str]:
    """Facts a reason at step ``t`` must not state: the target's ASIN, title, distinctive title words and
    hidden price, each unless the student has already seen it on screen."""
    priv = trajectory.steps[t].info.get("privileged") or {}
    target = priv.get("target") or {}
    seen = " ".join(s.observation for s in trajectory.steps[: t + 1]).lower()
    instruction = (trajectory.task or "").lower()
    facts: list[str] = []
    asin = priv.get("target_asin") or target.get("asin")
    if asin and asin.lower() not in seen:
        facts.append(asin)
    title = target.get("Title") or ""
    if title and title.lower() not in seen:
        facts.append(title)
        visible = set(_WORD.findall(seen)) | set(_WORD.findall(instruction))
        facts += sorted({w for w in _WORD.findall(title.lower()) if len(w) >= 4 and w.isalpha()
                         and w not in visible})
    price = target.get("price")
    tag = target.get("Price", "")
    if price is not None and (tag not in (f"${price}",) or (title and title.lower() not in seen)):
        facts += sorted({f"{float(price):.2f}", repr(float(price))})
    return facts
