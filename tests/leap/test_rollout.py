"""Rollouts: lockstep slots, the student view only, recorded privileged state, truncation; corrections."""

from __future__ import annotations

import gymnasium as gym
import pytest

from leap_gym.agents.base import Agent, AgentOutput, TrajectoryAgent
from leap_gym.agents.teachers import TeacherAgent
from leap_gym.leap import correct, evaluate, rollout, select_episodes
from tests.leap.toy_teacher import ToyExpertTeacher
from tests.toy_env import TOY_ID


class Recorder(Agent):
    """Always goes to the kitchen; remembers every info it was given."""

    seen: list[dict] = []

    def reset(self, task):
        self.task = task

    def act(self, observation, info):
        Recorder.seen.append(info)
        return AgentOutput(reason="try the kitchen", action="go to kitchen", raw_text="ACTION: go to kitchen")


class BatchedRecorder(TrajectoryAgent):
    """A batched student like HFStudent: its own record of each slot's episode, one decision round per
    call."""

    def __init__(self):
        super().__init__()
        self.batches = []

    def decide(self, slots):
        self.batches.append(len(slots))
        outs = []
        for s in slots:
            action = "go to garden" if len(self.episodes[s].steps) > 1 else "go to kitchen"
            outs.append(AgentOutput(reason="", action=action))
        return outs


def test_students_see_no_privileged_info_but_steps_record_it():
    Recorder.seen = []
    trajs = rollout(TOY_ID, Recorder, range(5), seed=3, batch_size=2)
    assert len(trajs) == 5 and Recorder.seen
    assert all("privileged" not in i and "secret" not in i for i in Recorder.seen)
    assert all("privileged" in s.info and s.info["privileged"]["key_room"] for t in trajs for s in t.steps)
    assert [t.metadata["task_index"] for t in trajs] == list(range(5))


def test_batched_student_gets_live_slots_and_keeps_per_slot_history():
    agent = BatchedRecorder()
    trajs = rollout(TOY_ID, agent, range(5), seed=0, batch_size=3, max_steps=4)
    # the toy key is in the kitchen or the garden: kitchen first, then garden, always wins within 2 steps
    assert all(t.won for t in trajs) and all(len(t) in (1, 2) for t in trajs)
    assert max(agent.batches) == 3 and sum(agent.batches) == sum(len(t) for t in trajs)
    for t in trajs:
        assert [s.action for s in t.steps] == ["go to kitchen", "go to garden"][: len(t)]


def test_max_steps_truncates_and_teacher_agent_acts_on_privileged_state():
    class Stay(Agent):
        def reset(self, task):
            pass

        def act(self, observation, info):
            return AgentOutput(reason="", action="dance")

    trajs = rollout(TOY_ID, Stay, range(3), max_steps=2)
    assert all(len(t) == 2 and not t.won and not t.steps[0].action_valid for t in trajs)
    expert = rollout(TOY_ID, lambda: TeacherAgent(ToyExpertTeacher(1.0), TOY_ID), range(4), privileged=True)
    assert all(t.won and len(t) == 1 for t in expert)


def test_evaluate_summarises_per_type():
    metrics, trajs = evaluate(TOY_ID, lambda: TeacherAgent(ToyExpertTeacher(0.0), TOY_ID), range(6),
                              privileged=True, seed=1)
    assert metrics["n"] == 6 and metrics["success"] == 1.0 and metrics["per_type"]["toy"]["n"] == 6
    assert metrics["avg_steps"] == sum(len(t) for t in trajs) / 6
    privileged, _ = evaluate(TOY_ID,
                             lambda: TeacherAgent(ToyExpertTeacher(1.0), TOY_ID), range(3), privileged=True)
    assert privileged["expert_agreement"] == 1.0 and 0.0 <= metrics["expert_agreement"] <= 1.0


def test_select_and_correct_failures_only():
    class Stay(Agent):
        def reset(self, task):
            pass

        def act(self, observation, info):
            return AgentOutput(reason="", action="go to hall")

    fails = rollout(TOY_ID, Stay, range(2), max_steps=3)
    wins = rollout(TOY_ID, lambda: TeacherAgent(ToyExpertTeacher(1.0), TOY_ID), range(2), privileged=True)
    assert select_episodes(fails + wins) == fails
    assert len(select_episodes(fails + wins, "all")) == 4
    kept, fixes = correct(fails + wins, ToyExpertTeacher(0.5))
    assert kept == fails and [len(f) for f in fixes] == [3, 3]
    room = fails[0].steps[0].info["privileged"]["key_room"]
    assert all(c.action == f"go to {room}" and c.was_corrected for c in fixes[0])
    with pytest.raises(ValueError):
        select_episodes(fails, "best")


def test_unknown_agent_kind_is_a_clear_error():
    with pytest.raises(TypeError, match="cannot roll out"):
        rollout(TOY_ID, 42, range(1))


def test_vector_of_real_envs_is_independent():
    a = rollout(TOY_ID, Recorder, range(4), seed=5, batch_size=4)
    b = rollout(TOY_ID, Recorder, range(4), seed=5, batch_size=1)
    assert [[s.observation for s in t.steps] for t in a] == [[s.observation for s in t.steps] for t in b]
    assert gym.spec(TOY_ID).max_episode_steps == 5


def test_snap_keeps_near_misses_valid_and_the_history_honest():
    from leap_gym.leap.rollout import snap_action

    assert snap_action("go to cabinet 3", ["go to cabinet 2", "open drawer 1", "look"]) == "go to cabinet 2"
    assert snap_action("look", ["look", "inventory"]) == "look"
    assert snap_action("ls -la", None) == "ls -la"
    # WebShop lists the search as a template: a search is kept (bracket restored), never snapped to the
    # template
    shop = ["click[back to search]", "click[next >]", "search[<query>]"]
    assert snap_action("search[green earbuds]", shop) == "search[green earbuds]"
    assert snap_action("search[green earbuds", shop) == "search[green earbuds]"
    assert snap_action("search[<query>", shop) == "click[back to search]"
    assert snap_action("click[next]", shop) == "click[next >]"
    assert snap_action("anything", ["search[<query>]"]) == "anything"

    class Misspeller(BatchedRecorder):
        def decide(self, slots):
            outs = super().decide(slots)
            for o in outs:
                o.action = o.action.replace("go to", "goto")
            return outs

    agent = Misspeller()
    trajs = rollout(TOY_ID, agent, range(3), batch_size=3, max_steps=3, snap=True)
    assert all(t.won for t in trajs) and all(s.action.startswith("go to ") for t in trajs for s in t.steps)
    # the agent's own record of each episode holds the snapped actions the env ran
    assert all(s.action.startswith("go to ") for e in agent.episodes.values() for s in e.steps)
    raw = rollout(TOY_ID, Misspeller(), range(2), batch_size=2, max_steps=2)
    assert all(not s.action_valid for t in raw for s in t.steps)


def test_progress_counts_steps_against_the_step_budget(monkeypatch):
    """Episodes of a batch run in lockstep and end together, so the display counts env steps (an episode that
    ends early adds its unused budget): it reaches its total exactly and moves during the stage."""
    import sys

    rollout_module = sys.modules["leap_gym.leap.rollout"]  # the package exports the function under that name
    bars = []

    class Bar:
        def __init__(self, total, desc, unit, enabled=True):
            self.total, self.unit, self.updates = total, unit, []
            bars.append(self)

        def update(self, n=1):
            self.updates.append(n)

        def close(self):
            pass

    monkeypatch.setattr(rollout_module, "progress_display", Bar)
    trajs = rollout(TOY_ID, lambda: TeacherAgent(ToyExpertTeacher(), TOY_ID), range(4), batch_size=2,
                    privileged=True, max_steps=3, progress=True)
    bar = bars[-1]
    assert bar.unit == "step" and bar.total == 4 * 3 and sum(bar.updates) == bar.total
    assert bar.updates.count(1) >= sum(len(t) for t in trajs)  # one update per env step, then the rest
