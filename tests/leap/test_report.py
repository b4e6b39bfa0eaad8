"""The run report: intervals, tables, curves, stage times and episodes, built from records written with the
library's own types, then rendered by headless Chromium at 1400 px; run-level metrics to the trackers."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from leap_gym.leap.config import load_config
from leap_gym.leap.evaluate import summarize
from leap_gym.leap.layout import RunLayout, write_corrections
from leap_gym.leap.report import results_table, wilson_interval
from leap_gym.leap.run import Run
from leap_gym.leap.trackers import RunTrackers, requested, scalars
from leap_gym.records import Correction, Step, Trajectory, write_jsonl

TYPES = ("pick_and_place", "look_at_obj", "heat_then_place")


def test_wilson_interval_matches_the_closed_form_and_stays_in_bounds():
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-4) and hi == pytest.approx(0.5962, abs=1e-4)  # about +/-0.1
    assert wilson_interval(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))
    assert wilson_interval(10, 10) == (pytest.approx(0.7225, abs=1e-4), 1.0)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert "[0.40, 0.60]" in results_table([{"name": "x", "success": 0.5, "score": 0.5, "n": 100}])


def _episode(task: int, won: bool, steps: int) -> Trajectory:
    """An ALFWorld-like held-out episode: the oracle's action recorded in the privileged info, one format
    error in failed episodes."""
    kind = TYPES[task % len(TYPES)]
    traj = Trajectory(env_id="leap/ALFWorld-v0", task_id=f"{kind}/{task}",
                      task=f"put a clean mug {task} in coffeemachine", won=won, score=1.0 if won else 0.0,
                      metadata={"task_type": kind})
    for t in range(steps):
        oracle = f"go to countertop {t + 1}"
        bad = not won and t == 1
        traj.steps.append(Step(
            observation=f"You arrive at countertop {t}. On the countertop {t}, you see a mug {t}, a knife 1, "
                        "and a spoon 2. " * (3 if t == 0 else 1),
            action="<invalid>" if bad else (oracle if won or t % 2 else "look"), action_valid=not bad,
            reason="I need to find the mug first.", reward=1.0 if won and t == steps - 1 else 0.0,
            info={"task_type": kind, "privileged": {"expert_action": oracle}},
            raw_output="REASON: I need the mug\nACT go to" if bad else ""))
        if bad:
            traj.metadata["format_errors"] = 1
    return traj


def write_run(run_dir: Path) -> None:
    """A finished 2-iteration run's records: config, teacher evaluations, per-iteration training logs,
    held-out evaluations with their episodes, corrections, and stage times."""
    base = {"run_dir": str(run_dir), "iterations": 2, "evaluation": {"num_test_tasks": 30},
            "env": {"env_id": "leap/ALFWorld-v0", "num_train_tasks": 30}}
    Run(load_config(None, base=base), progress=False).setup()

    def evaluation(path: Path, name: str, wins: int) -> None:
        trajs = [_episode(k, k < wins, 3 if k < wins else 5) for k in range(30)]
        write_jsonl(path.with_name(path.stem + "_trajectories.jsonl"), trajs)
        path.write_text(json.dumps({"name": name, **summarize(trajs), "wall_s": 12.5}))

    (run_dir / "teachers").mkdir()
    evaluation(run_dir / "teachers" / "teacher_privileged.json", "teacher (privilege 0.5)", 27)
    evaluation(run_dir / "teachers" / "teacher_no_privilege.json", "teacher without privilege", 9)
    t0 = time.time() - 3600
    layout = RunLayout(run_dir)
    layout.record_stage("teachers/teacher_privileged", t0, 12.5)
    for i, wins in enumerate((6, 14, 19)):
        d = run_dir / f"iter_{i}"
        (d / "train").mkdir(parents=True)
        history = [{"loss": 3.0 / (1 + s / 20) + 0.1 * i, "step": s} for s in range(10, 110, 10)]
        (d / "train" / "train_log.json").write_text(json.dumps({
            "metrics": {"method": "sft", "train_loss": history[-1]["loss"], "global_steps": 100},
            "log_history": [*history, {"train_loss": 1.0, "step": 100}]}))
        evaluation(d / "eval.json", "BC" if i == 0 else f"LEAP iter {i}", wins)
        if i:
            trajs = [_episode(k, False, 5) for k in range(3)]
            fixes = [[Correction(step_index=t, reason="the mug is on countertop 1",
                                 action=f"go to countertop {t + 1}",
                                 was_corrected=s.action != f"go to countertop {t + 1}")
                      for t, s in enumerate(tr.steps)] for tr in trajs]
            write_corrections(d / "corrections.jsonl", trajs, fixes)
        for k, kind in enumerate(("rollout", "corrections", "dataset", "train", "eval")):
            layout.record_stage(f"iter_{i}/{kind}", t0 + 100 * (i + 1) + k, 30.0 * (k + 1),
                                peak_rss_mib=1024.0 * (i + k + 1))


def _chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


def test_report_has_tables_curves_and_episodes_and_renders_readably_at_1400px(tmp_path):
    pytest.importorskip("matplotlib")
    import numpy as np
    from PIL import Image

    run_dir = tmp_path / "run"
    write_run(run_dir)
    Run(load_config(run_dir / "config.yaml"), progress=False).refresh_outputs()
    page = (run_dir / "report.html").read_text()
    for needle in ("<table id=results>", "<table id=per_type>", "<table id=stages>",
                   "<th>heat_then_place</th>", "<img src='learning_curve.png'", "<img src='loss_curves.png'",
                   "95% Wilson score interval", "<dt>oracle agreement</dt>", "<dt>format errors</dt>",
                   "The student's own held-out episodes", "Iteration 2: teacher corrections",
                   "model output: REASON: I need the mug", "<th>peak memory</th>",
                   "<td class=num>5.0 GB</td>"):  # BC's highest stage: its eval (k=4), 1024 x 5 MiB
        assert needle in page, needle
    assert "<b>0.63</b> <span class=ci>[0.46, 0.78]</span>" in page  # iter 2: 19/30 with its Wilson interval
    for png in ("learning_curve.png", "loss_curves.png"):
        assert Image.open(run_dir / png).size == (600, 400)

    chromium = _chromium()
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium): the page was not rendered")
    shot = tmp_path / "report.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,2600",
                    f"--screenshot={shot}", (run_dir / "report.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape == (2600, 1400, 3)
    assert (pixels != 255).any(axis=2).mean() > 0.03  # text, tables and plots, not a blank page
    # matplotlib's first colour (the student's curve, the BC loss line) appears only if the PNGs were drawn
    assert (pixels == (31, 119, 180)).all(axis=2).sum() > 200
    assert (pixels[:, 1360:] == 255).all()  # nothing overflows the page's width: the right margin stays blank


def test_stage_times_keep_the_latest_run_of_a_stage(tmp_path):
    layout = RunLayout(tmp_path)
    layout.record_stage("iter_1/train", 1000.0, 5.0)
    layout.record_stage("iter_1/eval", 1010.0, 2.0)
    layout.record_stage("iter_1/train", 2000.0, 7.0)  # redone after a kill
    stages = layout.load_stages()
    assert list(stages) == ["iter_1/train", "iter_1/eval"] and stages["iter_1/train"]["wall_s"] == 7.0


def test_report_to_names_the_trackers_and_the_trainer_gets_only_those_installed():
    from leap_gym.leap.trackers import trainer_report_to

    assert requested("none") == [] and requested(None) == []
    assert requested("tensorboard") == ["tensorboard"]
    assert requested("wandb,tensorboard") == ["tensorboard", "wandb"]
    assert requested(["wandb"]) == ["wandb"]
    installed = []
    for name in ("tensorboard", "wandb"):
        try:
            __import__(name)
            installed.append(name)
        except ImportError:
            pass
    assert requested("all") == installed  # as transformers reads "all": the integrations installed
    assert trainer_report_to("none") == []
    # the trainer decides about the integrations that are not ours
    assert trainer_report_to("tensorboard, wandb mlflow") == [*installed, "mlflow"]


def test_scalars_are_success_per_iteration_with_teachers_as_references(tmp_path):
    write_run(tmp_path / "run")
    points = scalars(RunLayout(tmp_path / "run").collect_metrics())
    assert [i for i, _ in points] == [0, 1, 2]
    assert points[2][1]["leap/success"] == pytest.approx(19 / 30)
    last = points[2][1]
    assert last["leap/success_ci_low"] < last["leap/success"] < last["leap/success_ci_high"]
    assert all(v["reference/teacher_privileged/success"] == pytest.approx(0.9) for _, v in points)


@pytest.mark.parametrize("tracker", ["tensorboard", "wandb"])
def test_an_absent_tracker_is_skipped_with_one_warning(tmp_path, tracker):
    try:
        __import__(tracker)
        pytest.skip(f"{tracker} is installed")
    except ImportError:
        pass
    warnings: list[str] = []
    t = RunTrackers(tmp_path, tracker, warnings.append)
    t.log([{"agent": "student", "key": "iter_0", "iteration": 0, "success": 0.5, "score": 0.5, "n": 4}])
    t.close()
    assert len(warnings) == 1 and f"report_to asks for {tracker}, which cannot be imported" in warnings[0]
    assert not (tmp_path / "tensorboard").exists()


def test_tensorboard_gets_success_per_iteration_rebuilt_without_duplicates(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    write_run(tmp_path / "run")
    rows = RunLayout(tmp_path / "run").collect_metrics()
    warnings: list[str] = []
    t = RunTrackers(tmp_path / "run", "tensorboard", warnings.append)
    t.log(rows[:3])
    t.log(rows)  # after the next stage: rebuilt, not appended
    assert warnings == []
    acc = EventAccumulator(str(tmp_path / "run" / "tensorboard" / "leap"))
    acc.Reload()
    events = acc.Scalars("leap/success")
    assert [e.step for e in events] == [0, 1, 2]
    assert events[2].value == pytest.approx(19 / 30)


def test_wandb_gets_each_iteration_once_with_the_iteration_as_x_axis(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    write_run(tmp_path / "run")
    rows = RunLayout(tmp_path / "run").collect_metrics()
    t = RunTrackers(tmp_path / "run", "wandb", pytest.fail, {"iterations": 2})
    t.log(rows[:3])  # teachers and BC
    run = t._wandb_run
    assert run.step == 1 and run.summary["leap/success"] == pytest.approx(0.2)
    t.log(rows)
    t.log(rows)  # nothing new: nothing logged twice
    assert run.step == 3 and run.summary["leap/iteration"] == 2
    assert run.summary["leap/success"] == pytest.approx(19 / 30) and run.name == "run"
    t.close()
    assert list((tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb"))
