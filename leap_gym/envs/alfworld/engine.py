"""The real ALFWorld text engine (textworld ``PddlEnv`` + alfworld's demangler), imported safely and made
fast.

Importing ``alfworld`` writes ``~/.cache/alfworld`` and Fast Downward's translator overwrites ``sys.argv``;
both are contained here. ``make_engine(fast=False)`` is the unmodified engine (the reference of the
differential test); ``fast=True`` is the same engine with memoisation that never changes what it computes:

1. ``pddl2sas`` results are memoised per (domain, problem), in memory and in an on-disk cache (a pure function
   of the two texts); the optimised translation (only used by the planner) is built only when asked for.
2. A game's initial ``PddlState`` facts are computed once and copied on later loads/resets.
3. Grammar strings are parsed once (``textgen._parse_and_convert`` and ``Rule.parse_conjunctive_query`` are
   pure functions of their text); ``GameLogic`` (the TWL2 parse) is shared by every game whose grammar differs
   only in its task sentence, with the game's own ``task`` rule swapped in.
4. Context copies during text derivation keep the engine state shared instead of deep-copying it: the grammar
   only reads it.
5. A command's text depends only on its operator's arguments and static facts (``receptacleatlocation``), so
   it is derived once per game and operator.

Every lever is active only inside calls of a ``FastPddlEnv``, so an unmodified engine in the same process
behaves exactly as the library ships it.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import pickle
import re
import sys
import tempfile
import threading
import zlib
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from leap_gym.io import atomic_write_bytes

# textworld, alfworld and fast_downward (the alfworld extra) are imported inside functions, after
# ``import_engine`` has contained their side effects; importing this module loads none of them.

_IMPORT_LOCK = threading.Lock()
_PATCHED = False
_LOCAL = threading.local()  # .depth > 0 while a FastPddlEnv call runs; .replan: whether the planner is needed


def alfworld_package_dir() -> Path:
    """The installed alfworld package directory, found without executing its ``__init__``."""
    spec = importlib.util.find_spec("alfworld")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("leap/ALFWorld-v0 needs the 'alfworld' extra: pip install 'leap-gym[alfworld]'")
    return Path(list(spec.submodule_search_locations)[0])


@contextlib.contextmanager
def guard_argv() -> Iterator[None]:
    """Fast Downward's translator sets ``sys.argv`` and never restores it."""
    saved = list(sys.argv)
    try:
        yield
    finally:
        sys.argv[:] = saved


def import_engine() -> dict[str, Any]:
    """Import textworld/alfworld once, without touching the user's home or ``sys.argv``."""
    with _IMPORT_LOCK, guard_argv():
        # alfworld/info.py creates $ALFWORLD_DATA (default ~/.cache/alfworld) and exports it at import. Point
        # it at a folder that exists for the import only, so nothing is created and the user's setting is
        # untouched.
        unset = "ALFWORLD_DATA" not in os.environ
        if unset:
            os.environ["ALFWORLD_DATA"] = tempfile.gettempdir()
        try:
            import textworld
            from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredInfos
            from textworld.envs.pddl import PddlEnv
        finally:
            if unset:
                os.environ.pop("ALFWORLD_DATA", None)
    return {"textworld": textworld, "PddlEnv": PddlEnv, "AlfredDemangler": AlfredDemangler,
            "AlfredInfos": AlfredInfos}


def _active() -> bool:
    return getattr(_LOCAL, "depth", 0) > 0


@contextlib.contextmanager
def _fast(replan: bool, sas_dir: Path | None) -> Iterator[None]:
    _LOCAL.depth = getattr(_LOCAL, "depth", 0) + 1
    saved = getattr(_LOCAL, "replan", True), getattr(_LOCAL, "sas_dir", None)
    _LOCAL.replan, _LOCAL.sas_dir = replan, sas_dir
    try:
        with guard_argv():
            yield
    finally:
        _LOCAL.depth -= 1
        _LOCAL.replan, _LOCAL.sas_dir = saved


class _LRU(OrderedDict):
    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def get_or(self, key, make):
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = make()
        self[key] = value
        if len(self) > self.size:
            self.popitem(last=False)
        return value


# Memory bounds: a translated game is ~2-3 MB in memory but ~70 KB as a compressed pickle. The few hot games
# stay live; a LEAP run revisits hundreds of generated games (demos, rollouts, evaluations), which are kept
# packed so a revisit costs a ~10 ms unpickle instead of a ~300 ms re-translation. The on-disk cache keeps
# every file game.
_SAS = _LRU(32)  # (sha256(domain, problem), optimize) -> (task, sas)
_SAS_PACKED = _LRU(1024)  # same keys -> zlib-compressed pickle of (task, sas); at most ~75 MB
_PARSES: dict = {}
_QUERIES: dict = {}
_LOGICS = _LRU(64)


def _digest(*texts: str) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


SAS_CACHE_VERSION = "1"


def default_cache_dir() -> Path:
    """Where translated games persist: ``$LEAP_GYM_CACHE/alfworld-sas`` (default
    ``~/.cache/leap-gym/...``)."""
    root = os.environ.get("LEAP_GYM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "leap-gym")
    return Path(root) / "alfworld-sas"


def _disk_cached(folder: Path, digest: str, make):
    """The plain translation of a game, kept on disk: it is a pure function of the domain and problem texts
    (keyed by their sha256 and the installed Fast Downward version), and costs ~0.3-3 s to recompute."""
    tag = _digest(SAS_CACHE_VERSION, importlib.metadata.version("fast-downward-textworld"), digest)[:32]
    path = folder / tag[:2] / f"{tag}.pkl.z"
    try:
        with open(path, "rb") as f:
            return pickle.loads(zlib.decompress(f.read()))
    except FileNotFoundError:
        pass
    except Exception:  # a truncated or foreign file: recompute and overwrite it
        pass
    value = make()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, zlib.compress(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), 1))
    except OSError:
        pass  # a read-only cache only costs speed
    return value


def _packed(key, make):
    """``make()`` through ``_SAS_PACKED``: unpickled from memory when this process translated it before."""
    blob = _SAS_PACKED.get(key)
    if blob is not None:
        _SAS_PACKED.move_to_end(key)
        return pickle.loads(zlib.decompress(blob))
    value = make()
    _SAS_PACKED.get_or(key, lambda: zlib.compress(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), 1))
    return value


def _install_patches() -> None:
    """Wrap the engine's pure, expensive functions with memoisation active only inside FastPddlEnv calls."""
    global _PATCHED
    with _IMPORT_LOCK:
        if _PATCHED:
            return
        import fast_downward
        from textworld.envs.pddl import textgen
        from textworld.logic import Rule

        original_pddl2sas = fast_downward.pddl2sas

        def pddl2sas(domain, problem, verbose=False, optimize=False):
            if not _active():
                return original_pddl2sas(domain, problem, verbose=verbose, optimize=optimize)
            optimize = bool(optimize) and getattr(_LOCAL, "replan", True)
            key = (_digest(domain, problem), optimize)

            def translate():
                folder = getattr(_LOCAL, "sas_dir", None)
                if folder is None or optimize:
                    return original_pddl2sas(domain, problem, verbose=verbose, optimize=optimize)
                return _disk_cached(
                    Path(folder), key[0],
                    lambda: original_pddl2sas(domain, problem, verbose=verbose, optimize=False))

            return _SAS.get_or(key, lambda: _packed(key, translate))

        fast_downward.pddl2sas = pddl2sas

        original_parse = textgen._parse_and_convert

        def parse_and_convert(text, rule_name=None, **kwargs):
            if not _active() or any(kwargs.values()):  # tracing (TW_CSG_TRACE) bypasses the memo
                return original_parse(text, rule_name=rule_name, **kwargs)
            key = (text, rule_name)
            if key not in _PARSES:
                _PARSES[key] = original_parse(text, rule_name=rule_name)
            return copy.deepcopy(_PARSES[key])

        textgen._parse_and_convert = parse_and_convert

        original_query = Rule.parse_conjunctive_query.__func__

        def parse_conjunctive_query(cls, expr):
            if not _active():
                return original_query(cls, expr)
            if expr not in _QUERIES:
                _QUERIES[expr] = original_query(cls, expr)
            return _QUERIES[expr]

        Rule.parse_conjunctive_query = classmethod(parse_conjunctive_query)

        original_copy_context = textgen.copy_context

        def copy_context(context):
            if not _active():
                return original_copy_context(context)
            return {"state": context["state"], "facts": context["facts"],
                    "variables": dict(context["variables"]), "mapping": dict(context["mapping"]),
                    "entity_infos": context["entity_infos"]}

        textgen.copy_context = copy_context

        original_symbol_copy = textgen.Symbol.copy

        def symbol_copy(self, context):
            if not _active():
                return original_symbol_copy(self, context)
            memo: dict = {}
            for ctx in _contexts_of(self):  # share the (read-only) engine state instead of deep-copying it
                for key in ("state", "facts", "entity_infos", "variables", "mapping"):
                    if key in ctx:
                        memo[id(ctx[key])] = ctx[key]
            clone = copy.deepcopy(self, memo)
            clone.context = copy_context(context)
            return clone

        textgen.Symbol.copy = symbol_copy
        _patch_pddl_state()
        _PATCHED = True


_STATES = _LRU(64)  # (sha256(domain, problem), replan) -> initial PddlState snapshot


def _patch_pddl_state() -> None:
    """Game states start from a snapshot: a problem's initial facts are computed once, then copied."""
    from textworld.envs.pddl import logic as pddl_logic

    Original = pddl_logic.PddlState

    class SnapshotPddlState(Original):
        def __new__(cls, downward_lib, pddl_problem, logic):
            if not _active():
                return Original(downward_lib, pddl_problem, logic)
            return object.__new__(cls)

        def __init__(self, downward_lib, pddl_problem, logic):
            key = (_digest(logic.domain, pddl_problem), getattr(_LOCAL, "replan", True))
            snap = _STATES.get(key)
            if snap is None:
                super().__init__(downward_lib, pddl_problem, logic)
                _STATES.get_or(key, lambda: {
                    "task": self.task, "sas": self.sas, "sas_replan": self.sas_replan,
                    "actions": self._actions, "name2type": self.name2type,
                    "sas_bytes": self.sas.encode("utf-8"),
                    "sas_replan_bytes": (None if self.sas_replan is self.sas
                                         else self.sas_replan.encode("utf-8")),
                    "types": [(t.name, t.supertype_names) for t in self.task.types],
                    "facts": {k: frozenset(v) for k, v in self._facts.items()},
                    "vars_by_name": dict(self._vars_by_name),
                    "vars_by_type": {k: frozenset(v) for k, v in self._vars_by_type.items()},
                    "var_counts": Counter(self._var_counts)})
                return
            _STATES.move_to_end(key)
            self._logic, self.downward_lib, self.pddl_problem = logic, downward_lib, pddl_problem
            self.task, self.sas, self.sas_replan = snap["task"], snap["sas"], snap["sas_replan"]
            self._actions, self.name2type = snap["actions"], snap["name2type"]
            import textworld.logic
            for name, supertypes in snap["types"]:
                try:
                    logic.types.add(textworld.logic.Type(name, supertypes))
                except ValueError:
                    pass
            downward_lib.load_sas(snap["sas_bytes"])
            downward_lib.load_sas_replan(snap["sas_replan_bytes"] or snap["sas_bytes"])
            self._facts = defaultdict(set, {k: set(v) for k, v in snap["facts"].items()})
            self._vars_by_name = dict(snap["vars_by_name"])
            self._vars_by_type = defaultdict(set, {k: set(v) for k, v in snap["vars_by_type"].items()})
            self._var_counts = Counter(snap["var_counts"])

    pddl_logic.PddlState = SnapshotPddlState


def _contexts_of(symbol) -> Iterator[dict]:
    """The contexts held by a symbol and the symbols nested in it."""
    stack = [symbol]
    while stack:
        s = stack.pop()
        ctx = getattr(s, "context", None)
        if isinstance(ctx, dict):
            yield ctx
        for attr in ("expression", "symbol"):
            inner = getattr(s, attr, None)
            if inner is not None and hasattr(inner, "context"):
                stack.append(inner)


# Predicates that no action changes: a command whose template queries only these is a function of its
# operator.
STATIC_PREDICATES = frozenset({"receptacleatlocation", "receptacletype", "objecttype", "cancontain",
                               "openable", "pickupable", "isreceptacleobject", "cleanable", "heatable",
                               "coolable",
                               "toggleable", "sliceable"})


def _template_is_static(template: str) -> bool:
    preds = re.findall(r"([a-zA-Z_]+)\(", template.split("|", 1)[1]) if "|" in template else []
    return all(p.lower() in STATIC_PREDICATES for p in preds)


def make_engine(fast: bool = True, planner: bool = False, cache_dir: str | os.PathLike | None | bool = None):
    """An engine: ``AlfredInfos(AlfredDemangler(PddlEnv))``; ``fast=False`` is the unmodified library engine.

    ``planner=True`` requests ``policy_commands`` (Fast Downward replanning, seconds per call). ``cache_dir``
    (fast engine only): where game translations persist across processes (``None``: ``default_cache_dir()``,
    ``False``: in memory only).
    """
    mods = import_engine()
    textworld = mods["textworld"]
    infos = textworld.EnvInfos(admissible_commands=True, won=True, policy_commands=planner)
    with guard_argv():
        if fast:
            _install_patches()
            inner = _fast_env_class(mods["PddlEnv"])(infos)
            inner.sas_dir = None if cache_dir is False else Path(cache_dir or default_cache_dir())
        else:
            inner = mods["PddlEnv"](infos)
        return mods["AlfredInfos"](mods["AlfredDemangler"](inner, shuffle=False))


_FAST_CLASS = None
_RHS_PREFIX = "Your task is to: "
_TASK_RULE = re.compile(r'"rhs": "Your task is to: (.*?)\."')
_PLACEHOLDER = "UNKNOWN GOAL"


def _fast_env_class(PddlEnv):
    global _FAST_CLASS
    if _FAST_CLASS is not None:
        return _FAST_CLASS
    from textworld.envs.pddl import logic as pddl_logic

    class _CommandMemoGrammar:
        """Per-game view of a shared grammar that derives each (static) command template once per operator."""

        def __init__(self, grammar, templates: set[str]):
            self._grammar = grammar
            self._templates = templates
            self._memo: dict = {}

        def __getattr__(self, name):
            return getattr(self._grammar, name)

        def derive(self, start, context=None):
            if start not in self._templates or not context:
                context = {} if context is None else context
                return self._grammar.derive(start, context)
            key = (start, tuple(sorted((ph.name, var.name) for ph, var in context["mapping"].items())))
            if key not in self._memo:
                self._memo[key] = self._grammar.derive(start, context)
            return self._memo[key]

    class FastPddlEnv(PddlEnv):
        """``PddlEnv`` whose calls run with the memoisation levers on (see the module docstring)."""

        def _replan(self) -> bool:
            return bool(self.request_infos.policy_commands)

        def load(self, filename_or_data):
            with _fast(self._replan(), self.sas_dir):
                data = filename_or_data
                if not isinstance(data, dict):
                    with open(filename_or_data) as f:
                        data = json.load(f)
                    self._game_file = filename_or_data
                else:
                    self._game_file = None
                self._game_data = data
                self.walkthrough = data.get("walkthrough", None)
                logic = self._logic_for(data["pddl_domain"], data["grammar"])
                self._logic = logic
                self._pddl_state = pddl_logic.PddlState(self.downward_lib, data["pddl_problem"], self._logic)
                self._entity_infos = self._get_entity_infos()

        @staticmethod
        def _logic_for(domain: str, grammar: str):
            """The game's logic: one TWL2 parse per grammar text up to the task sentence (games differ only
            there), with this game's ``task`` rule swapped in and a per-game command memo."""
            m = _TASK_RULE.search(grammar)
            generic = grammar[:m.start(1)] + _PLACEHOLDER + grammar[m.end(1):] if m else grammar
            shared = _LOGICS.get_or(_digest(domain, generic),
                                    lambda: pddl_logic.GameLogic(domain=domain, grammar=generic))
            rules = shared.grammar._rules
            if m and len(rules.get("task", ())) == 1:
                from textworld.envs.pddl import textgen
                old_rule = rules["task"][0]
                rhs = json.loads('"' + _RHS_PREFIX + m.group(1) + '."')
                task_rule = textgen.ProductionRule(lhs="task",
                                                   rhs=textgen._parse_and_convert(rhs, rule_name="symbols"),
                                                   weight=old_rule.weight, condition=old_rule.condition)
                grammar_obj = textgen.ContextSensitiveGrammar()
                grammar_obj._rules.update(rules)
                grammar_obj._rules["task"] = [task_rule]
            elif m:  # unexpected layout: parse this exact grammar
                shared = _LOGICS.get_or(_digest(domain, grammar),
                                        lambda: pddl_logic.GameLogic(domain=domain, grammar=grammar))
                grammar_obj = shared.grammar
            else:
                grammar_obj = shared.grammar
            logic = copy.copy(shared)
            templates = {a.template for a in shared.actions.values() if _template_is_static(a.template)}
            logic.grammar = _CommandMemoGrammar(grammar_obj, templates)
            return logic

        def reset(self):
            with _fast(self._replan(), self.sas_dir):
                return super().reset()

        def step(self, command):
            with _fast(self._replan(), self.sas_dir):
                return super().step(command)

    _FAST_CLASS = FastPddlEnv
    return FastPddlEnv
