"""The learning benchmark's presets must build envs: a per-seed kwarg the env does not take only failed after
the run had started (the seed keyword is the one each env's benchmark spec names)."""

import importlib.util
import inspect
import json
from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.envs.registration import load_env_creator

import leap_gym  # noqa: F401  (registers the envs)

LEARN = Path(__file__).resolve().parents[2] / "benchmarks" / "learn.py"


def _learn_module():
    spec = importlib.util.spec_from_file_location("leap_learn_benchmark", LEARN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("env", ["alfworld", "webshop", "bash"])
def test_every_preset_passes_only_kwargs_its_env_takes(env, tmp_path):
    learn = _learn_module()
    a, b = (learn.config_for(env, s, tmp_path, quick=False) for s in (0, 1))
    spec = gym.spec(a["env"]["env_id"])
    params = inspect.signature(load_env_creator(spec.entry_point)).parameters
    for key in a["env"]["kwargs"]:
        assert key in params, f"{env}: {key!r} is not a parameter of {spec.entry_point}"
    assert a["env"]["kwargs"] != b["env"]["kwargs"], "seeds must draw different tasks"
    assert a["run_dir"] != b["run_dir"]


def test_verdict_bar_is_the_paired_gain_and_the_larger_spread_is_reported_beside_it():
    learn = _learn_module()

    def rows(bc, last, teacher):
        return [{"key": "teacher_no_privilege", "success": teacher, "score": teacher},
                {"key": "iter_0", "success": bc, "score": bc},
                {"key": "iter_2", "success": last, "score": last}]

    res = learn.summarize({0: rows(0.50, 0.55, 0.77), 1: rows(0.55, 0.59, 0.76), 2: rows(0.45, 0.50, 0.72)})
    v = res["verdict"]
    assert v["last_iteration"] == 2
    assert v["gain_per_seed"] == pytest.approx([0.05, 0.04, 0.05])
    assert v["gain_per_seed_sd"] == pytest.approx(0.00577, abs=1e-4)
    assert v["spread"] == pytest.approx(res["agents"]["iter_0"]["success_sd"])  # BC's sd (0.05) is the larger
    assert v["beats_bc_by_2x_paired_spread"]  # every seed gained: 0.047 > 2 x 0.0058
    assert not v["beats_bc_by_2x_spread"]  # the stricter reading: 0.047 < 2 x 0.05
    assert not v["beats_teacher_without_privilege"]
    wide = learn.summarize({0: rows(0.10, 0.40, 0.30), 1: rows(0.12, 0.42, 0.30)})["verdict"]
    assert wide["beats_bc_by_2x_spread"] and wide["beats_teacher_without_privilege"]
    mixed = learn.summarize({0: rows(0.25, 0.325, 0.9), 1: rows(0.075, 0.175, 0.9),
                             2: rows(0.15, 0.075, 0.9)})
    assert not mixed["verdict"]["beats_bc_by_2x_paired_spread"]  # +0.075, +0.1, -0.075: inside its spread
    two = learn.summarize({0: rows(0.10, 0.125, 0.30), 1: rows(0.20, 0.225, 0.30)})["verdict"]
    assert not two["beats_bc_by_2x_paired_spread"]  # two equal gains have sd 0: too few seeds to tell


def test_each_seed_runs_in_its_own_process_and_returns_its_rows(tmp_path):
    """``run_seed`` runs the whole loop in a spawned interpreter (memory is handed back between seeds) and
    returns the same rows the run records."""
    pytest.importorskip("trl")
    from tests.leap.test_run import toy_config

    learn = _learn_module()
    cfg = toy_config(tmp_path / "run")
    cfg["iterations"] = 1
    rows = learn.run_seed(cfg, verbose=False)
    assert [r["key"] for r in rows] == ["teacher_no_privilege", "teacher_privileged", "iter_0", "iter_1"]
    recorded = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {r["key"]: r["success"] for r in rows} == {r["key"]: r["success"] for r in recorded
                                                      if "success" in r}
