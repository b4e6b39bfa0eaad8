"""The student-speed benchmark (today's pipeline vs the new one) at a size that runs in well under a minute,
on the tiny built student: every measurement is made in its subprocess, counted and written, so the script
cannot rot between the runs of the real benchmark."""

import importlib.util
import json
from pathlib import Path

import pytest

STUDENT_SPEED = Path(__file__).resolve().parents[2] / "benchmarks" / "student_speed.py"


def _student_speed_module():
    spec = importlib.util.spec_from_file_location("leap_student_speed_benchmark", STUDENT_SPEED)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_student_speed_measures_both_pipelines_on_the_same_data(tmp_path):
    from leap_gym.models import build_tiny_student

    build_tiny_student("tiny", save_to=str(tmp_path / "tiny"))
    out = tmp_path / "speed.json"
    rc = _student_speed_module().main(["--model", str(tmp_path / "tiny"), "--episodes", "2", "--warmup", "1",
                                       "--steps", "1", "--envs", "2", "--act-steps", "2", "--max-new-tokens",
                                       "6", "--out", str(out)])
    assert rc == 0
    result = json.loads(out.read_text())
    train = result["training"]
    assert set(train) == {"today", "new"}
    assert train["today"]["dtype"] == "fp32"
    for row in train.values():
        assert row["timed_steps"] == 1 and row["tokens"] > 0 and row["head_positions"] > 0
        assert 0 < row["peak_fraction"] < 1 and row["peak_rss_mb"] > 0
        # both pipelines train every step of the same demonstrations, laid out differently
        assert row["env_steps"] == result["demonstrations"]["steps"]
    assert train["today"]["rows"] == train["today"]["env_steps"]  # the step format: one row per step
    assert train["new"]["rows"] < train["new"]["env_steps"]  # the episode format: one row per episode
    acting = {(r["pipeline"], r["envs"]): r for r in result["acting"]}
    assert set(acting) == {("today", 2), ("new", 2)}
    for row in acting.values():
        assert row["actions"] == 4 and 0 < row["generated_tokens"] <= 4 * 6 and row["actions_per_s"] > 0
    # the new pipeline's episode cache computes fewer prompt tokens for the same steps
    assert acting[("new", 2)]["prompt_tokens"] < acting[("today", 2)]["prompt_tokens"]
    md = out.with_suffix(".md").read_text()
    assert "| tokens/s |" in md and "| actions/s | 2 |" in md
