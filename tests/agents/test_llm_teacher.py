"""LLMTeacher and SelfTeacher over real HTTP: a scripted OpenAI-compatible server (valid, malformed,
wrong-length replies) and the real `leap-gym serve` app with the tiny student."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest

pytest.importorskip("fastapi")

from fastapi import FastAPI  # noqa: E402

from leap_gym.agents.backends import OpenAIChat  # noqa: E402
from leap_gym.agents.serve import BackgroundServer  # noqa: E402
from leap_gym.agents.teachers.llm import LLMTeacher, SelfTeacher, correction_messages  # noqa: E402
from leap_gym.info import record_info  # noqa: E402
from leap_gym.records import Step, Trajectory  # noqa: E402
from tests.toy_env import TOY_ID  # noqa: E402


def toy_trajectory() -> Trajectory:
    """Three steps that wander between the rooms without the key."""
    env = gym.make(TOY_ID)
    obs, info = env.reset(seed=1)
    other = next(r for r in ("kitchen", "garden") if r != info["privileged"]["key_room"])
    traj = Trajectory(env_id=TOY_ID, task_id=info["task_id"], task=info["task"])
    for action in (f"go to {other}", "go to hall", f"go to {other}"):
        traj.steps.append(Step(observation=obs, action=action, admissible_actions=info["admissible_actions"],
                               reason="I wander.", info=record_info(info)))
        obs, _, term, trunc, info = env.step(action)
        assert not (term or trunc)
    return traj


def reply(entries, fenced=True) -> str:
    body = json.dumps({"summary": "wandered", "trajectory": entries})
    return f"Here you go:\n```json\n{body}\n```" if fenced else body


def admissible_entries(traj):
    return [entry(t, s.admissible_actions[-1]) for t, s in enumerate(traj.steps)]


def entry(t, action, corrected=True):
    return {"timestep": t, "corrected_reason": f"I should try {action}.", "corrected_action": action,
            "is_corrected": corrected}


class TeacherServer:
    """Returns the scripted assistant contents in order; records every request body."""

    def __init__(self):
        self.script: list[str] = []
        self.requests: list[dict] = []
        app = FastAPI()

        @app.post("/v1/chat/completions")
        def chat(body: dict):
            self.requests.append(body)
            content = self.script.pop(0) if self.script else "no more script"
            return {"id": "t", "object": "chat.completion", "model": body["model"],
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}

        self.app = app


@pytest.fixture(scope="module")
def server():
    s = TeacherServer()
    with BackgroundServer(s.app) as bg:
        s.url = bg.url + "/v1"
        yield s


@pytest.fixture
def teacher(server):
    server.script.clear()
    server.requests.clear()
    backend = OpenAIChat("gpt-test", base_url=server.url, max_retries=0, timeout=10, prices=(2.5, 10.0))
    return LLMTeacher(backend, max_tries=3)


def test_valid_reply_gives_one_correction_per_step(server, teacher):
    traj = toy_trajectory()
    target = traj.steps[0].info["privileged"]["key_room"]
    server.script.append(reply(admissible_entries(traj)))
    out = teacher.correct(traj)
    assert [c.step_index for c in out] == list(range(len(traj)))
    assert all(c.metadata["valid"] for c in out)
    assert out[0].action == traj.steps[0].admissible_actions[-1]
    assert teacher.stats.requests == 1 and teacher.stats.cost > 0
    # the request carried the privileged state, and the student's steps
    user = server.requests[0]["messages"][1]["content"]
    assert "PRIVILEGED STATE" in user and target in user and "I wander." in user


def test_wrong_length_then_valid_is_retried_with_feedback(server, teacher):
    traj = toy_trajectory()
    server.script += [reply(admissible_entries(traj)[:1]), reply(admissible_entries(traj), fenced=False)]
    out = teacher.correct(traj)
    assert len(out) == len(traj) and all(c.metadata["valid"] for c in out)
    assert teacher.stats.requests == 2 and teacher.stats.retries == 1
    assert "expected 3 trajectory entries, got 1" in server.requests[1]["messages"][-1]["content"]


def test_malformed_replies_never_raise(server, teacher):
    traj = toy_trajectory()
    server.script += ["I think the student did fine.", "{not json", "```json\n[1, 2]\n```"]
    out = teacher.correct(traj)
    assert len(out) == len(traj)
    assert not any(c.was_corrected for c in out) and not any(c.metadata["valid"] for c in out)
    assert teacher.stats.failed_episodes == 1 and teacher.stats.requests == 3


def test_backend_error_fails_the_episode_without_raising(server, teacher):
    traj = toy_trajectory()
    teacher.backend.base_url = server.url + "/missing"  # a real 404 from the server
    out = teacher.correct(traj)
    assert len(out) == len(traj) and not any(c.metadata["valid"] for c in out)
    assert "backend" in out[0].metadata["error"] and teacher.stats.failed_episodes == 1


def test_partial_acceptance_keeps_valid_steps(server, teacher):
    traj = toy_trajectory()
    bad = admissible_entries(traj)
    bad[1] = entry(1, "teleport to garden")
    server.script += [reply(bad)] * 3
    out = teacher.correct(traj)
    assert [c.metadata["valid"] for c in out] == [True, False, True]
    assert out[1].action == traj.steps[1].action and not out[1].was_corrected
    assert teacher.stats.invalid_steps == 1


def test_correction_prompt_has_privileged_and_mode():
    msgs = correction_messages(toy_trajectory())
    assert "NEVER reveal privileged facts" in msgs[0]["content"]
    assert "key_room" in msgs[1]["content"]


@pytest.fixture(scope="module")
def served_student(tmp_path_factory):
    import torch

    from leap_gym.agents.serve import build_app
    from leap_gym.agents.student import HFStudent
    from leap_gym.models import build_tiny_student

    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("student")
    build_tiny_student("tiny", seed=0, save_to=str(path))
    student = HFStudent(str(path), max_new_tokens=16, seed=None)
    with BackgroundServer(build_app(student, "tiny-student")) as bg:
        yield bg.url + "/v1"


def test_llm_and_self_teacher_end_to_end_against_leap_gym_serve(served_student):
    """An untrained model's replies are garbage: both teachers must still return one well-formed correction
    per step, never raise, and count the requests."""
    traj = toy_trajectory()
    backend = OpenAIChat("tiny-student", base_url=served_student, max_retries=1, timeout=60)
    llm = LLMTeacher(backend, max_tries=2, max_tokens=32)
    out = llm.correct(traj)
    assert len(out) == len(traj) and llm.stats.requests >= 1
    self_teacher = SelfTeacher(backend, max_tokens=24)
    out = self_teacher.correct(traj)
    assert [c.step_index for c in out] == list(range(len(traj)))
    for c, step in zip(out, traj.steps, strict=True):
        assert c.was_corrected == (c.action != step.action)
        if c.was_corrected:
            assert c.action in step.admissible_actions
    assert self_teacher.stats.requests == len(traj)
