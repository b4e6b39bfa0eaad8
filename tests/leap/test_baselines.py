"""Prompting baselines in a run: the zero-shot ReAct baseline loads its model once, plays every slot."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("transformers")

from leap_gym.agents.react import ReActAgent  # noqa: E402
from leap_gym.leap.baselines import zero_shot_react  # noqa: E402
from leap_gym.leap.config import from_dict  # noqa: E402
from leap_gym.leap.run import run  # noqa: E402
from leap_gym.models import build_tiny_student  # noqa: E402
from tests.leap.test_run import toy_config  # noqa: E402

BUILT: list[ReActAgent] = []


def counted_react(cfg):
    """``zero_shot_react``, remembering every agent it builds."""
    agent = zero_shot_react(cfg)
    BUILT.append(agent)
    return agent


def test_zero_shot_react_is_evaluated_once_over_all_slots(tmp_path):
    model_dir = tmp_path / "model"
    build_tiny_student("tiny", vocab_size=1024, save_to=str(model_dir))
    cfg = toy_config(tmp_path / "run")
    cfg["iterations"] = 0
    cfg["student"]["model"] = str(model_dir)
    cfg["evaluation"]["baselines"] = [f"{__name__}:counted_react"]
    BUILT.clear()
    run(cfg, progress=False)
    record = json.loads((tmp_path / "run" / "baselines" / "counted_react.json").read_text())
    assert record["n"] == 3 and 0.0 <= record["success"] <= 1.0
    assert len(BUILT) == 1 and len(BUILT[0].episodes) == 3  # one agent, one model load, three env slots
    # the baseline never sees privileged state
    assert all("secret" not in json.dumps(m) and "key_room" not in json.dumps(m)
               for slot in BUILT[0].episodes for m in BUILT[0].messages(slot))


def test_zero_shot_react_uses_the_run_env_rules(tmp_path):
    model_dir = tmp_path / "model"
    build_tiny_student("tiny", vocab_size=1024, save_to=str(model_dir))
    cfg = from_dict({"student": {"model": str(model_dir)}, "env": {"env_id": "leap/ALFWorld-v0"}})
    agent = zero_shot_react(cfg)
    assert "household" in agent.system.lower() or "candidate" in agent.system.lower()
