"""A planner-free oracle over the engine's facts: the remaining command list from ANY state, in microseconds.

It plans the way the task decomposes (put away a wrong held object, fetch an instance, change its state at an
appliance, bring it to the destination; look: fetch, go to the lamp, switch it on), always taking the cheapest
option (fewest ``go to``/``open`` commands), ties broken by raw id so plans are deterministic. The plan is
simulated on a copy of the world, so the commands are consistent with each other. Fast Downward stays available
through the env's ``planner`` option, but costs seconds per call.

A state can be a dead end (holding an object no receptacle accepts: initial placements ignore ``canContain``);
``plan`` then returns ``[]``.
"""

from __future__ import annotations

import copy

from leap_gym.envs.alfworld.world import APPLIANCE, Goal, World

# engine action -> default wording (new grammar); games carry their own templates (``put {o} in/on {r}`` ...).
DEFAULT_TEMPLATES = {"put": "move {o} to {r}", "take": "take {o} from {r}", "open": "open {r}", "use": "use {o}",
                     "heat": "heat {o} with {r}", "cool": "cool {o} with {r}", "clean": "clean {o} with {r}"}


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

    def treat(self, obj: str, state: str) -> bool:
        klass, verb = APPLIANCE[state]
        appliance = self._cheapest(self.w.receptacles_of(klass))
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

    def fetch_cost(self, obj: str) -> int:
        return min(self.w.cost(r) for r in self.w.in_recep[obj] if r in self.w.recep_loc)

    # -- task types ----------------------------------------------------------------------------------------
    def look(self) -> bool:
        g, w = self.goal, self.w
        if w.won(g):
            return True
        held_target = [o for o in w.held if w.obj_class.get(o) == g.object]
        for o in sorted(w.held):
            if o not in held_target and not self.put_away(o):
                return False
        if not held_target:
            cands = [o for o in w.objects_of(g.object) if self.pickable(o)]
            if not cands:
                return False
            self.take(min(cands, key=lambda o: (self.fetch_cost(o), o)))
        lamps = [o for o in w.objects_of(g.lamp) if o in w.toggleable
                 and any(r in w.recep_loc for r in w.in_recep.get(o, ()))]
        if not lamps:
            return False

        def lamp_cost(o):
            return min((int(not w.reachable(r)), r) for r in w.in_recep[o] if r in w.recep_loc)

        lamp = min(lamps, key=lambda o: (lamp_cost(o), o))
        self.go(lamp_cost(lamp)[1])
        if not (w.has(lamp, "toggled") and w.won(g)):
            self.plan.append(self.t["use"].format(o=w.name(lamp)))
            w.states.setdefault(lamp, set()).add("toggled")
        return True

    def place(self) -> bool:
        g, w = self.goal, self.w
        dests = w.receptacles_of(g.receptacle)
        if not dests:
            return False

        def good_inside(r):
            return [o for o in w.contents(r) if w.obj_class.get(o) == g.object
                    and (not g.state or w.has(o, g.state))]

        dest = min(dests, key=lambda r: (-min(g.count, len(good_inside(r))), w.cost(r), r))
        done = set(good_inside(dest)[: g.count])
        for o in sorted(w.held):
            if w.obj_class.get(o) != g.object and not self.put_away(o):
                return False
        while len(done) < g.count:
            held = [o for o in w.held if w.obj_class.get(o) == g.object]
            if held:
                obj = held[0]
            else:
                cands = [o for o in w.objects_of(g.object) if o not in done and self.pickable(o)]
                if not cands:
                    return False
                obj = min(cands, key=lambda o: (not (not g.state or w.has(o, g.state)), self.fetch_cost(o), o))
                self.take(obj)
            if g.state and not w.has(obj, g.state) and not self.treat(obj, g.state):
                return False
            self.put(obj, dest)
            done.add(obj)
        return True


def plan(world: World, goal: Goal, templates: dict[str, str] | None = None) -> list[str]:
    """The oracle's remaining commands from ``world`` (``[]`` when already won or at a dead end)."""
    if world.won(goal):
        return []
    p = _Planner(world, goal, {**DEFAULT_TEMPLATES, **(templates or {})})
    ok = p.look() if goal.task_type == "look_at_obj_in_light" else p.place()
    return p.plan if ok else []
