"""Seeded generation of ALFWorld games from the data the alfworld package ships (no download, no simulator).

ALFRED's own generator needs AI2-THOR; the alfworld wheel still ships each scene's object classes
(``layouts/FloorPlan<N>-objects.json``), receptacle poses (``-openable.json``), reachable floor points
(``-layout.npy``), the ``canContain``/affordance tables (``gen/constants.py``) and the goal library. A game is
built from them in ALFWorld's own PDDL problem format (ids ``Type|x|y|z`` mangled as in the released files),
so the unmodified engine plays it exactly like a released game. Every game is validated on the engine: the
goal is false at reset and the oracle's plan, every command admissible, wins it.

``split="train"`` draws scenes from ALFRED's 108 training scenes, ``split="test"`` from its ``valid_unseen``
scenes (10, 219, 308, 424), so test games are out of distribution like ALFWorld's unseen evaluation.
``(split, seed, index)`` fixes a game: one ``random.Random`` seeded by that triple drives every choice.
"""

from __future__ import annotations

import functools
import json
import random
import threading
from typing import Any

import numpy as np

from leap_gym.envs.alfworld import oracle
from leap_gym.envs.alfworld.engine import alfworld_package_dir, guard_argv, import_engine, make_engine
from leap_gym.envs.alfworld.placement import holder_weight
from leap_gym.envs.alfworld.tasks import Game, legacy_domain, wheel_grammar
from leap_gym.envs.alfworld.world import TASK_TYPES, Goal, World

# alfworld's tables are imported in ``_tables``, after ``import_engine`` has contained alfworld's import-time
# side effects; importing this module loads no alfworld.

SPLITS = ("train", "test")
VALID_UNSEEN_SCENES = (10, 219, 308, 424)
# ALFRED's hidden test scenes: used by neither split
TESTS_UNSEEN_SCENES = (9, 29, 215, 226, 315, 325, 404, 425)
ROOMS = {"Kitchen": range(1, 31), "LivingRoom": range(201, 231), "Bedroom": range(301, 331),
         "Bathroom": range(401, 431)}
_APPLIANCE = {"pick_clean_then_place_in_recep": "SinkBasin", "pick_heat_then_place_in_recep": "Microwave",
              "pick_cool_then_place_in_recep": "Fridge"}
_PROPERTY = {"pick_clean_then_place_in_recep": "Cleanable", "pick_heat_then_place_in_recep": "Heatable",
             "pick_cool_then_place_in_recep": "Coolable"}
_LAMP_HOLDERS = ("Desk", "SideTable", "Dresser")
_MAX_ATTEMPTS = 200


def scenes(split: str) -> list[int]:
    if split == "test":
        return list(VALID_UNSEEN_SCENES)
    if split == "train":
        excluded = set(VALID_UNSEEN_SCENES) | set(TESTS_UNSEEN_SCENES)
        return [s for r in ROOMS.values() for s in r if s not in excluded]
    raise ValueError(f"generated splits are {SPLITS}, got {split!r}")


def room_of(scene: int) -> str:
    return next(room for room, r in ROOMS.items() if scene in r)


@functools.cache
def _tables() -> dict[str, Any]:
    import_engine()  # sets ALFWORLD_DATA before alfworld's __init__ runs
    from alfworld.gen import constants as c
    from alfworld.gen import goal_library as glib
    static = set(c.RECEPTACLES) - set(c.MOVABLE_RECEPTACLES)
    holds = {k: set(v) for k, v in c.VAL_RECEPTACLE_OBJECTS.items()}
    placeable = set().union(*holds.values())
    pickup = {o for o in c.OBJECTS if o in placeable and "Sliced" not in o and o not in static
              and o not in c.VAL_ACTION_OBJECTS["Toggleable"]}
    return {"static": static, "holds": holds, "pickup": pickup, "movable": set(c.MOVABLE_RECEPTACLES),
            "actions": {k: set(v) for k, v in c.VAL_ACTION_OBJECTS.items()},
            "openable": set(c.OPENABLE_CLASS_LIST), "goals": {t: glib.gdict[t] for t in TASK_TYPES},
            "goals_valid": c.GOALS_VALID}


@functools.lru_cache(maxsize=256)
def _scene(scene: int) -> dict[str, Any]:
    base = alfworld_package_dir() / "gen" / "layouts"
    with open(base / f"FloorPlan{scene}-objects.json") as f:
        classes = json.load(f)
    with open(base / f"FloorPlan{scene}-openable.json") as f:
        poses = json.load(f)
    points = np.load(base / f"FloorPlan{scene}-layout.npy").tolist()
    return {"classes": sorted(set(classes)), "poses": poses, "points": [tuple(p) for p in points]}


def _class_of_id(alfred_id: str) -> str:
    parts = alfred_id.split("|")
    return parts[4] if len(parts) > 4 else parts[0]


def mangle(alfred_id: str) -> str:
    """ALFRED id -> PDDL id, as in the released games."""
    for a, b in (("|", "_bar_"), ("-", "_minus_"), ("+", "_plus_"), (".", "_dot_"), (",", "_comma_")):
        alfred_id = alfred_id.replace(a, b)
    return alfred_id


def _coord(v: float) -> str:
    return f"{v:+06.2f}"


def _loc(x: float, z: float, yaw: float, horizon: float) -> str:
    return (f"loc|{int(round(x / 0.25))}|{int(round(z / 0.25))}|{int(round(yaw / 90)) % 4}|"
            f"{int(round(horizon))}")


class _Builder:
    """One attempt at a game; ``None`` from ``build`` means the draw was infeasible (the caller redraws)."""

    def __init__(self, rng: random.Random, task_type: str, scene: int):
        self.rng, self.task_type, self.scene = rng, task_type, scene
        self.T = _tables()
        self.S = _scene(scene)
        self.receps: dict[str, tuple[str, str]] = {}  # alfred id -> (class, location)
        self.objects: dict[str, tuple[str, str]] = {}  # alfred id -> (class, holder id)

    def _point(self, used: set[str]) -> tuple[str, tuple[float, float]]:
        for _ in range(100):
            x, z = self.rng.choice(self.S["points"])
            loc = _loc(x, z, self.rng.randrange(4) * 90, 30)
            if loc not in used:
                return loc, (x, z)
        raise RuntimeError("no free floor point")

    def receptacles(self) -> None:
        used = set()
        for rid, (x, z, yaw, horizon) in sorted(self.S["poses"].items()):
            klass = _class_of_id(rid)
            if klass in self.T["static"]:
                loc = _loc(x, z, yaw, horizon)
                self.receps[rid] = (klass, loc)
                used.add(loc)
        present = {k for k, _ in self.receps.values()}
        for klass in self.S["classes"]:
            if klass not in self.T["static"] or klass in present:
                continue
            for _ in range(4 if klass == "StoveBurner" else 1):
                loc, (x, z) = self._point(used)
                used.add(loc)
                coords = "|".join(_coord(v) for v in (x + self.rng.uniform(-0.4, 0.4),
                                                      self.rng.uniform(0.0, 1.0),
                                                      z + self.rng.uniform(-0.4, 0.4)))
                rid = {"SinkBasin": f"Sink|{coords}|SinkBasin",
                       "BathtubBasin": f"Bathtub|{coords}|BathtubBasin"}.get(klass, f"{klass}|{coords}")
                self.receps[rid] = (klass, loc)
        self.used_locs = used

    def holders(self, klass: str, exclude: set[str] = frozenset()) -> list[str]:
        if klass == "DeskLamp":  # lamps stand on furniture; the canContain table does not list them
            return sorted(r for r, (rc, _) in self.receps.items() if rc in _LAMP_HOLDERS)
        return sorted(r for r, (rc, _) in self.receps.items()
                      if rc not in exclude and klass in self.T["holds"].get(rc, ()))

    def place(self, klass: str, n: int, exclude: set[str] = frozenset()) -> bool:
        options = self.holders(klass, exclude)
        if not options:
            return False
        weights = [holder_weight(klass, self.receps[h][0]) for h in options]
        for _ in range(n):
            holder = self.rng.choices(options, weights)[0]
            base = holder.split("|")
            for _ in range(20):
                x, y, z = (float(base[i]) + self.rng.uniform(-0.3, 0.3) for i in (1, 2, 3))
                oid = f"{klass}|{_coord(x)}|{_coord(y)}|{_coord(z)}"
                if oid not in self.objects and oid not in self.receps:
                    self.objects[oid] = (klass, holder)
                    break
        return True

    def build(self) -> tuple[dict[str, Any], Goal, str] | None:
        T, rng, task = self.T, self.rng, self.task_type
        if room_of(self.scene) not in T["goals_valid"][task]:
            return None
        self.receptacles()
        recep_classes = sorted({k for k, _ in self.receps.values()})
        scene_objs = sorted(set(self.S["classes"]) & T["pickup"])
        appliance = _APPLIANCE.get(task)
        if appliance and appliance not in recep_classes:
            return None
        lamp = ""
        if task == "look_at_obj_in_light":
            if "DeskLamp" not in self.S["classes"] or not self.holders("DeskLamp"):
                return None
            lamp = "DeskLamp"
        candidates = [o for o in scene_objs if not appliance or o in T["actions"][_PROPERTY[task]]]
        if not candidates:
            return None
        obj = rng.choice(candidates)
        parent = ""
        if task != "look_at_obj_in_light":
            parents = [r for r in recep_classes if obj in T["holds"].get(r, ()) and r != appliance]
            if not parents:
                return None
            parent = rng.choice(parents)
        exclude = {c for c in (parent, appliance) if c}
        n = rng.randint(2, 3) if task == "pick_two_obj_and_place" else rng.randint(1, 3)
        if not self.place(obj, n, exclude):
            return None
        if "DeskLamp" in self.S["classes"] and self.holders("DeskLamp"):
            self.place("DeskLamp", 1)
        others = [o for o in scene_objs if o != obj]
        for klass in rng.sample(others, min(len(others), rng.randint(8, 20))):
            self.place(klass, rng.randint(1, 3))
        agent_loc, _ = self._point(self.used_locs)
        desc = rng.choice(T["goals"][task]["templates"]).format(obj=obj.lower(), recep=parent.lower(),
                                                              toggle=lamp.lower())
        goal_pddl = T["goals"][task]["pddl"].format(obj=obj, recep=parent, toggle=lamp).replace("#", "-")
        problem = self.problem(agent_loc, goal_pddl)
        game = {"pddl_domain": legacy_domain(), "grammar": wheel_grammar().replace("UNKNOWN GOAL", desc),
                "pddl_problem": problem, "solvable": True}
        goal = Goal(task_type=task, object=obj.lower(), receptacle=parent.lower(), lamp=lamp.lower())
        return game, goal, desc

    def problem(self, agent_loc: str, goal_pddl: str) -> str:
        T = self.T
        m = mangle
        otypes = sorted({k for k, _ in self.objects.values()})
        rtypes = sorted({k for k, _ in self.receps.values()})
        locs = sorted({loc for _, loc in self.receps.values()} | {agent_loc})
        decl = ["agent1 - agent"] + [f"{t}Type - otype" for t in otypes]
        decl += [f"{t}Type - rtype" for t in rtypes]
        decl += [f"{m(o)} - object" for o in sorted(self.objects)]
        decl += [f"{m(r)} - receptacle" for r in sorted(self.receps)]
        decl += [f"{m(loc)} - location" for loc in locs]
        init = []
        for r, (klass, loc) in sorted(self.receps.items()):
            init.append(f"(receptacleType {m(r)} {klass}Type)")
            init.append(f"(receptacleAtLocation {m(r)} {m(loc)})")
            if klass in T["openable"]:
                init.append(f"(openable {m(r)})")
        for rt in rtypes:
            for ot in otypes:
                if ot in T["holds"].get(rt, ()):
                    init.append(f"(canContain {rt}Type {ot}Type)")
        props = {"Cleanable": "cleanable", "Heatable": "heatable", "Coolable": "coolable",
                 "Sliceable": "sliceable", "Toggleable": "toggleable"}
        for o, (klass, holder) in sorted(self.objects.items()):
            init.append(f"(objectType {m(o)} {klass}Type)")
            init.append(f"(inReceptacle {m(o)} {m(holder)})")
            init.append(f"(objectAtLocation {m(o)} {m(self.receps[holder][1])})")
            if klass in T["pickup"]:
                init.append(f"(pickupable {m(o)})")
            if klass in T["movable"]:
                init.append(f"(isReceptacleObject {m(o)})")
            for prop, pred in props.items():
                if klass in T["actions"][prop]:
                    init.append(f"({pred} {m(o)})")
        init.append(f"(atLocation agent1 {m(agent_loc)})")
        name = "plan_generated"
        return (f"\n(define (problem {name})\n(:domain alfred)\n(:objects\n" + "\n        ".join(decl)
                + "\n        )\n\n(:init\n        " + "\n        ".join(init) + "\n        )\n\n" + goal_pddl)


_VALIDATOR = threading.local()


def _validate(data: dict[str, Any], goal: Goal) -> list[str] | None:
    """The oracle's winning plan on the engine, or ``None`` if the game is trivial or not solved by it."""
    engine = getattr(_VALIDATOR, "engine", None)
    if engine is None:
        engine = _VALIDATOR.engine = make_engine(fast=True, cache_dir=False)
    with guard_argv():
        engine.load(data)
        state = engine.reset()
        if state["won"]:
            return None
        templates = {"put": engine._logic.actions["putobject"].template}
        steps = oracle.plan(World.from_facts(state["_facts"], state["_entity_infos"]), goal, templates)
        for cmd in steps:
            if cmd not in state["admissible_commands"]:
                return None
            state, _, _ = engine.step(cmd)
        return steps if state["won"] else None


# Sized for a LEAP run: train and test sweeps of a few hundred games each must not regenerate every game.
@functools.lru_cache(maxsize=512)
def generate_game(split: str, seed: int, index: int, task_types: tuple[str, ...] = TASK_TYPES) -> Game:
    """The validated game ``(split, seed, index)``; task types cycle through ``task_types`` by index."""
    pool = scenes(split)
    task_types = tuple(task_types)
    rng = random.Random(f"leap-gym/alfworld/{split}/{seed}/{index}/{','.join(task_types)}")
    task = task_types[index % len(task_types)]
    for attempt in range(_MAX_ATTEMPTS):
        scene = rng.choice(pool)
        built = _Builder(rng, task, scene).build()
        if built is None:
            continue
        data, goal, desc = built
        walkthrough = _validate(data, goal)
        if walkthrough is None:
            continue
        data["walkthrough"] = walkthrough
        params = {"object_target": goal.object, "parent_target": goal.receptacle, "toggle_target": goal.lamp,
                  "mrecep_target": "", "object_sliced": False}
        return Game(task_id=f"generated/{split}/{seed}/{index}", data=data, goal=goal,
                    meta={"scene": scene, "task_type": task, "pddl_params": params, "attempts": attempt + 1,
                          "description": desc})
    raise RuntimeError(f"could not generate a {task} game for split={split!r} after {_MAX_ATTEMPTS} attempts")
