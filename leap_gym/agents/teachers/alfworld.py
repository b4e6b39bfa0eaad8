"""The ALFWorld expert teacher with a realizability knob, and the facts its reasons must not reveal.

``privilege`` (LEAP's realizability ablation):

* ``0``: no privileged state. The teacher rebuilds what the student could know from the observations so far
  (receptacles in the room, what was seen where, what is held, opened, heated...) and searches receptacles in
  a common-sense order (receptacle classes that can hold the object, from ALFWorld's affordance table), as a
  careful human would.
* ``0.5`` (default): acts on the privileged oracle (``info["privileged"]["expert_action"]``, always one of the
  admissible commands, so realisable by the student) and explains it with a general reason: classes and
  common sense, never an unobserved location.
* ``1``: acts on the oracle and may say where the hidden object is.

Kept steps (``keep_reason``): an admissible student action after which the task can still be completed in one
command fewer than the shortest plan from the step's state lies on *some* optimal plan (any instance of the
goal class that serves the goal, any equally near receptacle, equally long plans in another order), so it is
left as it is, with a reason that fits it; only real changes count as corrections. "Optimal" is relative to
what the teacher at its privilege level acts on: above 0 the recorded privileged state, rebuilt and stepped by
``leap_gym.envs.alfworld.simulate`` (the oracle's shortest plan, so the rule never needs the env again); at 0
only the observations: the known state (what was seen, unvisited receptacles counted empty) once the goal's
objects have been seen, and before that any unvisited receptacle its search order ranks as high as its own
choice. Below privilege 1 that search rule also keeps steps the oracle would change: while the student still
has to search, which of several equally likely receptacles holds the object is hidden state, and a correction
that only swaps one for another cannot be learned from the student's view (LEAP's realizability point; trained
on, such swaps taught the demo's student to avoid whichever receptacle it tried first).

``privileged_only_facts(trajectory, t)`` lists what the student cannot know at step ``t``: unobserved target
objects, their receptacles and ``"<object> is in <receptacle>"`` statements. Honest reasons name receptacles
by class when heading somewhere unobserved, and instances only where the student has already looked.
"""

from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass, field

from leap_gym.agents.teachers.base import Teacher
from leap_gym.envs.alfworld.generate import _tables
from leap_gym.envs.alfworld.simulate import apply, keeps_optimal, remaining, world_from_privileged
from leap_gym.envs.alfworld.world import APPLIANCE as _APPLIANCE
from leap_gym.envs.alfworld.world import Goal
from leap_gym.records import Trajectory

_LAMP_PLACES = ("desk", "sidetable", "dresser")
# A general sense of where things are kept: surfaces first, then storage, then the rest.
_POPULAR = ("countertop", "diningtable", "sidetable", "coffeetable", "desk", "shelf", "dresser", "cabinet",
            "drawer", "tvstand", "sofa", "armchair", "bed", "ottoman", "fridge", "microwave", "stoveburner",
            "sinkbasin", "bathtubbasin", "toilet", "garbagecan", "cart", "safe", "coffeemachine", "toaster",
            "handtowelholder", "towelholder", "toiletpaperhanger", "laundryhamper", "paintinghanger")
_TASK_PATTERNS = [
    (r"^(?:look at|examine the) (?P<obj>\w+) (?:under|with) the (?P<lamp>\w+)$", "look"),
    (r"^put two (?P<obj>\w+) in (?P<recep>\w+)$", "two"),
    (r"^find two (?P<obj>\w+) and put them in (?P<recep>\w+)$", "two"),
    (r"^put a (?:clean|hot|cool) (?P<obj>\w+) in (?P<recep>\w+)$", "state"),
    (r"^(?:clean|heat|cool) some (?P<obj>\w+) and put it in (?P<recep>\w+)$", "state"),
    (r"^put (?:a|some) (?P<obj>\w+) (?:in|on) (?P<recep>\w+)$", "simple"),
]


def _klass(name: str) -> str:
    return name.rsplit(" ", 1)[0] if re.search(r" \d+$", name) else name


@functools.cache
def _holders() -> dict[str, frozenset[str]]:
    """object class -> receptacle classes that can hold it (ALFWorld's canContain table, lower case)."""
    try:
        holds = _tables()["holds"]
    except ImportError:  # without the alfworld extra the order falls back to general popularity
        return {}
    out: dict[str, set[str]] = {}
    for recep, objs in holds.items():
        for o in objs:
            out.setdefault(o.lower(), set()).add(recep.lower())
    return {k: frozenset(v) for k, v in out.items()}


def _task_text(trajectory: Trajectory) -> str:
    m = re.search(r"Your task is to: (.*?)\.?\s*$",
                  trajectory.steps[0].observation.strip()) if trajectory.steps \
        else None
    return (m.group(1) if m else trajectory.task).strip().rstrip(".")


def parse_goal(trajectory: Trajectory, t: int) -> Goal:
    """The goal from the task text (what the student reads); the task type is student-visible info."""
    text = _task_text(trajectory).lower()
    task_type = trajectory.steps[t].info.get("task_type", "")
    for pattern, _ in _TASK_PATTERNS:
        m = re.match(pattern, text)
        if m:
            d = m.groupdict()
            return Goal(task_type, d.get("obj", ""), d.get("recep") or "", d.get("lamp") or "")
    g = trajectory.steps[t].info.get("privileged", {}).get("goal", {})  # task restated, not hidden state
    return Goal(task_type, g.get("object", ""), g.get("receptacle", ""), g.get("lamp", ""))


_SEE = re.compile(r"you see (.*?)\.(?:\s|$)")


def _items(listing: str) -> list[str]:
    if listing.strip() == "nothing":
        return []
    parts = re.split(r", and |, | and ", listing)
    return [re.sub(r"^(?:a|an|some) ", "", p.strip()) for p in parts if p.strip()]


@dataclass
class Belief:
    """What the student can know after reading the observations so far."""

    receptacles: list[str] = field(default_factory=list)
    at: str = ""
    holding: str = ""
    seen: dict[str, list[str]] = field(default_factory=dict)  # receptacle -> objects last seen on/in it
    closed: set[str] = field(default_factory=set)
    visited: set[str] = field(default_factory=set)
    states: dict[str, set[str]] = field(default_factory=dict)
    placed: dict[str, str] = field(default_factory=dict)  # object -> receptacle we put it in
    observed: set[str] = field(default_factory=set)  # entity names seen in observations or candidate commands

    def where(self, obj: str) -> str:
        return next((r for r, objs in self.seen.items() if obj in objs), "")


def read_history(trajectory: Trajectory, t: int) -> Belief:
    b = Belief()
    steps = trajectory.steps[: t + 1]
    first = steps[0].observation
    m = re.search(r"Looking quickly around you, you see (.*?)\.\s", first + " ")
    if m:
        b.receptacles = _items(m.group(1))
    for k, step in enumerate(steps):
        obs = step.observation
        b.observed.update(re.findall(r"[a-z]+ \d+", obs))
        # the candidate commands are shown to the student too: "take cd 2 from desk 1" reveals both
        b.observed.update(re.findall(r"[a-z]+ \d+", " | ".join(step.admissible_actions or ())))
        if k == 0:
            continue
        action = steps[k - 1].action.strip()
        if obs.strip() == "Nothing happens.":
            continue
        if action.startswith("go to "):
            b.at = action[6:]
            b.visited.add(b.at)
        if action.startswith(("go to ", "open ")):
            target = b.at if action.startswith("go to ") else action[5:]
            if re.search(r"is closed\.", obs):
                b.closed.add(target)
            else:
                b.closed.discard(target)
                m = _SEE.search(obs)
                if m:
                    b.seen[target] = _items(m.group(1))
        m = re.match(r"You pick up the (.+?) from the (.+?)\.", obs)
        if m:
            b.holding = m.group(1)
            if m.group(2) in b.seen and m.group(1) in b.seen[m.group(2)]:
                b.seen[m.group(2)].remove(m.group(1))
            b.placed.pop(m.group(1), None)
        m = re.match(r"You (?:move|put) the (.+?) (?:to|in/on|in|on) the (.+?)\.", obs)
        if m:
            b.holding = ""
            b.seen.setdefault(m.group(2), []).append(m.group(1))
            b.placed[m.group(1)] = m.group(2)
        m = re.match(r"You (heat|cool|clean) the (.+?) using the (.+?)\.", obs)
        if m:
            state = {"heat": "hot", "cool": "cool", "clean": "clean"}[m.group(1)]
            s = b.states.setdefault(m.group(2), set())
            s.add(state)
            s.discard({"hot": "cool", "cool": "hot"}.get(state, ""))
    return b


class _Student:
    """Privilege 0: a systematic search using only the belief."""

    def __init__(self, goal: Goal, belief: Belief, admissible: list[str]):
        self.g, self.b, self.adm = goal, belief, admissible
        self.searching: tuple[str, tuple[str, ...]] = ("", ())  # what the last ``_explore`` looked for

    def _ok(self, obj: str) -> bool:
        return _klass(obj) == self.g.object and (not self.g.state
                                                 or self.g.state in self.b.states.get(obj, ()))

    def rank(self, recep: str, want: str, places: tuple[str, ...] = ()) -> tuple[bool, int]:
        """How promising ``recep`` is to search for ``want`` (lower first); equal ranks are equally good."""
        holders = _holders().get(want, frozenset(places))
        k = _klass(recep)
        return k not in holders and k not in places, _POPULAR.index(k) if k in _POPULAR else 99

    def _order(self, want: str, places: tuple[str, ...] = ()) -> list[str]:
        return sorted(self.b.receptacles, key=lambda r: (*self.rank(r, want, places), r))

    def _goto_or(self, recep: str, then: str) -> tuple[str, str]:
        if self.b.at != recep:
            return "go", "go to " + recep
        if recep in self.b.closed:
            return "open", "open " + recep
        return then.split(" ", 1)[0], then

    def _put_command(self, obj: str, recep: str) -> str:
        for c in self.adm:
            if c.startswith(("move ", "put ")) and f" {obj} " in f" {c} " and c.endswith(" " + recep):
                return c
        return f"move {obj} to {recep}"

    def _explore(self, want: str, places: tuple[str, ...] = ()) -> tuple[str, str]:
        if self.b.at and self.b.at in self.b.closed:
            return "open", "open " + self.b.at
        self.searching = (want, places)
        for r in self._order(want, places):
            if r not in self.b.visited:
                return "search", "go to " + r
        for r in self._order(want, places):  # visited but never looked inside
            if r in self.b.closed:
                return "search", "go to " + r
        return "stuck", "look"

    def act(self) -> tuple[str, str]:
        g, b = self.g, self.b
        if g.task_type == "look_at_obj_in_light":
            if b.holding and _klass(b.holding) == g.object:
                lamp_at = next((r for r, objs in b.seen.items() if any(_klass(o) == g.lamp for o in objs)),
                               "")
                if lamp_at:
                    lamp = next(o for o in b.seen[lamp_at] if _klass(o) == g.lamp)
                    return self._goto_or(lamp_at, "use " + lamp)
                return self._explore(g.lamp, _LAMP_PLACES)
            if b.holding:
                return "drop", self._put_command(b.holding, b.at) if b.at else "look"
            return self._fetch()
        done = [o for o, r in b.placed.items() if _klass(r) == g.receptacle and self._ok(o)]
        if b.holding:
            h = b.holding
            if _klass(h) != g.object:
                return "drop", self._put_command(h, b.at) if b.at else "look"
            if g.state and g.state not in b.states.get(h, ()):
                klass, verb = _APPLIANCE[g.state]
                appliance = next((r for r in b.receptacles if _klass(r) == klass), "")
                if appliance:
                    return self._goto_or(appliance, f"{verb} {h} with {appliance}")
            dest = b.placed[done[0]] if done else next((r for r in self._order(g.object)
                                                        if _klass(r) == g.receptacle), "")
            if dest:
                return self._goto_or(dest, self._put_command(h, dest))
            return self._explore(g.object)
        return self._fetch(exclude=set(done))

    def _fetch(self, exclude: set[str] = frozenset()) -> tuple[str, str]:
        g, b = self.g, self.b
        for r in sorted(b.seen, key=lambda r: (r != b.at, r)):
            if g.task_type != "look_at_obj_in_light" and _klass(r) == g.receptacle and g.count == 2:
                continue  # don't take back what is already where it belongs
            for o in b.seen[r]:
                if _klass(o) == g.object and o not in exclude:
                    return self._goto_or(r, f"take {o} from {r}")
        return self._explore(g.object)


# -- reasons -----------------------------------------------------------------------------------------------

_REASONS = {
    "go_search": ["I haven't found a {obj} yet; {place}s are a likely spot, so I'll check the next one.",
                  "A {obj} is often kept on or in a {place}, so I'll look there next.",
                  "I still need a {obj}. Checking a {place} is a sensible next move."],
    "go_known": ["I saw a {thing} at the {dest}, so I'll go back there.",
                 "The {dest} had a {thing} when I looked; heading there now."],
    "go_appliance": ["The {obj} has to be {state}; the {appliance} does that, so I'll take it there.",
                     "Next I need to make the {obj} {state}, which means using the {appliance}."],
    "go_dest": ["The {obj} is ready, so I'll bring it to a {recep}.",
                "Now I carry the {obj} over to the {recep} to finish the placement."],
    "go_lamp": ["I have the {obj}; now I need light, so I'll go to the {lamp}.",
                "With the {obj} in hand, I head to where the {lamp} is."],
    "go_lamp_search": ["I have the {obj} but no {lamp} in sight; lamps usually stand on desks or side "
                       "tables.",
                       "I need a {lamp} to look at the {obj}; desks and side tables are the usual places."],
    "open": ["The {here} is closed; I'll open it to see what's inside.",
             "I can't see into the {here} while it's closed, so I open it."],
    "take": ["There is a {thing} here on the {here}; I'll pick it up.",
             "I found a {thing} at the {here}, so I take it."],
    "treat": ["I'm at the {here}, so I {verb} the {thing} now.",
              "I can {verb} the {thing} right here with the {here}."],
    "put": ["I'm at the {here}; I put the {thing} here to complete the task.",
            "I place the {thing} in the {here}; that is where the task wants it."],
    "use": ["I'm holding the {obj} next to the {lamp}; I turn the lamp on to look at it.",
            "Now I switch on the {thing} so I can examine the {obj} under it."],
    "drop": ["I'm carrying something I don't need; I'll put it down first to free my hands.",
             "My hands are full with the wrong item, so I set it down here."],
    "other": ["I'll get my bearings before the next move.", "I'll look around again before deciding."],
}
_PRIVILEGED_REASONS = {
    "go": ["The {thing} is in {dest}, so I go straight to {dest}.",
           "I know the {thing} is at {dest}; heading there directly."],
}


def _explain(kind: str, action: str, goal: Goal, belief: Belief, rng: random.Random, privilege: float,
             privileged: dict) -> str:
    fields = {"obj": goal.object, "recep": goal.receptacle, "lamp": goal.lamp, "state": goal.state,
              "here": belief.at, "appliance": _APPLIANCE.get(goal.state, ("", ""))[0]}
    words = action.split()
    if action.startswith("go to "):
        dest = action[6:]
        fields["dest"] = dest
        fields["place"] = _klass(dest)
        targets = [o for o, r in privileged.get("object_locations", {}).items()
                   if r == dest and _klass(o) in (goal.object, goal.lamp)]
        if privilege >= 1 and targets:
            fields["thing"] = targets[0]
            return rng.choice(_PRIVILEGED_REASONS["go"]).format(**fields)
        seen_here = [o for o in belief.seen.get(dest, []) if _klass(o) in (goal.object, goal.lamp)]
        holding = belief.holding
        if seen_here and not (holding and _klass(holding) == goal.object):
            fields["thing"] = seen_here[0]
            key = "go_known"
        elif holding and _klass(holding) == goal.object:
            if goal.task_type == "look_at_obj_in_light":
                key = "go_lamp" if seen_here else "go_lamp_search"
            elif goal.state and goal.state not in belief.states.get(holding, ()) and \
                    _klass(dest) == fields["appliance"]:
                key = "go_appliance"
            else:
                key = "go_dest"
        else:
            key = "go_search"
        return rng.choice(_REASONS[key]).format(**fields)
    if words and words[0] == "open":
        fields["here"] = action[5:]
        return rng.choice(_REASONS["open"]).format(**fields)
    if words and words[0] == "take":
        m = re.match(r"take (.+?) from (.+)$", action)
        if m:
            fields.update(thing=m.group(1), here=m.group(2))
        return rng.choice(_REASONS["take"]).format(**fields)
    if words and words[0] in ("heat", "cool", "clean"):
        m = re.match(r"\w+ (.+?) with (.+)$", action)
        if m:
            fields.update(thing=m.group(1), here=m.group(2), verb=words[0])
        return rng.choice(_REASONS["treat"]).format(**fields)
    if words and words[0] in ("move", "put"):
        m = re.match(r"(?:move|put) (.+?) (?:to|in/on|in|on) (.+)$", action)
        if m:
            fields.update(thing=m.group(1), here=m.group(2))
        holding = belief.holding or (m.group(1) if m else "")
        key = "put" if _klass(holding) == goal.object else "drop"
        return rng.choice(_REASONS[key]).format(**fields)
    if words and words[0] == "use":
        fields["thing"] = action[4:]
        return rng.choice(_REASONS["use"]).format(**fields)
    return rng.choice(_REASONS["other"]).format(**fields)


class ALFWorldExpertTeacher(Teacher):
    """Programmatic ALFWorld teacher; see the module docstring for what each privilege level may use."""

    name = "alfworld-expert"

    def __init__(self, privilege: float = 0.5, seed: int = 0):
        if not 0.0 <= privilege <= 1.0:
            raise ValueError(f"privilege must lie in [0, 1], got {privilege}")
        self.privilege, self.seed = float(privilege), int(seed)

    def propose(self, trajectory: Trajectory, t: int) -> tuple[str, str]:
        step = trajectory.steps[t]
        goal = parse_goal(trajectory, t)
        belief = read_history(trajectory, t)
        admissible = list(step.admissible_actions or [])
        rng = random.Random(f"{self.seed}/{trajectory.task_id}/{t}")
        privileged = step.info.get("privileged", {}) if self.privilege > 0 else {}
        if self.privilege > 0 and privileged.get("expert_plan"):
            action = privileged["expert_action"]
        else:
            _, action = _Student(goal, belief, admissible).act()
            if admissible and action not in admissible:
                action = self._fallback(belief, admissible, rng)
        shown = privileged if self.privilege >= 1 else {}
        return _explain("", action, goal, belief, rng, self.privilege, shown), action

    def keep_reason(self, trajectory: Trajectory, t: int) -> str | None:
        """Keep an admissible student action that lies on some shortest plan (see the module docstring)."""
        step = trajectory.steps[t]
        action = " ".join(step.action.split())
        if action not in (step.admissible_actions or ()):
            return None
        goal, belief = parse_goal(trajectory, t), read_history(trajectory, t)
        if self.privilege > 0:
            privileged = step.info.get("privileged", {})
            if not privileged.get("expert_plan"):
                return None
            seen_together = [s.info.get("privileged", {}).get("agent_location", [])
                             for s in trajectory.steps[:t]]
            # below 1, a search move as likely as the common-sense order's own differs from the oracle's only
            # by hidden state: not realizable as a correction (module docstring)
            if not keeps_optimal(privileged, action, seen_together) and not (
                    self.privilege < 1 and _searches_well(goal, belief, step.admissible_actions, action)):
                return None
        elif not _belief_keeps(goal, belief, step.admissible_actions, action):
            return None
        rng = random.Random(f"{self.seed}/{trajectory.task_id}/{t}")
        shown = step.info.get("privileged", {}) if self.privilege >= 1 else {}
        return _explain("", action, goal, belief, rng, self.privilege, shown)

    @staticmethod
    def _fallback(belief: Belief, admissible: list[str], rng: random.Random) -> str:
        unvisited = [a for a in admissible if a.startswith("go to ") and a[6:] not in belief.visited]
        return rng.choice(unvisited or admissible)


def _known_state(goal: Goal, belief: Belief) -> dict:
    """What the student's observations show, in the layout of ``info["privileged"]``: unvisited receptacles
    count as empty, receptacles of openable classes as closed until seen open."""
    openable = {r for r in belief.receptacles if _klass(r) in _openable_classes()} | belief.closed
    contents = {r: list(belief.seen.get(r, [])) for r in belief.receptacles}
    locations = {o: r for r, objs in contents.items() for o in objs}
    if belief.holding:
        locations[belief.holding] = "agent"
    return {"receptacle_contents": contents, "object_locations": locations,
            "opened": {r: r in belief.visited and r not in belief.closed for r in openable},
            "agent_location": [belief.at] if belief.at else [],
            "object_states": {o: sorted(s) for o, s in belief.states.items()}, "goal": goal.to_json()}


@functools.cache
def _openable_classes() -> frozenset[str]:
    return frozenset(c.lower() for c in _tables()["openable"])


def _belief_keeps(goal: Goal, belief: Belief, admissible: list[str] | None, action: str) -> bool:
    """Privilege 0: optimal relative to what the student's observations show. With the goal's objects (and
    lamp) already seen, keep an action on a shortest plan over the known state; while still searching, keep a
    ``go to`` an unvisited receptacle that the teacher's search order ranks as high as its own choice."""
    known = world_from_privileged(_known_state(goal, belief))
    before = remaining(known, goal)
    if before:
        after = remaining(apply(known, action), goal)
        return after is not None and after <= before - 1
    return _searches_well(goal, belief, admissible, action)


def _searches_well(goal: Goal, belief: Belief, admissible: list[str] | None, action: str) -> bool:
    """The searcher (privilege 0) would search next, and ``action`` goes to an unvisited receptacle its
    common-sense order ranks as high as its own choice."""
    student = _Student(goal, belief, list(admissible or []))
    kind, own = student.act()
    if kind != "search" or not action.startswith("go to ") or action[6:] in belief.visited:
        return False
    want, places = student.searching
    return student.rank(action[6:], want, places) == student.rank(own[6:], want, places)


def privileged_only_facts(trajectory: Trajectory, t: int) -> list[str]:
    """What a reason at step ``t`` must not say: unobserved goal objects and lamps, the receptacles holding
    them, and ``"<object> is in <receptacle>"`` statements about them."""
    step = trajectory.steps[t]
    p = step.info.get("privileged", {})
    goal = p.get("goal", {})
    wanted = {goal.get("object", ""), goal.get("lamp", "")} - {""}
    belief = read_history(trajectory, t)
    been = belief.visited | {belief.at}  # naming a receptacle the student stands at or has visited is honest
    facts: list[str] = []
    for obj, where in sorted(p.get("object_locations", {}).items()):
        if _klass(obj) not in wanted or obj in belief.observed or where == "agent":
            continue
        facts += [obj, f"{obj} is in {where}", f"{obj} is on {where}", f"{obj} is at {where}"]
        if where not in been:
            facts.append(where)
    return sorted(set(facts))
