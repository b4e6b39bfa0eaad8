"""LEAP's WebShop interface as an optional wrapper (the env itself keeps the original's).

LEAP's own WebShop wrapper (``sanjibanc/leap_llm``) shows the model candidates rather than raw clickables:

- on the search page ``['search[<search query>]']``;
- elsewhere ``click[key]`` for every clickable, with each product ASIN rewritten to ``click[item - <lowercased
  title>]`` (mapped back by title; with duplicate titles the last one wins);
- more than 20 candidates: the first 6 plus 10 others drawn at random; none (the done page): ``['finish']``;

and it multiplies rewards by 10. ``LeapWebShop`` does the same on top of ``WebShopEnv`` and rewrites the
privileged expert's ASIN clicks the same way, so teachers and students speak one action language. (LEAP's
silent visits to the Description and Features pages after each item click are not reproduced.)
"""

from __future__ import annotations

import random
import re
from typing import Any

import gymnasium as gym

from leap_gym.envs.webshop.env import SEARCH_PLACEHOLDER

LEAP_SEARCH = "search[<search query>]"
_ASIN_CLICK = re.compile(r"click\[(b0[0-9a-z]{8})\]")


class LeapWebShop(gym.Wrapper):
    """Candidates and rewards as LEAP presents them; ``info["admissible_actions"]`` holds the candidates."""

    def __init__(self, env: gym.Env, reward_scale: float = 10.0, max_candidates: int | None = 20):
        super().__init__(env)
        self.reward_scale, self.max_candidates = reward_scale, max_candidates
        self._by_title: dict[str, str] = {}
        self._rng = random.Random(0)

    def _item(self, asin: str) -> str:
        base = self.env.unwrapped
        title = base.catalog.product(base.catalog.index_of(asin))["Title"].lower()
        return f"click[item - {title}]"

    def _rewrite(self, action: str) -> str:
        m = _ASIN_CLICK.fullmatch(action)
        return self._item(m.group(1)) if m else action

    def _translate(self, info: dict[str, Any]) -> dict[str, Any]:
        info = dict(info)
        acts = [a for a in info.get("admissible_actions") or [] if a != SEARCH_PLACEHOLDER]
        self._by_title = {}
        if info.get("page") == "search":
            candidates = [LEAP_SEARCH]
        else:
            candidates = []
            for a in acts:
                m = _ASIN_CLICK.fullmatch(a)
                if m:
                    item = self._item(m.group(1))
                    self._by_title[item[len("click["):-1]] = a  # duplicate titles: the last wins, as in LEAP
                    a = item
                candidates.append(a)
            if self.max_candidates is not None and len(candidates) > self.max_candidates:
                rest = candidates[6:]
                candidates = candidates[:6] + self._rng.sample(rest, min(10, len(rest)))
            if not candidates:
                candidates = ["finish"]
        info["admissible_actions"] = candidates
        if "privileged" in info:
            priv = dict(info["privileged"])
            priv["expert_plan"] = [self._rewrite(a) for a in priv.get("expert_plan", [])]
            priv["expert_action"] = self._rewrite(priv.get("expert_action", ""))
            info["privileged"] = priv
        return info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self._rng = random.Random(seed)
        obs, info = self.env.reset(seed=seed, options=options)
        return obs, self._translate(info)

    def step(self, action: str):
        if isinstance(action, str):
            # an item not listed now stays as it is: the env treats it as an invalid click (a silent no-op)
            m = re.fullmatch(r"click\[(item - .+)\]", action.strip(), flags=re.DOTALL)
            if m and m.group(1).lower() in self._by_title:
                action = self._by_title[m.group(1).lower()]
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward * self.reward_scale, terminated, truncated, self._translate(info)
