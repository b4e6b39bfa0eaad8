"""The acting benchmark at a size that runs in seconds: every thread count asked for is measured, both modes
act the same steps, and the two modes' greedy answers are compared (a speed-up that changed answers must
show)."""

import importlib.util
import json
from pathlib import Path

import torch

ACT_SPEED = Path(__file__).resolve().parents[2] / "benchmarks" / "act_speed.py"


def _act_speed_module():
    spec = importlib.util.spec_from_file_location("leap_act_speed_benchmark", ACT_SPEED)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_act_speed_measures_each_thread_count_and_checks_answers(tmp_path):
    before = torch.get_num_threads()
    out = tmp_path / "act.json"
    try:
        rc = _act_speed_module().main(["--sizes", "tiny", "--envs", "1", "3", "--steps", "2", "--repeats",
                                       "1", "--threads", "1", "2", "--max-new-tokens", "6", "--out",
                                       str(out)])
    finally:
        torch.set_num_threads(before)
    assert rc == 0
    result = json.loads(out.read_text())
    assert result["meta"]["threads"] == [1, 2]
    rows = {(r["threads"], r["envs"], r["mode"]): r for r in result["rows"]}
    assert set(rows) == {(t, n, m) for t in (1, 2) for n in (1, 3) for m in ("batched", "env-by-env")}
    for (_, n, _), row in rows.items():
        assert row["actions"] == 2 * n
        assert 0 < row["generated_tokens"] <= 2 * n * 6
        assert row["actions_per_s"] > 0 and "answers" not in row
    speedups = {(s["threads"], s["envs"]): s for s in result["speedups"]}
    assert set(speedups) == {(1, 1), (1, 3), (2, 1), (2, 3)}
    assert all(s["same_answers"] == 1.0 for s in speedups.values())
