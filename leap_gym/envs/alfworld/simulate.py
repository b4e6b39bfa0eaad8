"""A state rebuilt from a recorded ``info["privileged"]``, and the effect of one command on it.

Teachers judge a student's step from what the rollout recorded, without running the engine again: rebuild the
``World`` the step was taken in (``world_from_privileged``), apply the student's command (``apply``) and ask
the oracle how many commands remain (``remaining``). Display names serve as ids (they are unique per
instance). What the export leaves out is filled in from ALFWorld's tables: ``canContain`` (which receptacle
classes accept an object class: the oracle needs it to put a wrong object away) and which object classes can
be switched on. Receptacles share a location as ``shared_locations`` says (records made before that field
existed: when a recorded ``agent_location`` showed them together); otherwise each has its own.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterable
from typing import Any

from leap_gym.envs.alfworld import oracle
from leap_gym.envs.alfworld.generate import _tables
from leap_gym.envs.alfworld.world import Goal, World

_START = "@start"  # where the agent stands before its first ``go to``


def _klass(name: str) -> str:
    return name.rsplit(" ", 1)[0] if re.search(r" \d+$", name) else name


@functools.cache
def _affordances() -> tuple[frozenset[tuple[str, str]], frozenset[str]]:
    """(receptacle class, object class) pairs of ALFWorld's canContain table, and the toggleable classes (both
    from the alfworld package, which recorded ALFWorld states come from)."""
    tables = _tables()
    pairs = frozenset((r.lower(), o.lower()) for r, objs in tables["holds"].items() for o in objs)
    return pairs, frozenset(o.lower() for o in tables["actions"]["Toggleable"])


def goal_of(privileged: dict[str, Any]) -> Goal:
    g = privileged.get("goal", {})
    return Goal(g.get("task_type", ""), g.get("object", ""), g.get("receptacle", ""), g.get("lamp", ""))


def world_from_privileged(privileged: dict[str, Any], together: Iterable[Iterable[str]] = ()) -> World:
    """The ``World`` that ``World.privileged`` exported; ``together``: groups of receptacles seen to share a
    location (each step's ``agent_location``)."""
    contents: dict[str, list[str]] = privileged.get("receptacle_contents", {})
    can_contain, toggleable = _affordances()
    w = World(names={})
    loc = {r: "@" + r for r in contents}
    for group in [*privileged.get("shared_locations", []), *together, privileged.get("agent_location", [])]:
        group = [r for r in group if r in loc]
        for r in group[1:]:
            old, new = loc[r], loc[group[0]]
            loc = {k: (new if v == old else v) for k, v in loc.items()}
    here = [r for r in privileged.get("agent_location", []) if r in loc]
    w.agent_loc = loc[here[0]] if here else _START
    w.recep_loc = loc
    w.recep_class = {r: _klass(r) for r in contents}
    for r, objs in contents.items():
        for o in objs:
            w.in_recep.setdefault(o, set()).add(r)
    for o, where in privileged.get("object_locations", {}).items():
        w.obj_class[o] = _klass(o)
        if where == "agent":
            w.held.add(o)
        if _klass(o) in toggleable:
            w.toggleable.add(o)
    w.openable = set(privileged.get("opened", {}))
    w.opened = {r for r, is_open in privileged.get("opened", {}).items() if is_open}
    w.states = {o: set(s) for o, s in privileged.get("object_states", {}).items()}
    w.can_contain = set(can_contain)
    return w


_COMMANDS = [
    (re.compile(r"^go to (?P<r>.+)$"), "go"),
    (re.compile(r"^open (?P<r>.+)$"), "open"),
    (re.compile(r"^close (?P<r>.+)$"), "close"),
    (re.compile(r"^take (?P<o>.+?) from (?P<r>.+)$"), "take"),
    (re.compile(r"^(?:move|put) (?P<o>.+?) (?:to|in/on|in|on) (?P<r>.+)$"), "put"),
    (re.compile(r"^(?P<verb>heat|cool|clean) (?P<o>.+?) with (?P<r>.+)$"), "treat"),
    (re.compile(r"^use (?P<o>.+)$"), "use"),
]
_STATE_OF = {"heat": "hot", "cool": "cool", "clean": "clean"}


def apply(world: World, command: str) -> World:
    """The state after an admissible ``command`` (the engine's effects for ALFWorld's verbs; ``look``,
    ``inventory``, ``examine`` and the like change nothing). The input is not modified."""
    w = copy.copy(world)
    w.in_recep = {o: set(rs) for o, rs in world.in_recep.items()}
    w.opened, w.held = set(world.opened), set(world.held)
    w.states = {o: set(s) for o, s in world.states.items()}
    command = " ".join(command.split())
    for pattern, verb in _COMMANDS:
        m = pattern.match(command)
        if not m:
            continue
        d = m.groupdict()
        if verb == "go" and d["r"] in w.recep_loc:
            w.agent_loc = w.recep_loc[d["r"]]
        elif verb == "open":
            w.opened.add(d["r"])
        elif verb == "close":
            w.opened.discard(d["r"])
        elif verb == "take":
            w.in_recep.pop(d["o"], None)
            w.held.add(d["o"])
        elif verb == "put":
            w.held.discard(d["o"])
            w.in_recep[d["o"]] = {d["r"]}
        elif verb == "treat":
            state = _STATE_OF[d["verb"]]
            s = w.states.setdefault(d["o"], set())
            s.add(state)
            s.discard({"hot": "cool", "cool": "hot"}.get(state, ""))
        elif verb == "use":
            w.states.setdefault(d["o"], set()).add("toggled")
        break
    return w


def remaining(world: World, goal: Goal) -> int | None:
    """How many commands the oracle needs from ``world``: 0 when won, ``None`` at a dead end."""
    if world.won(goal):
        return 0
    return len(oracle.plan(world, goal)) or None


def keeps_optimal(privileged: dict[str, Any], command: str, together: Iterable[Iterable[str]] = ()) -> bool:
    """Whether ``command`` (admissible in the recorded state) leaves the task completable in one command fewer
    than the shortest plan from that state: it lies on *some* optimal plan, not only the one the oracle
    printed. ``False`` when the rebuilt state needs more commands than the recorded plan (it would be
    misjudged)."""
    goal = goal_of(privileged)
    world = world_from_privileged(privileged, together)
    before = remaining(world, goal)
    if not before or before > len(privileged.get("expert_plan") or ()):
        return False
    after = remaining(apply(world, command), goal)
    return after is not None and after <= before - 1
