"""The batched-agent protocol: a TrajectoryAgent's record of each slot, plain agents per slot, vector
infos."""

from __future__ import annotations

import numpy as np
import pytest

from leap_gym.agents.base import AgentOutput, AgentPerSlot, BatchAgent, TrajectoryAgent
from leap_gym.agents.teachers import TeacherAgent
from tests.leap.toy_teacher import ToyExpertTeacher


class Echo(TrajectoryAgent):
    """Answers with the number of steps its record of the slot holds; fails on demand."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.fail = False

    def decide(self, slots):
        if self.fail:
            raise RuntimeError("backend down")
        return [AgentOutput(reason="r", action=f"step {len(self.episodes[s].steps)}", raw_text="raw")
                for s in slots]


def test_slots_keep_their_own_episodes_and_record_the_action_the_env_ran():
    agent = Echo()
    agent.reset_slot(0, "task a")
    agent.reset_slot(3, "task b")
    outs = agent.act_slots([3, 0], ["b0", "a0"], [{"admissible_actions": ["x", 1]}, {}])
    assert [o.action for o in outs] == ["step 1", "step 1"]
    agent.record_action(3, "snapped")
    agent.act_slots([3], ["b1"], [{}])
    b = agent.episodes[3]
    assert b.task == "task b"
    assert [(s.observation, s.action) for s in b.steps] == [("b0", "snapped"), ("b1", "step 2")]
    assert b.steps[0].admissible_actions == ["x", "1"] and b.steps[0].raw_output == "raw"
    assert [s.observation for s in agent.episodes[0].steps] == ["a0"]


def test_a_new_task_in_info_starts_a_new_episode_and_a_failed_decision_records_nothing():
    agent = Echo()
    agent.act_slots([0], ["o"], [{"task": "first"}])  # an unknown slot starts empty and takes the task
    agent.act_slots([0], ["o"], [{"task": "first"}])
    assert agent.episodes[0].task == "first" and len(agent.episodes[0].steps) == 2
    agent.act_slots([0], ["o"], [{"task": "second"}])
    assert agent.episodes[0].task == "second" and len(agent.episodes[0].steps) == 1
    agent.fail = True
    with pytest.raises(RuntimeError):
        agent.act_slots([0], ["o"], [{}])
    assert len(agent.episodes[0].steps) == 1


def test_privileged_keys_are_dropped_unless_the_agent_sees_privileged_state():
    info = {"task": "t", "privileged": {"expert_action": "secret"}, "secret": 1, "task_type": "toy"}
    student = Echo(privileged_keys=("secret",))
    student.act_slots([0], ["o"], [info])
    assert student.episodes[0].steps[0].info == {"task_type": "toy"}
    teacher = TeacherAgent(ToyExpertTeacher(1.0), "leap-test/Toy-v0")
    teacher.reset("t")
    teacher.act("o", {**info, "privileged": {"key_room": "kitchen"}})
    assert teacher.trajectory.steps[0].info["privileged"] == {"key_room": "kitchen"}
    assert teacher.trajectory.steps[0].action == "go to kitchen"


def test_vector_env_use_and_one_episode_use():
    agent = Echo()
    vector = {"task": np.array(["a", "b"], dtype=object), "_task": np.array([True, True]),
              "privileged": {"x": np.array([1, 2]), "_x": np.array([True, True])},
              "_privileged": np.array([True, True])}
    agent.act_batch(["o0", "o1"], vector)
    assert [agent.episodes[i].task for i in (0, 1)] == ["a", "b"]
    assert all("privileged" not in e.steps[0].info for e in agent.episodes.values())
    agent.reset_batch(["c"], indices=[1])  # env 1 reset on its own
    agent.act_batch(["o0", "o1"], [{}, {}])
    assert [len(agent.episodes[i].steps) for i in (0, 1)] == [2, 1] and agent.episodes[1].task == "c"
    agent.act_batch(["o0", "o1", "o2"], [{}, {}, {}])  # another vector env: start over
    assert [len(e.steps) for e in agent.episodes.values()] == [1, 1, 1]
    agent.reset("single")
    assert agent.act("o", {}).action == "step 1" and list(agent.episodes) == [0]


def test_plain_agents_run_one_per_slot():
    teachers = [TeacherAgent(ToyExpertTeacher(1.0), "leap-test/Toy-v0") for _ in range(2)]
    per_slot = AgentPerSlot(teachers)
    assert isinstance(per_slot, BatchAgent)
    per_slot.reset_slot(1, "t")
    out = per_slot.act_slots([1], ["o"], [{"privileged": {"key_room": "garden"}}])
    assert out[0].action == "go to garden" and len(teachers[1].trajectory.steps) == 1
    assert not teachers[0].trajectory.steps
