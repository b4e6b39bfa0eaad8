"""The LLM teacher in a LEAP run, over real HTTP on 127.0.0.1: built from a config alone (the shipped example
configs resolve), an outage (HTTP 500) never trains the student on its own failures and stops the correction
stage early without marking it done, a re-run retries it; replies servers really send (content as a list of
parts, odd ``usage``) parse, and an unparseable reply is never replayed from the cache."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi import FastAPI, Request  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402

from leap_gym.agents.backends import OpenAIChat  # noqa: E402
from leap_gym.agents.serve import BackgroundServer  # noqa: E402
from leap_gym.agents.teachers.llm import LLMTeacher, SelfTeacher  # noqa: E402
from leap_gym.leap.config import ConfigError, load_config  # noqa: E402
from leap_gym.leap.correct import TeacherUnavailable, correct  # noqa: E402
from leap_gym.leap.run import StageError, make_teacher, run  # noqa: E402
from tests.agents.test_llm_teacher import toy_trajectory  # noqa: E402
from tests.leap.test_run import toy_config  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "configs"


def answer(messages: list[dict]) -> str:
    """What a competent privileged teacher answers: go to the key's room at every step (the self-teacher's
    one-step prompt gets one REASON/ACTION answer)."""
    user = messages[1]["content"]
    if "STUDENT TRAJECTORY" not in user:
        key_room = json.loads(user.split("PRIVILEGED STATE: ", 1)[1].split("\n", 1)[0])["key_room"]
        return f"REASON: The key is usually in another room.\nACTION: go to {key_room}"
    privileged = json.loads(user.split("PRIVILEGED STATE:\n", 1)[1].split("\n\nSTUDENT TRAJECTORY", 1)[0])
    steps = json.loads(user.split("timesteps):\n", 1)[1])
    entries = []
    for t, step in enumerate(steps):
        action = f"go to {privileged['key_room']}" if isinstance(privileged, dict) else ""
        action = action if action in step["candidate_actions"] else step["candidate_actions"][0]
        entries.append({"timestep": t, "corrected_reason": "The key is usually in another room.",
                        "corrected_action": action, "is_corrected": True})
    return "```json\n" + json.dumps({"summary": "wandered", "trajectory": entries}) + "\n```"


class Teacher:
    """An OpenAI-compatible teacher endpoint; ``mode`` picks how it answers; records requests and headers."""

    def __init__(self):
        self.mode = "ok"
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.lock = threading.Lock()
        app = FastAPI()

        @app.post("/v1/chat/completions")
        def chat(body: dict, request: Request):
            with self.lock:
                self.requests.append(body)
                self.headers.append(dict(request.headers))
            if self.mode == "500":
                return JSONResponse({"error": {"message": "upstream overloaded"}}, 500)
            content: object = (answer(body["messages"]) if self.mode != "garbage"
                               else "I cannot help with that.")
            usage: object = {"prompt_tokens": 100, "completion_tokens": 20}
            if self.mode == "parts":  # as several servers send it, with odd usage counts
                text = str(content)
                content = [{"type": "text", "text": text[:10]}, {"type": "text", "text": text[10:]}]
                usage = {"prompt_tokens": "100", "completion_tokens": {"cached": 3}}
            return {"id": "t", "object": "chat.completion", "model": body["model"], "usage": usage,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                 "finish_reason": "stop"}]}

        self.app = app


@pytest.fixture(scope="module")
def endpoint():
    t = Teacher()
    with BackgroundServer(t.app) as bg:
        t.url = bg.url + "/v1"
        yield t


@pytest.fixture
def teacher_server(endpoint):
    endpoint.mode = "ok"
    endpoint.requests.clear()
    endpoint.headers.clear()
    return endpoint


def llm_teacher_config(run_dir: Path, url: str) -> dict:
    cfg = toy_config(run_dir)
    cfg["iterations"] = 1
    cfg["teacher"] = {"kind": "leap_gym.agents.teachers.llm:LLMTeacher", "privilege": 1.0,
                      "demo_kind": "tests.leap.toy_teacher:ToyExpertTeacher",
                      "kwargs": {"max_tries": 1, "backend": {
                          "model": "teacher-model", "base_url": url,
                          "api_key_env": "LEAPGYM_TEST_TEACHER_KEY", "max_retries": 1, "backoff": 0.01}}}
    cfg["evaluation"]["teachers"] = False
    cfg["rollout"] = {"select": "all"}  # every episode is corrected, won or not
    return cfg


@pytest.mark.slow  # two short runs of the whole loop (~40 s on 2 cores)
def test_outage_never_trains_on_failures_and_a_rerun_retries(tmp_path, teacher_server, monkeypatch):
    monkeypatch.setenv("LEAPGYM_TEST_TEACHER_KEY", "sk-SENTINEL")
    cfg = llm_teacher_config(tmp_path / "run", teacher_server.url)
    teacher_server.mode = "500"
    with pytest.raises(StageError,
                       match=r"iter 1 corrections stopped: the teacher failed on 3 episodes in a row"
                                         r".*HTTP 500.*re-run to retry"):
        run(cfg, progress=False)
    it = tmp_path / "run" / "iter_1"
    assert (it / "rollout.jsonl").exists()  # finished work is kept
    assert not (it / "corrections.jsonl").exists() and not (it / "dataset.jsonl").exists()  # not marked done
    assert len(teacher_server.requests) == 3 * 2  # 3 episodes x (1 try + 1 retry), then the stage stopped
    assert teacher_server.headers[0]["authorization"] == "Bearer sk-SENTINEL"  # key from the named variable

    teacher_server.mode = "ok"
    rows = run(cfg, progress=False)
    assert [r["key"] for r in rows] == ["iter_0", "iter_1"]
    stats = json.loads((it / "dataset_stats.json").read_text())
    assert stats["rows"] > 0 and stats["skipped_invalid"] == 0
    dataset = [json.loads(x) for x in (it / "dataset.jsonl").read_text().splitlines()]
    assert all(r["completion"][0]["content"].endswith(("go to kitchen", "go to garden")) for r in dataset)
    assert list((tmp_path / "run" / "teacher_cache").rglob("*.json"))  # answers cached in the run by default


def test_mostly_invalid_corrections_are_not_marked_done(tmp_path, teacher_server):
    """Replies that never validate (below the consecutive-failure stop) still fail the stage as a whole."""
    from leap_gym.leap.run import Run
    from leap_gym.records import write_jsonl

    cfg = load_config(None, base=llm_teacher_config(tmp_path / "run", teacher_server.url),
                      overrides=["teacher.max_consecutive_failures=0"])
    r = Run(cfg, progress=False, log=lambda m: None)
    trajs = [toy_trajectory() for _ in range(4)]
    write_jsonl(r.layout.iteration_dir(1) / "rollout.jsonl", trajs)
    teacher_server.mode = "garbage"
    with pytest.raises(StageError, match=r"failed on 12/12 steps .*no parseable JSON"):
        r.corrections(1, trajs)
    assert not (r.layout.iteration_dir(1) / "corrections.jsonl").exists()
    # an unparseable reply is never cached: a re-run asks again instead of replaying the failure
    assert not list((tmp_path / "run" / "teacher_cache").rglob("*.json"))
    teacher_server.mode = "ok"
    kept, corrections = r.corrections(1, trajs)
    assert len(kept) == 4 and all(c.metadata["valid"] for cs in corrections for c in cs)
    assert (r.layout.iteration_dir(1) / "corrections.jsonl").exists()


def test_dead_endpoint_stops_after_consecutive_failures(teacher_server):
    teacher_server.mode = "500"
    teacher = LLMTeacher(OpenAIChat("m", teacher_server.url, max_retries=2, backoff=0.01), max_tries=3)
    with pytest.raises(TeacherUnavailable, match="3 episodes in a row; last error: backend: .*HTTP 500"):
        correct([toy_trajectory() for _ in range(10)], teacher, select="all", max_consecutive_failures=3)
    assert len(teacher_server.requests) == 3 * 3  # 3 episodes x 3 attempts; the other 7 never tried


def test_list_content_and_odd_usage_parse(teacher_server, tmp_path):
    teacher_server.mode = "parts"
    backend = OpenAIChat("m", teacher_server.url, max_retries=0, cache_dir=tmp_path, prices=(1.0, 1.0))
    teacher = LLMTeacher(backend)
    out = teacher.correct(toy_trajectory())
    assert all(c.metadata["valid"] for c in out) and teacher.stats.failed_episodes == 0
    assert backend.usage.prompt_tokens == 100 and backend.usage.completion_tokens == 0
    assert len(list(tmp_path.rglob("*.json"))) == 1  # a parsed reply is cached


@pytest.mark.parametrize("name, kind", [("alfworld_llm_teacher.yaml", LLMTeacher),
                                        ("alfworld_self_teacher.yaml", SelfTeacher)])
def test_example_configs_resolve_to_working_teachers(name, kind, tmp_path, teacher_server):
    cfg = load_config(EXAMPLES / name, [f"run_dir={tmp_path / 'run'}"])
    assert cfg.teacher.demo_kind == "expert"
    teacher = make_teacher(cfg, cfg.teacher.privilege)
    assert isinstance(teacher, kind) and isinstance(teacher.backend, OpenAIChat)
    assert teacher.backend.cache_dir == tmp_path / "run" / "teacher_cache"
    assert teacher.backend.model == cfg.teacher.kwargs["backend"]["model"]
    assert make_teacher(cfg, 0.0).privilege == 0.0
    # the same config pointed at a loopback endpoint corrects a trajectory
    cfg = load_config(EXAMPLES / name, [f"run_dir={tmp_path / 'run'}",
                                        f"teacher.kwargs.backend.base_url={teacher_server.url}"])
    teacher = make_teacher(cfg, cfg.teacher.privilege)
    if kind is LLMTeacher:
        assert all(c.metadata["valid"] for c in teacher.correct(toy_trajectory()))
        assert "key_room" in teacher_server.requests[-1]["messages"][1]["content"]
        out = make_teacher(cfg, 0.0).correct(toy_trajectory())  # without privilege: the state is left out
        assert all(c.metadata["valid"] for c in out)
        assert "key_room" not in teacher_server.requests[-1]["messages"][1]["content"]
    else:
        traj = toy_trajectory()
        out = teacher.correct(traj)
        assert all(c.metadata["valid"] for c in out)
        assert out[0].action.endswith(traj.steps[0].info["privileged"]["key_room"])
        assert "PRIVILEGED STATE" in teacher_server.requests[-1]["messages"][1]["content"]


def test_teacher_thresholds_are_validated():
    with pytest.raises(ConfigError, match="teacher.max_invalid_fraction"):
        load_config(None, ["teacher.max_invalid_fraction=1.5"])
    with pytest.raises(ConfigError, match="teacher.max_consecutive_failures"):
        load_config(None, ["teacher.max_consecutive_failures=-1"])
