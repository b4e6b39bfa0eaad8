"""A planner-free oracle over the engine's facts: the remaining command list from ANY state, in microseconds.

It plans the way the task decomposes (put away a wrong held object, fetch an instance, change its state at an
appliance, bring it to the destination; look: fetch, go to the lamp, switch it on) and returns the shortest
plan over the choices that decomposition leaves: which instance(s), which destination, appliance and lamp
(choices that cannot differ in cost, such as two instances in the same receptacle, are tried once). A greedy
pass (the cheapest next fetch) is not enough: it takes a vase from a shelf when the one beside the lamp is as
near. Ties keep the greedy choice, broken by raw id, so plans are deterministic. Each plan is simulated on a
copy of the world, so its commands are consistent with each other. Putting a wrong held object away still
takes the cheapest receptacle that accepts it. Fast Downward stays available through the env's ``planner``
option, but costs seconds per call.

A state can be a dead end (holding an object no receptacle accepts: initial placements ignore ``canContain``);
``plan`` then returns ``[]``.
"""

from __future__ import annotations

import copy
import itertools

from leap_gym.envs.alfworld.world import APPLIANCE, Goal, World

# engine action -> default wording (new grammar); games carry their own templates (``put {o} in/on {r}`` ...).
DEFAULT_TEMPLATES = {"put": "move {o} to {r}", "take": "take {o} from {r}", "open": "open {r}",
                     "use": "use {o}", "heat": "heat {o} with {r}", "cool": "cool {o} with {r}",
                     "clean": "clean {o} with {r}"}


class _Planner:
    def __init__(self, world: World, goal: Goal, templates: dict[str, str]):
        self.w = copy.copy(world)
        self.w.in_recep = {o: set(rs) for o, rs in world.in_recep.items()}
        self.w.opened, self.w.held = set(world.opened), set(world.held)
        self.w.states = {o: set(s) for o, s in world.states.items()}
        self.goal, self.t = goal, templates
        self.plan: list[str] = []

    def _cheapest(self, receps):
        return min(receps, key=lambda r: (self.w.cost(r), r), default=None)

    def go(self, recep: str) -> None:
        if not self.w.reachable(recep):
            self.plan.append("go to " + self.w.name(recep))
            self.w.agent_loc = self.w.recep_loc[recep]

    def open(self, recep: str) -> None:
        if recep in self.w.openable and recep not in self.w.opened:
            self.plan.append(self.t["open"].format(r=self.w.name(recep)))
            self.w.opened.add(recep)

    def take(self, obj: str) -> None:
        recep = self._cheapest(r for r in self.w.in_recep[obj] if r in self.w.recep_loc)
        self.go(recep)
        self.open(recep)
        self.plan.append(self.t["take"].format(o=self.w.name(obj), r=self.w.name(recep)))
        del self.w.in_recep[obj]
        self.w.held.add(obj)

    def put(self, obj: str, recep: str) -> None:
        self.go(recep)
        self.open(recep)
        self.plan.append(self.t["put"].format(o=self.w.name(obj), r=self.w.name(recep)))
        self.w.held.discard(obj)
        self.w.in_recep[obj] = {recep}

    def treat(self, obj: str, state: str, appliance: str | None) -> bool:
        verb = APPLIANCE[state][1]
        if appliance is None:
            return False
        self.go(appliance)
        self.plan.append(self.t[verb].format(o=self.w.name(obj), r=self.w.name(appliance)))
        s = self.w.states.setdefault(obj, set())
        s.add(state)
        if state in ("hot", "cool"):
            s.discard("cool" if state == "hot" else "hot")
        return True

    def put_away(self, obj: str, avoid: frozenset = frozenset()) -> bool:
        """Free the hand: put a held object in the cheapest receptacle that accepts it."""
        klass = self.w.obj_class.get(obj)
        ok = [r for r in self.w.recep_loc if r in self.w.recep_class and r not in avoid
              and (self.w.recep_class[r], klass) in self.w.can_contain]
        recep = self._cheapest(ok)
        if recep is None:
            return False
        self.put(obj, recep)
        return True

    def pickable(self, obj: str) -> bool:
        return any(r in self.w.recep_loc for r in self.w.in_recep.get(obj, ()))

    # -- task types: one plan per choice of object(s), lamp, appliance and destination -----------------------
    def look(self, obj: str | None, lamp: str) -> bool:
        """Hold ``obj`` (``None``: the goal object already held) and switch on ``lamp`` where it stands."""
        g, w = self.goal, self.w
        if w.won(g):
            return True
        for o in sorted(w.held):
            if o != obj and w.obj_class.get(o) != g.object and not self.put_away(o):
                return False
        if obj is not None:
            for o in sorted(w.held):  # a different goal object in hand: put it down first
                if not self.put_away(o):
                    return False
            self.take(obj)
        recep = min((int(not w.reachable(r)), r) for r in w.in_recep[lamp] if r in w.recep_loc)[1]
        self.go(recep)
        if not (w.has(lamp, "toggled") and w.won(g)):
            self.plan.append(self.t["use"].format(o=w.name(lamp)))
            w.states.setdefault(lamp, set()).add("toggled")
        return True

    def place(self, dest: str, picks: tuple[str, ...], appliance: str | None) -> bool:
        """Bring goal objects (the one in hand first, then ``picks`` in order) to ``dest``, treated at
        ``appliance`` when the goal needs a state."""
        g, w = self.goal, self.w
        done = set(_good_inside(w, g, dest)[: g.count])
        for o in sorted(w.held):
            if w.obj_class.get(o) != g.object and not self.put_away(o):
                return False
        queue = list(picks)
        while len(done) < g.count:
            held = sorted(o for o in w.held if w.obj_class.get(o) == g.object)
            if held:
                obj = held[0]
            else:
                if not queue:
                    return False
                obj = queue.pop(0)
                if obj in done or not self.pickable(obj):
                    return False
                self.take(obj)
            if g.state and not w.has(obj, g.state) and not self.treat(obj, g.state, appliance):
                return False
            self.put(obj, dest)
            done.add(obj)
        return True


def _good_inside(w: World, goal: Goal, recep: str) -> list[str]:
    return [o for o in w.contents(recep)
            if w.obj_class.get(o) == goal.object and (not goal.state or w.has(o, goal.state))]


def _distinct(items: list[str], key, per_key: int = 1) -> list[str]:
    """``items`` (already in preference order) keeping at most ``per_key`` of those that share ``key``: such
    choices give plans of the same length, so trying one (two, when the goal needs two objects) is enough."""
    seen: dict = {}
    out = []
    for x in items:
        k = key(x)
        if seen.get(k, 0) < per_key:
            seen[k] = seen.get(k, 0) + 1
            out.append(x)
    return out


def _options(world: World, goal: Goal):
    """The choices a plan can make, the greedy one first: ``("look", obj, lamp)`` or
    ``("place", dest, picks, appliance)``."""
    w = world
    shared: dict[str, list[str]] = {}
    for r, loc in w.recep_loc.items():
        shared.setdefault(loc, []).append(r)

    def where(o):  # objects in the same receptacles and states are interchangeable
        return tuple(sorted(w.in_recep.get(o, ()))), tuple(sorted(w.states.get(o, ())))

    def fetch_cost(o):
        return min(w.cost(r) for r in w.in_recep[o] if r in w.recep_loc)

    def pickable(o):
        return any(r in w.recep_loc for r in w.in_recep.get(o, ()))

    held_target = sorted(o for o in w.held if w.obj_class.get(o) == goal.object)
    if goal.task_type == "look_at_obj_in_light":
        lamps = sorted((o for o in w.objects_of(goal.lamp) if o in w.toggleable and pickable(o)),
                       key=lambda o: (min((int(not w.reachable(r)), r)
                                          for r in w.in_recep[o] if r in w.recep_loc), o))
        cands = sorted((o for o in w.objects_of(goal.object) if pickable(o)),
                       key=lambda o: (fetch_cost(o), o))
        objs: list[str | None] = ([None] if held_target else []) + _distinct(cands, where)
        for obj in objs:
            for lamp in lamps:
                yield ("look", obj, lamp)
        return
    dests = w.receptacles_of(goal.receptacle)

    def good_inside(r):
        return _good_inside(w, goal, r)

    def dest_key(r):  # a destination away from everything else is as good as any other with the same cost
        busy = w.reachable(r) or len(shared[w.recep_loc[r]]) > 1 or any(w.obj_class.get(o) == goal.object
                                                                         for o in w.contents(r))
        return r if busy else ("plain", w.cost(r))

    dests = _distinct(sorted(dests, key=lambda r: (-min(goal.count, len(good_inside(r))), w.cost(r), r)),
                      dest_key)
    appliances = [None]
    if goal.state:
        klass = APPLIANCE[goal.state][0]
        appliances = sorted(w.receptacles_of(klass), key=lambda r: (w.cost(r), r)) or [None]
    for dest in dests:
        keep = good_inside(dest)[: goal.count]
        need = goal.count - len(keep) - len(held_target[:1])
        cands = sorted((o for o in w.objects_of(goal.object)
                        if o not in keep and o not in held_target and pickable(o)),
                       key=lambda o: (not (not goal.state or w.has(o, goal.state)), fetch_cost(o), o))
        cands = _distinct(cands, where, per_key=max(need, 1))
        for picks in itertools.permutations(cands, max(need, 0)):
            for appliance in appliances:
                yield ("place", dest, picks, appliance)


def plan(world: World, goal: Goal, templates: dict[str, str] | None = None) -> list[str]:
    """The oracle's shortest remaining commands from ``world`` over its choices (``[]`` when already won or at
    a dead end); among plans of the same length the greedy choices come first."""
    if world.won(goal):
        return []
    templates = {**DEFAULT_TEMPLATES, **(templates or {})}
    best: list[str] | None = None
    for option in _options(world, goal):
        p = _Planner(world, goal, templates)
        ok = p.look(*option[1:]) if option[0] == "look" else p.place(*option[1:])
        if ok and (best is None or len(p.plan) < len(best)):
            best = p.plan
    return best or []
