"""The whole loop on the toy env with the tiny student: outputs, resume without recomputation, SIGKILL
mid-stage, DPO end to end, and the CLI."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("trl")

from leap_gym.leap.config import ConfigError, load_config  # noqa: E402
from leap_gym.leap.layout import RunLayout, read_corrections  # noqa: E402
from leap_gym.leap.run import make_student, run  # noqa: E402
from leap_gym.records import read_trajectories  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TOY = "tests.toy_env:leap-test/Toy-v0"  # module:id, so subprocesses register the toy env on make


def toy_config(run_dir, method="sft", **training) -> dict:
    return {"run_dir": str(run_dir), "iterations": 2,
            "env": {"env_id": TOY, "train_kwargs": {}, "test_kwargs": {}, "num_train_tasks": 6,
                    "max_steps": 3},
            "student": {"model": "tiny", "batch_size": 6, "max_new_tokens": 16, "num_threads": 1,
                        "vocab_size": 1024, "tokenizer_episodes": 6},
            "teacher": {"kind": "tests.leap.toy_teacher:ToyExpertTeacher"},
            "training": {"bc_max_steps": 3, "max_steps": 2, "batch_size": 4, "max_length": 256,
                         "method": method, "warmup_steps": 0, **training},
            "evaluation": {"num_test_tasks": 3}}


def _stage_files(run_dir: Path) -> dict[str, float]:
    names = ["iter_0/demos.jsonl", "iter_0/dataset.jsonl", "iter_0/train/train_log.json", "iter_0/eval.json",
             "iter_1/rollout.jsonl", "iter_1/corrections.jsonl", "iter_1/dataset.jsonl",
             "iter_1/train/train_log.json", "iter_2/eval.json", "teachers/teacher_no_privilege.json"]
    return {n: (run_dir / n).stat().st_mtime_ns for n in names}


def test_sft_run_writes_everything_and_resumes_without_recomputing(tmp_path):
    run_dir = tmp_path / "run"
    rows = run(toy_config(run_dir), progress=False)
    keys = [r["key"] for r in rows]
    assert keys == ["teacher_no_privilege", "teacher_privileged", "iter_0", "iter_1", "iter_2"]
    assert all("success" in r and "per_type" in r for r in rows)
    for name in ("config.yaml", "metrics.jsonl", "learning_curve.png", "loss_curves.png", "report.html",
                 "stages.json", "iter_2/eval_trajectories.jsonl", "base/config.json",
                 "iter_2/train/model/model.safetensors", "iter_2/train/adapter/adapter_config.json"):
        assert (run_dir / name).exists(), name
    assert (run_dir / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    demos = read_trajectories(run_dir / "iter_0" / "demos.jsonl")
    assert len(demos) == 6 and all(t.won and t.steps[0].reason for t in demos)
    trajs, corrections = read_corrections(run_dir / "iter_1" / "corrections.jsonl")
    assert len(trajs) == len(corrections) and all(len(t.steps) == len(cs)
                                                  for t, cs in zip(trajs, corrections, strict=True))
    assert all(not t.won for t in trajs)  # only failures are corrected by default
    report = (run_dir / "report.html").read_text()
    assert "teacher reason" in report or "Iteration 1" in report
    assert "<table id=per_type>" in report and "The student's own held-out episodes" in report
    stages = json.loads((run_dir / "stages.json").read_text())
    assert {"base", "iter_0/demos", "iter_0/train", "iter_0/eval", "iter_1/rollout", "iter_1/corrections",
            "iter_2/train", "teachers/teacher_privileged"} <= set(stages)
    assert all(s["wall_s"] >= 0 for s in stages.values())
    if sys.platform == "linux":  # each stage's own peak resident memory (sampled from /proc)
        assert all(s["peak_rss_mib"] > 100 for s in stages.values())
    metrics = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["key"] for m in metrics] == keys and metrics[3]["train"]["global_steps"] == 2
    assert metrics[2]["train"]["learning_rate"] == metrics[3]["train"]["learning_rate"] == 2e-3

    longest = RunLayout(run_dir).longest_answer_tokens(2)
    stats = [json.loads((run_dir / f"iter_{i}" / "dataset_stats.json").read_text()) for i in range(3)]
    assert longest == max(s["max_answer_tokens"] for s in stats) > 0
    # a student allowed fewer new tokens than its longest target would cut actions off: the cap is raised
    student = make_student(load_config(run_dir / "config.yaml"), str(run_dir / "iter_2" / "train" / "model"),
                           answer_tokens=40)
    assert student.max_new_tokens == 42

    before = _stage_files(run_dir)
    logs: list[str] = []  # resumed asking for TensorBoard: run-level metrics there, or one warning without it
    again = run(toy_config(run_dir, report_to="tensorboard"), progress=False, log=logs.append)
    if importlib.util.find_spec("tensorboard"):
        assert list((run_dir / "tensorboard" / "leap").glob("events.out.tfevents.*"))
    else:
        assert sum("report_to asks for tensorboard, which cannot be imported" in m for m in logs) == 1
    assert _stage_files(run_dir) == before  # nothing recomputed
    assert json.loads((run_dir / "stages.json").read_text()) == stages  # the skipped stages keep their times
    assert [r["success"] for r in again] == [r["success"] for r in rows]
    with pytest.raises(ConfigError, match="training.max_steps"):
        run(toy_config(run_dir, max_steps=5), progress=False)

    # unreadable outputs (truncated by hand or by a full disk) are redone with one line each; temporaries of
    # writers killed mid-write are removed; finished stages stay untouched
    (run_dir / "iter_2" / "eval.json").write_text('{"name": "LEAP it')
    (run_dir / "iter_2" / "train" / "train_log.json").write_text("")
    stale = run_dir / "iter_1" / ".rollout.jsonl.0123456789abcdef.tmp"
    stale.write_text("half")
    lines: list[str] = []
    again = run(toy_config(run_dir), progress=False, log=lines.append)
    warnings = [x for x in lines if "warning" in x]
    assert len(warnings) == 2 and all("is unreadable" in x and "redoing its stage" in x for x in warnings)
    assert any("removed 1 temporary file(s)" in x for x in lines) and not stale.exists()
    assert json.loads((run_dir / "iter_2" / "eval.json").read_text())["name"] == "LEAP iter 2"
    train_log = json.loads((run_dir / "iter_2" / "train" / "train_log.json").read_text())
    assert train_log["metrics"]["global_steps"] == 2
    after = _stage_files(run_dir)
    assert {k for k in after if after[k] != before[k]} == {"iter_2/eval.json"}  # + iter_2/train, not listed
    assert [r["key"] for r in again] == keys

    (run_dir / "config.yaml").write_text("")
    with pytest.raises(ConfigError, match=r"config.yaml is empty, so the settings this run was made with"):
        run(toy_config(run_dir), progress=False)


def test_empty_config_of_an_empty_run_dir_is_replaced(tmp_path):
    from leap_gym.leap.run import Run

    (tmp_path / "config.yaml").write_text("\n")  # e.g. a killed `touch`, nothing else in the directory
    cfg = load_config(None, base=toy_config(tmp_path))
    Run(cfg, progress=False, log=lambda m: None).setup()
    assert load_config(tmp_path / "config.yaml") == cfg


def test_iterations_roll_out_consecutive_slices_of_the_train_tasks(tmp_path):
    from leap_gym.leap.run import Run

    cfg = toy_config(tmp_path)
    cfg["env"]["num_train_tasks"] = 5
    cfg["rollout"] = {"tasks_per_iteration": 2}
    r = Run(load_config(None, base=cfg), progress=False)
    assert [r.rollout_tasks(i) for i in (1, 2, 3)] == [[0, 1], [2, 3], [4, 0]]
    assert r.train_tasks() == list(range(5))  # demonstrations still cover every train task
    cfg["rollout"] = {"tasks_per_iteration": 0}
    assert Run(load_config(None, base=cfg), progress=False).rollout_tasks(2) == list(range(5))


def test_behaviour_cloning_may_have_its_own_learning_rate(tmp_path):
    t = load_config(None, base=toy_config(tmp_path, learning_rate=5e-4, bc_learning_rate=2e-3)).training
    assert [t.for_iteration(i).settings.learning_rate for i in (0, 1, 2)] == [2e-3, 5e-4, 5e-4]
    t = load_config(None, base=toy_config(tmp_path, learning_rate=5e-4)).training  # 0: the same
    assert [t.for_iteration(i).settings.learning_rate for i in (0, 1)] == [5e-4, 5e-4]
    with pytest.raises(ConfigError, match="training.bc_learning_rate"):
        load_config(None, ["training.bc_learning_rate=-1"])


def test_dpo_runs_end_to_end(tmp_path):
    rows = run(toy_config(tmp_path / "dpo", method="dpo"), progress=False)
    students = [r for r in rows if r["agent"] == "student"]
    assert [r["iteration"] for r in students] == [0, 1, 2]
    assert students[0]["train"]["method"] == "sft"  # iteration 0 is always BC
    if students[1].get("dataset", {}).get("rows"):
        assert students[1]["train"]["method"] == "dpo"


_CHILD = """
import json, sys
sys.path.insert(0, {repo!r})
from leap_gym.leap.run import run
run(json.loads({cfg!r}), progress=False)
"""


def test_sigkill_mid_training_then_resume(tmp_path, capfd):
    """SIGKILL once training has saved a checkpoint: the re-run keeps every finished stage and resumes the
    training stage from that checkpoint, not from step 0."""
    run_dir = tmp_path / "run"
    cfg = toy_config(run_dir, bc_max_steps=150, checkpoint_steps=5)  # long enough to be caught mid-stage
    cfg["iterations"] = 1
    code = _CHILD.format(repo=str(REPO), cfg=json.dumps(cfg))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    partial = run_dir / "iter_0" / "train.partial"
    deadline = time.monotonic() + 300
    try:
        while not list(partial.glob("trainer/checkpoint-*/trainer_state.json")):  # a checkpoint is complete
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "training never saved a checkpoint"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not (run_dir / "iter_0" / "train").exists()  # no half-written model where a finished one belongs
    demos_mtime = (run_dir / "iter_0" / "demos.jsonl").stat().st_mtime_ns
    dataset = (run_dir / "iter_0" / "dataset.jsonl").read_text()

    capfd.readouterr()
    rows = run(cfg, progress=False)
    resumed = capfd.readouterr().err
    assert "resuming training from" in resumed and "checkpoint-" in resumed, resumed[-2000:]
    step = int(resumed.split("resuming training from ")[1].split("checkpoint-")[1].split()[0])
    log = json.loads((run_dir / "iter_0" / "train" / "train_log.json").read_text())
    assert step >= 5 and log["metrics"]["global_steps"] == 150
    assert [r["key"] for r in rows][-2:] == ["iter_0", "iter_1"]
    assert (run_dir / "iter_0" / "demos.jsonl").stat().st_mtime_ns == demos_mtime  # finished work kept
    assert (run_dir / "iter_0" / "dataset.jsonl").read_text() == dataset
    assert (run_dir / "iter_0" / "train" / "model" / "model.safetensors").exists()
    assert not partial.exists()


@pytest.mark.slow
def test_the_stages_that_load_the_student_give_the_same_run_in_their_own_processes(tmp_path):
    """``student.stage_processes=always``: training, rollouts and evaluations each in a fresh process, their
    lines still reach a caller's ``log`` in order, each records its own peak memory, and the run's answers are
    those of the run in one process."""
    runs = {}
    for mode in ("never", "always"):
        cfg = toy_config(tmp_path / mode)
        cfg["iterations"] = 1
        cfg["student"]["stage_processes"] = mode
        lines: list[str] = []
        runs[mode] = (run(cfg, progress=False, log=lines.append), lines, tmp_path / mode)
    (one, _, one_dir), (own, lines, own_dir) = runs["never"], runs["always"]
    assert [(r["key"], r["success"], r["score"]) for r in own] == [(r["key"], r["success"], r["score"])
                                                                   for r in one]
    actions = [[[s.action for s in t.steps] for t in read_trajectories(d / "iter_1" / "rollout.jsonl")]
               for d in (one_dir, own_dir)]
    assert actions[0] == actions[1]
    text = "\n".join(lines)
    for line in ("iter 0 train: loss", "eval BC: success", "iter 1 rollout:", "iter 1 corrections:",
                 "iter 1 train: loss", "eval LEAP iter 1: success", "done:"):
        assert line in text, line
    order = [text.index(what) for what in ("iter 1 rollout:", "iter 1 corrections:", "iter 1 train: loss")]
    assert order == sorted(order)
    pids = {}  # leap.log names each line's process: the stages' lines come from others than the run's
    for line in (own_dir / "leap.log").read_text().splitlines():
        for what in ("] run ", "] iter 0 train: loss", "] eval BC:", "] iter 1 rollout:",
                     "] iter 1 corrections:"):
            if what in line:
                pids[what] = line.split()[2]
    assert len(pids) == 5 and len(set(pids.values())) == 4, pids
    assert pids["] run "] == pids["] iter 1 corrections:"]
    stages = json.loads((own_dir / "stages.json").read_text())
    for name in ("iter_0/train", "iter_0/eval", "iter_1/rollout", "iter_1/train", "iter_1/eval"):
        assert name in stages, name
        if sys.platform.startswith("linux"):
            assert stages[name]["peak_rss_mib"] > 100, name


def test_cli_train_and_eval(tmp_path):
    import yaml

    cfg = toy_config(tmp_path / "cli")
    cfg["iterations"] = 1
    cfg["student"]["stage_processes"] = "always"  # and the CLI's own processes, as a pretrained student's
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-m", "leap_gym.cli", "train", "--config", str(path), "--quiet",
                          "evaluation.num_test_tasks=2"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "teacher without privilege" in out.stdout and "LEAP iter 1" in out.stdout and "BC" in out.stdout
    out = subprocess.run([sys.executable, "-m", "leap_gym.cli", "eval", "--run-dir", str(tmp_path / "cli"),
                          "--quiet", "--num-tasks", "2", "--iteration", "1", "--name", "again"], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "LEAP iter 1" in out.stdout
    assert json.loads((tmp_path / "cli" / "evals" / "again" / "iter_1.json").read_text())["n"] == 2
    out = subprocess.run([sys.executable, "-m", "leap_gym.cli", "eval", "--run-dir", str(tmp_path / "cli"),
                          "--quiet", "--first-task", "2", "--num-tasks", "2", "--iteration", "1", "--name",
                          "later"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "2 tasks (2..3)" in out.stdout
    later = tmp_path / "cli" / "evals" / "later"
    assert json.loads((later / "iter_1.json").read_text())["first_task"] == 2
    episodes = [json.loads(line) for line in (later / "iter_1_trajectories.jsonl").read_text().splitlines()]
    assert sorted(e["metadata"]["task_index"] for e in episodes) == [2, 3]
    bad = subprocess.run([sys.executable, "-m", "leap_gym.cli", "train", "--config", str(path),
                          "training.x=1"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "training.x" in bad.stderr


def test_an_iteration_that_shrinks_the_equal_share_aggregate_to_a_few_rows_is_reported(tmp_path):
    """Equal shares cut every iteration's rows to the smallest one's: one rollout (at most 3 corrected steps)
    leaves at most 6 rows for 20 steps of 4, which the run reports instead of overfitting them silently."""
    cfg = toy_config(tmp_path / "run", max_steps=20)
    cfg["iterations"] = 1
    cfg["rollout"] = {"tasks_per_iteration": 1}
    run(cfg, progress=False)
    log = (tmp_path / "run" / "leap.log").read_text()
    assert "iter 1 train: warning: 20 steps go over each of the" in log
    assert "iter 0 train: warning" not in log  # behaviour cloning is not an aggregate
