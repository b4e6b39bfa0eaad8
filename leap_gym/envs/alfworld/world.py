"""The engine's facts as a small Python world model: what the privileged state and the oracle are computed
from.

The engine reports only true atoms over raw PDDL ids (``_facts``) and display names per id
(``_entity_infos``). ``World.from_facts`` turns them into maps (object -> receptacles, receptacle -> location,
...) keyed by raw id, so ties can be broken by id exactly as the planner-free oracle needs, and names are
applied only on export.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

TASK_TYPES = ("pick_and_place_simple", "look_at_obj_in_light", "pick_clean_then_place_in_recep",
              "pick_heat_then_place_in_recep", "pick_cool_then_place_in_recep", "pick_two_obj_and_place")

# task type -> the object state the goal needs ("" = none)
REQUIRED_STATE = {"pick_clean_then_place_in_recep": "clean", "pick_heat_then_place_in_recep": "hot",
                  "pick_cool_then_place_in_recep": "cool"}
# object state -> the appliance class that produces it and the verb of its command
APPLIANCE = {"clean": ("sinkbasin", "clean"), "hot": ("microwave", "heat"), "cool": ("fridge", "cool")}

_STATE_PREDICATES = {"isclean": "clean", "ishot": "hot", "iscool": "cool", "istoggled": "toggled"}
_DYNAMIC = frozenset({"inreceptacle", "atlocation", "opened", "holds", *_STATE_PREDICATES})


@dataclass(frozen=True)
class Goal:
    """What the task asks, in ALFRED class names lower-cased (``"mug"``, ``"coffeemachine"``,
    ``"desklamp"``)."""

    task_type: str
    object: str
    receptacle: str = ""
    lamp: str = ""

    @property
    def count(self) -> int:
        return 2 if self.task_type == "pick_two_obj_and_place" else 1

    @property
    def state(self) -> str:
        return REQUIRED_STATE.get(self.task_type, "")

    def to_json(self) -> dict[str, Any]:
        return {"task_type": self.task_type, "object": self.object, "receptacle": self.receptacle,
                "lamp": self.lamp, "count": self.count, "state": self.state}


def class_of_type(type_id: str) -> str:
    """``"mugtype"`` -> ``"mug"``."""
    return type_id[:-4] if type_id.endswith("type") else type_id


@dataclass
class World:
    """One state of a game, keyed by raw id; ``names`` maps ids to display names."""

    names: dict[str, str]
    agent_loc: str = ""
    recep_loc: dict[str, str] = field(default_factory=dict)
    recep_class: dict[str, str] = field(default_factory=dict)
    obj_class: dict[str, str] = field(default_factory=dict)
    in_recep: dict[str, set[str]] = field(default_factory=dict)  # object -> receptacles holding it
    openable: set[str] = field(default_factory=set)
    opened: set[str] = field(default_factory=set)
    held: set[str] = field(default_factory=set)
    toggleable: set[str] = field(default_factory=set)
    states: dict[str, set[str]] = field(default_factory=dict)  # object -> {"clean", "hot", "cool", "toggled"}
    can_contain: set[tuple[str, str]] = field(default_factory=set)  # (receptacle class, object class)

    @classmethod
    def from_facts(cls, facts: Iterable[Any], entity_infos: dict[str, Any],
                   static: World | None = None) -> World:
        """Parse the engine's true atoms; with ``static`` (a world of the same game) only the atoms actions
        can change are read and the static maps are shared with it."""
        if static is None:
            names = {k: (info.name or k).strip() for k, info in entity_infos.items()}
            w = cls(names=names)
        else:
            w = cls(names=static.names, recep_loc=static.recep_loc, recep_class=static.recep_class,
                    obj_class=static.obj_class, openable=static.openable, toggleable=static.toggleable,
                    can_contain=static.can_contain)
        for fact in facts:
            p = fact.name
            if static is not None and p not in _DYNAMIC:
                continue
            args = [v.name for v in fact.arguments]
            if p == "inreceptacle":
                w.in_recep.setdefault(args[0], set()).add(args[1])
            elif p == "atlocation":
                w.agent_loc = args[1]
            elif p == "receptacleatlocation":
                w.recep_loc[args[0]] = args[1]
            elif p == "receptacletype":
                w.recep_class[args[0]] = class_of_type(args[1])
            elif p == "objecttype":
                w.obj_class[args[0]] = class_of_type(args[1])
            elif p == "opened":
                w.opened.add(args[0])
            elif p == "openable":
                w.openable.add(args[0])
            elif p == "holds":
                w.held.add(args[1])
            elif p == "toggleable":
                w.toggleable.add(args[0])
            elif p == "cancontain":
                w.can_contain.add((class_of_type(args[0]), class_of_type(args[1])))
            elif p in _STATE_PREDICATES:
                w.states.setdefault(args[0], set()).add(_STATE_PREDICATES[p])
        return w

    # -- queries -------------------------------------------------------------------------------------------
    def name(self, ident: str) -> str:
        return self.names.get(ident, ident)

    def has(self, obj: str, state: str) -> bool:
        return state in self.states.get(obj, ())

    def reachable(self, recep: str) -> bool:
        return self.recep_loc.get(recep) == self.agent_loc

    def cost(self, recep: str) -> int:
        """Commands needed before its contents can be used: a ``go to`` and/or an ``open``."""
        return int(not self.reachable(recep)) + int(recep in self.openable and recep not in self.opened)

    def receptacles_of(self, klass: str) -> list[str]:
        return sorted(r for r, c in self.recep_class.items() if c == klass and r in self.recep_loc)

    def objects_of(self, klass: str) -> list[str]:
        return sorted(o for o, c in self.obj_class.items() if c == klass)

    def contents(self, recep: str) -> list[str]:
        return sorted(o for o, rs in self.in_recep.items() if recep in rs)

    def satisfies(self, obj: str, goal: Goal) -> bool:
        """Whether ``obj`` counts for the goal where it is (placement tasks)."""
        if self.obj_class.get(obj) != goal.object:
            return False
        if goal.state and not self.has(obj, goal.state):
            return False
        return any(self.recep_class.get(r) == goal.receptacle for r in self.in_recep.get(obj, ()))

    def won(self, goal: Goal) -> bool:
        if goal.task_type == "look_at_obj_in_light":
            lamp_here = any(self.obj_class.get(o) == goal.lamp and o in self.toggleable
                            and self.has(o, "toggled")
                            and any(self.reachable(r) for r in self.in_recep.get(o, ()))
                            for o in self.obj_class)
            return lamp_here and any(self.obj_class.get(o) == goal.object for o in self.held)
        for r in self.receptacles_of(goal.receptacle):
            inside = [o for o in self.contents(r) if self.obj_class.get(o) == goal.object
                      and (not goal.state or self.has(o, goal.state))]
            if len(inside) >= goal.count:
                return True
        return False

    # -- export --------------------------------------------------------------------------------------------
    def privileged(self, goal: Goal) -> dict[str, Any]:
        """The JSON part of ``info["privileged"]`` describing this state (display names, sorted)."""
        n = self.name
        objects = sorted(set(self.in_recep) | self.held, key=n)
        locations = {}
        for o in objects:
            locations[n(o)] = "agent" if o in self.held else min(n(r) for r in self.in_recep[o])
        contents = {n(r): sorted(n(o) for o in self.contents(r)) for r in sorted(self.recep_loc, key=n)
                    if r in self.recep_class}
        states = {n(o): sorted(self.states[o]) for o in sorted(self.states, key=n) if self.states[o]}
        here = sorted(n(r) for r in self.recep_loc if self.reachable(r) and r in self.recep_class)
        by_loc: dict[str, list[str]] = {}
        for r in self.recep_loc:
            if r in self.recep_class:
                by_loc.setdefault(self.recep_loc[r], []).append(n(r))
        shared = sorted(sorted(group) for group in by_loc.values() if len(group) > 1)
        if goal.task_type == "look_at_obj_in_light":
            satisfied = sorted(n(o) for o in self.held if self.obj_class.get(o) == goal.object)
        else:
            satisfied = sorted(n(o) for o in objects if self.satisfies(o, goal))
        return {
            "object_locations": locations,
            "receptacle_contents": contents,
            "opened": {n(r): r in self.opened for r in sorted(self.openable, key=n) if r in self.recep_class},
            "agent_location": here,
            "shared_locations": shared,
            "object_states": states,
            "goal": {**goal.to_json(), "satisfied": satisfied},
        }
