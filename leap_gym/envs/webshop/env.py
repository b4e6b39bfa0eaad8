"""``leap/WebShop-v0``: the WebShop text environment with the original's mechanics, no Java, no downloads.

Pages, actions and rewards follow the original text env (see ``pages``, ``reward``, ``search``). Products and
goals come from the procedural catalog by default (``tasks="generated"``: ``catalog.GeneratedCatalog``, a
different one per ``task_seed``) or from the original's data files (``tasks="files"``, ``data_dir=...``:
``data.FileCatalog``). The search index is built once per catalog and cached under ``search.cache_root()``.

Actions: ``search[<query>]`` (from any page) and ``click[<key>]``; anything else is a silent no-op with
``info["action_valid"] = False``. Buy Now ends the episode with the reward; the step limit comes from the
registration (15, LEAP's training horizon; pass ``max_episode_steps=30`` for LEAP's evaluation).

``info["privileged"]`` holds the goal, the target ASIN and record (hidden price included), an option
assignment satisfying the goal, the target's rank in the current results, the expert's next action and plan;
at the end of an episode ``info["reward_breakdown"]`` holds the reward's components.

Deviations from the original, on purpose: prices of ranged items and goal price bounds come from seeded
generators (the original drew them from the unseeded global ``random``); ``goal_options`` is always a list of
values; title nouns come from the catalog (``title_nouns``) or a pluggable extractor instead of spaCy's
``en_core_web_lg``; only the ``text`` and ``text_rich`` observation modes exist (no ``html``/``url``); the
debug search prefixes ``<r>``, ``<c>``, ``<q>`` are not supported (they search literally); the labels of the
done page's hidden "Target" block are a best guess (they carry no information). Everything else (page order,
clickables, lower-casing, the greedy action parse, ``< prev`` re-running the search, ``next >`` without bound,
silent no-ops) follows the original.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import gymnasium as gym

from leap_gym.envs.contract import RENDER_MODES, ResetNeeded, check_action, check_render_mode, task_index
from leap_gym.envs.webshop import expert as _expert
from leap_gym.envs.webshop import pages
from leap_gym.envs.webshop.catalog import GeneratedCatalog
from leap_gym.envs.webshop.data import FileCatalog
from leap_gym.envs.webshop.pages import BACK, BUY, DONE, ITEM, NEXT, PREV, RESULTS, SEARCH, SUBPAGE, PageState
from leap_gym.envs.webshop.reward import compute_reward, fuzzy_match, get_noun_extractor, normalize_color
from leap_gym.envs.webshop.search import SearchIndex, cache_root, load_or_build
from leap_gym.spaces import UnicodeText

SEARCH_PLACEHOLDER = "search[<query>]"
OBSERVATION_MODES = ("text", "text_rich")
TASK_SOURCES = ("generated", "files")
_ACTION = re.compile(r"(.+)\[(.+)\]")
DEFAULT_NUM_PRODUCTS = 10_000


MAX_ACTION_CHARS = 4096  # longer actions are invalid: the original's regex backtracks quadratically on them


def parse_action(action: str) -> tuple[str, str | None]:
    """The original's parse: greedy ``name[arg]`` (arg lowercased), else the whole string and ``None``."""
    if len(action) > MAX_ACTION_CHARS:
        return action, None
    m = _ACTION.match(action)
    if m is None:
        return action, None
    return m.group(1), m.group(2).lower()


def satisfying_options(target: dict[str, Any], goal_options: list[str]) -> list[tuple[str, str]]:
    """``(group, value)`` clicks on the target that satisfy each goal option: the exact value, else a fuzzy
    one.

    The group is the one owning the value's key (the later group when two share a value).
    """
    owner: dict[str, str] = {}
    for group, values in target.get("options", {}).items():
        for v in values:
            owner[v] = group
    out: list[tuple[str, str]] = []
    for want in goal_options:
        if want in owner:
            pick = want
        else:
            pick = next((v for v in owner if fuzzy_match(normalize_color(v), normalize_color(want))), None)
        if pick is not None and all(pick != v for _, v in out):
            out.append((owner[pick], pick))
    return out


def _fresh(obj: Any) -> Any:
    """A deep copy of JSON-like data (infos must not share objects between calls)."""
    if isinstance(obj, dict):
        return {k: _fresh(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_fresh(v) for v in obj]
    return obj


class WebShopEnv(gym.Env):
    """WebShop as a Gymnasium text env. See the module docstring.

    ``privileged=False`` skips the expert's search at reset and its plan at every step; ``info["privileged"]``
    is then ``{}`` (``reward_breakdown`` is still reported at the end). The call rules (step before reset,
    task indexes, steps after the end) are those of ``leap_gym.envs.contract``; ``task_index`` indexes the
    split's goals.
    """

    metadata = {"render_modes": list(RENDER_MODES)}
    privileged_info_keys = ("reward_breakdown",)

    def __init__(self, tasks: str = "generated", split: str = "train", observation_mode: str = "text_rich",
                 num_products: int | None = None, task_seed: int = 0, data_dir: str | None = None,
                 noun_extractor: str = "catalog", catalog: Any = None, cache_dir: str | None = None,
                 render_mode: str | None = None, privileged: bool = True):
        if tasks not in TASK_SOURCES:
            raise ValueError(f"tasks must be one of {TASK_SOURCES}, got {tasks!r}")
        if tasks == "files" and data_dir is None and catalog is None:
            raise ValueError("tasks='files' needs data_dir= (the folder with the original's items_*.json "
                             "files)")
        # data_dir alone once meant the files: say it no longer does
        if tasks != "files" and data_dir is not None:
            raise ValueError(f"data_dir= is read with tasks='files' only, got tasks={tasks!r}")
        if observation_mode not in OBSERVATION_MODES:
            raise ValueError(f"observation_mode must be one of {OBSERVATION_MODES}, got {observation_mode!r}")
        self.render_mode = check_render_mode(render_mode)
        self.observation_mode, self.split = observation_mode, split
        self.privileged = bool(privileged)
        root = cache_root() if cache_dir is None else Path(cache_dir)
        if catalog is None:
            if tasks == "files":
                catalog = FileCatalog(data_dir, num_products=num_products, seed=task_seed,
                                      cache_dir=root / "webshop")
            else:
                catalog = GeneratedCatalog(num_products=num_products or DEFAULT_NUM_PRODUCTS, seed=task_seed)
        self.catalog = catalog
        self.goals = catalog.goals(split)
        if len(self.goals) == 0:
            raise ValueError(f"the {split!r} split of this catalog has no goals")
        self.index: SearchIndex = load_or_build(root / "webshop" / catalog.cache_key, catalog.index_texts,
                                                {"catalog": catalog.cache_key})
        self._nouns = None if noun_extractor == "catalog" else get_noun_extractor(noun_extractor)
        self.observation_space = UnicodeText()
        self.action_space = UnicodeText()
        self._search_cache: dict[str, list[int]] = {}
        self.state = PageState()
        self.goal: dict[str, Any] = {}
        self.goal_index = 0
        self._started = False

    @property
    def num_tasks(self) -> int:
        """The number of goals in this split (``task_index`` ranges over them)."""
        return len(self.goals)

    # --- search
    # ----------------------------------------------------------------------------------------------
    def search(self, query: str) -> list[int]:
        """Catalog indices of the top-50 hits for ``query`` (cached for the episode)."""
        hits = self._search_cache.get(query)
        if hits is None:
            if len(self._search_cache) > 64:
                self._search_cache.clear()
            hits = self._search_cache[query] = self.index.search(query)
        return hits

    # --- gym API
    # ---------------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}  # "goal_index" is the older name of "task_index"
        key = "goal_index" if options.get("task_index") is None and options.get("goal_index") is not None \
            else "task_index"
        index = task_index(options, len(self.goals), key)
        if index is None:
            index = int(self.np_random.integers(len(self.goals)))
        self.goal_index = index
        self.goal = self.goals[index]
        self._search_cache.clear()
        self.target_index = self.catalog.index_of(self.goal["asin"])
        if self.privileged:
            self._plan_expert()
        self.state = PageState()
        self._last_valid = self._started = True
        return self._observe(), self._info()

    def _plan_expert(self) -> None:
        """The target, the options that satisfy the goal and the expert's query (its search runs here)."""
        self.target = self.catalog.product(self.target_index)
        self.option_keys = satisfying_options(self.target, list(self.goal.get("goal_options") or []))
        self.query_ranks = []  # (kind, query, rank of the target or None), tried until one lists it on page 1
        for kind, q in _expert.candidate_queries(self.goal, self.target):
            hits = self.search(q)
            rank = hits.index(self.target_index) if self.target_index in hits else None
            self.query_ranks.append((kind, q, rank))
            if rank is not None and rank < pages.RESULTS_PER_PAGE:
                break
        self.expert_query, self.expert_rank = _expert.choose_query([(q, r) for _, q, r in self.query_ranks])

    def step(self, action: str):
        if not self._started:
            raise ResetNeeded()
        action = check_action(action)
        if self.state.page == DONE:  # the contract: nothing runs after the end
            self._last_valid = False
            return self._observe(), 0.0, True, False, self._info()
        valid, reward = self._apply(action)
        self._last_valid = valid
        terminated = self.state.page == DONE
        return self._observe(), reward, terminated, False, self._info()

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        if not self._started:
            raise ResetNeeded("render")
        return self._observe()

    # --- mechanics
    # -------------------------------------------------------------------------------------------
    def _apply(self, action: str) -> tuple[bool, float]:
        name, arg = parse_action(action)
        s = self.state
        if name == "search" and arg:
            s.keywords = arg.split(" ")
            s.hits = self.search(" ".join(s.keywords))
            s.page, s.page_num, s.asin, s.options, s.subpage = RESULTS, 1, None, {}, None
            return True, 0.0
        if name != "click" or arg is None or arg == "search":
            return False, 0.0
        keys = pages.clickables(s, self.catalog)
        kind = keys.get(arg)
        if kind is None:
            return False, 0.0
        if arg == BUY:
            product = self.catalog.product(self.catalog.index_of(s.asin))
            s.reward, s.breakdown = compute_reward(product, self.goal, product["price"], s.options,
                                                   self._nouns)
            s.page = DONE
            return True, float(s.reward)
        if arg == BACK:
            self.state = PageState()
        elif arg == NEXT:
            s.page_num += 1
        elif arg == PREV:
            if s.page == RESULTS:
                s.page_num -= 1
            elif s.page == ITEM:
                s.hits = self.search(" ".join(s.keywords))
                s.page, s.asin, s.options = RESULTS, None, {}
            else:
                s.page, s.subpage = ITEM, None
        elif kind == "subpage":
            s.page, s.subpage = SUBPAGE, arg.capitalize()
        elif kind == "asin":
            s.page, s.asin = ITEM, arg.upper()
            s.asins.add(s.asin)
        elif kind.startswith("option:"):
            s.options[kind[len("option:"):]] = arg
        return True, 0.0

    # --- observation and info
    # --------------------------------------------------------------------------------
    def _observe(self) -> str:
        elems = pages.elements(self.state, self.goal["instruction_text"], self.catalog)
        if self.observation_mode == "text":
            return pages.to_text(elems)
        return pages.to_text_rich(elems, self.state)

    def _info(self) -> dict[str, Any]:
        s = self.state
        keys = pages.clickables(s, self.catalog)
        admissible = [f"click[{k}]" for k in keys if k != "search"] + [SEARCH_PLACEHOLDER]
        done = s.page == DONE
        reward = float(s.reward) if done and s.reward is not None else 0.0
        goal = self.goal
        info = {
            "task": goal["instruction_text"],
            "task_id": (f"{self.catalog.kind}/{self.split}/{getattr(self.catalog, 'seed', 0)}/"
                        f"{self.goal_index}"),
            "task_type": goal.get("category") or "unknown",
            "admissible_actions": admissible,
            "action_valid": self._last_valid,
            "won": done and reward == 1.0,
            "score": reward,
            "page": s.page,
            "available_actions": {"has_search_bar": s.page == SEARCH, "clickables": list(keys)},
            "privileged": self._privileged() if self.privileged else {},
        }
        if done:
            # the original's verbose info has no option terms when the goal has no options
            info["reward_breakdown"] = {k: v for k, v in (s.breakdown or {}).items() if v is not None}
        return info

    def _privileged(self) -> dict[str, Any]:
        s, goal = self.state, self.goal
        plan = _expert.plan(s, goal["asin"], self.target_index, self.option_keys, self.expert_query,
                            self.expert_rank)
        # -1, not None, when the target is not listed: vector envs need one type per key across envs
        rank = s.hits.index(self.target_index) if s.page in (RESULTS, ITEM, SUBPAGE) and \
            self.target_index in s.hits else -1
        return _fresh({
            "goal": {k: goal.get(k) for k in ("instruction_text", "attributes", "goal_options", "price_upper",
                                              "asin", "name", "query", "category", "product_category")},
            "target_asin": goal["asin"],
            "target": self.target,
            "option_assignment": {g: v for g, v in self.option_keys},
            "target_rank": rank,
            "current_asin": s.asin,
            "chosen_options": dict(s.options),
            "search_queries": [{"kind": k, "query": q, "rank": r} for k, q, r in self.query_ranks],
            "expert_action": plan[0] if plan else "",
            "expert_plan": plan,
        })
