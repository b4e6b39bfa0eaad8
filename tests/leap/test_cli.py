"""``leap-gym train/demo/eval`` as a user meets them, through the real command in a subprocess: every config
field in --help, --print-config, overrides without a config file, the example configs, one-line errors with
exit status 2, and a quiet run whose console output fits a small log file."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest
import yaml

from leap_gym.leap.config import LeapConfig, load_config, save_config, to_dict
from leap_gym.leap.config_help import config_fields, field_docs, options_to_overrides
from leap_gym.leap.layout import RunLayout

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples" / "configs").glob("*.yaml"))
TOY = "tests.toy_env:leap-test/Toy-v0"
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "leap_gym.cli", *args], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0]


def toy_config(run_dir: Path) -> dict:
    return {"run_dir": str(run_dir), "iterations": 1,
            "env": {"env_id": TOY, "train_kwargs": {}, "test_kwargs": {}, "num_train_tasks": 6,
                    "max_steps": 3},
            "student": {"model": "tiny", "batch_size": 6, "max_new_tokens": 16, "num_threads": 1,
                        "vocab_size": 1024, "tokenizer_episodes": 6},
            "teacher": {"kind": "tests.leap.toy_teacher:ToyExpertTeacher"},
            "training": {"bc_max_steps": 3, "max_steps": 2, "batch_size": 4, "max_length": 256,
                         "warmup_steps": 0},
            "evaluation": {"num_test_tasks": 3}}


# -- help and config -----------------------------------------------------------------------------------------
def test_every_config_field_has_a_doc():
    """Help is generated from the comments next to the fields: a field added without one fails here."""
    for _, _, rows in config_fields():
        for key, _, _, doc in rows:
            assert doc, f"{key} has no comment in leap_gym/leap/config.py"


def test_field_docs_read_comments_and_metadata():
    @dataclasses.dataclass
    class Example:
        # the first line
        # and the second.
        a: int = 1
        b: str = "#not a comment"  # trailing doc
        c: int = dataclasses.field(default=0, metadata={"help": "from metadata"})

        d: float = 0.0

    assert field_docs(Example) == {"a": "the first line and the second.", "b": "trailing doc",
                                   "c": "from metadata", "d": ""}


def test_train_help_lists_every_field_with_default_and_doc():
    proc = cli("train", "--help")
    assert proc.returncode == 0
    for _, _, rows in config_fields():
        for key, tp, default, _ in rows:
            assert f"--{key} {tp}  (default: {default})" in proc.stdout
    assert field_docs(LeapConfig)["iterations"] in proc.stdout
    assert "see leap_gym/leap/config.py" not in proc.stdout


def test_demo_help_shows_the_demos_values():
    proc = cli("demo", "--help")
    assert proc.returncode == 0
    assert "--training.max_length INT  (default: 2048)" in proc.stdout  # the demo's, not the dataclass's 384


def test_options_become_overrides():
    assert options_to_overrides(["--training.max_steps", "5", "--student.constrained", "a.b=1", "--seed=3",
                                 "--student.snap_to_admissible", "false", "--verbose", "--config", "x"]) == [
        "training.max_steps=5", "student.constrained=true", "a.b=1", "seed=3",
        "student.snap_to_admissible=false", "--verbose", "--config", "x"]


def test_train_without_config_prints_the_resolved_config(tmp_path):
    proc = cli("train", "--print-config", "iterations=3", "--training.max_steps", "7", "--env.kwargs",
               "{tasks: generated}", "--student.snap_to_admissible", f"run_dir={tmp_path / 'r'}")
    assert proc.returncode == 0, proc.stderr
    printed = yaml.safe_load(proc.stdout)
    expected = load_config(None, ["iterations=3", "training.max_steps=7", "env.kwargs={tasks: generated}",
                                  "student.snap_to_admissible=true", f"run_dir={tmp_path / 'r'}"])
    assert printed == to_dict(expected)
    assert not (tmp_path / "r").exists()  # printing runs nothing
    path = tmp_path / "printed.yaml"
    path.write_text(proc.stdout)
    again = cli("train", "--config", str(path), "--print-config")
    assert again.returncode == 0 and again.stdout == proc.stdout  # the printed config is a valid --config


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_config_loads_and_its_env_takes_its_kwargs(path):
    cfg = load_config(path)
    raw = yaml.safe_load(path.read_text())
    assert to_dict(cfg)["env"]["env_id"] == raw["env"]["env_id"]
    entry = gym.spec(cfg.env.env_id).entry_point
    module, name = entry.split(":")
    params = inspect.signature(getattr(importlib.import_module(module), name)).parameters
    for split in (cfg.env.train_kwargs, cfg.env.test_kwargs):
        unknown = set({**cfg.env.kwargs, **split}) - set(params)
        assert not unknown, f"{path.name}: {cfg.env.env_id} takes no {unknown}"
    proc = cli("train", "--config", str(path), "--print-config")
    assert proc.returncode == 0 and yaml.safe_load(proc.stdout) == to_dict(cfg)


def test_examples_cover_every_env_and_the_demo():
    assert {load_config(p).env.env_id for p in EXAMPLES} == {"leap/ALFWorld-v0", "leap/WebShop-v0",
                                                               "leap/InterCodeBash-v0"}
    from leap_gym.leap.presets import DEMO_CONFIG

    example = load_config(REPO / "examples" / "configs" / "alfworld_demo.yaml")
    assert example == load_config(None, base=DEMO_CONFIG)


# -- one-line errors -----------------------------------------------------------------------------------------
def test_misspelt_key_as_option_or_override():
    one_line_error(cli("train", "--training.max_stepz", "3"), "unknown config key 'training.max_stepz'")
    one_line_error(cli("train", "training.max_steps=many"), "training.max_steps", "expected an integer")
    one_line_error(cli("demo", "--teacher.privilege", "2"), "teacher.privilege")


def test_changed_config_on_resume_is_one_line(tmp_path):
    run_dir = tmp_path / "run"
    save_config(load_config(None, base=toy_config(run_dir)), run_dir / "config.yaml")
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(toy_config(run_dir)))
    proc = cli("train", "--config", str(path), "training.max_steps=9", "--quiet")
    one_line_error(proc, "training.max_steps", "different config")
    assert sorted(p.name for p in run_dir.iterdir()) == [".lock", "config.yaml"]  # nothing else written


def test_a_run_dir_in_use_is_refused_in_one_line_and_freed_when_its_holder_dies(tmp_path):
    """A second process on a run directory (a second `leap-gym train`, a benchmark worker left running)
    is refused before it writes or deletes anything; a holder killed with SIGKILL leaves no stale lock."""
    run_dir = tmp_path / "run"
    save_config(load_config(None, base=toy_config(run_dir)), run_dir / "config.yaml")
    (run_dir / ".stages.json.0123456789abcdef.tmp").write_text("a live writer's temporary")
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(toy_config(run_dir)))
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom leap_gym.leap.layout import RunLayout\n"
         f"with RunLayout({str(run_dir)!r}).lock():\n    print('held', flush=True)\n    time.sleep(120)"],
        cwd=REPO, env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        one_line_error(cli("train", "--config", str(path), "--quiet"),
                       str(run_dir), f"in use by another leap-gym process (pid {holder.pid})")
        assert (run_dir / ".stages.json.0123456789abcdef.tmp").exists()  # the holder's temporary: left alone
    finally:
        holder.kill()
        holder.wait()
    with RunLayout(run_dir).lock():  # the kernel released the dead holder's lock
        assert (run_dir / ".lock").read_text() == str(os.getpid())


def test_eval_with_kwargs_the_env_does_not_take(tmp_path):
    run_dir = tmp_path / "run"
    save_config(load_config(None, base=toy_config(run_dir)), run_dir / "config.yaml")
    proc = cli("eval", "--run-dir", str(run_dir), "env.test_kwargs={colour: red}")
    one_line_error(proc, "env.test_kwargs", "colour")


def test_eval_task_range_errors_are_one_line(tmp_path):
    run_dir = tmp_path / "run"
    save_config(load_config(None, base=toy_config(run_dir)), run_dir / "config.yaml")
    one_line_error(cli("eval", "--run-dir", str(run_dir), "--first-task", "-1"), "first task -1")
    one_line_error(cli("eval", "--run-dir", str(run_dir), "--num-tasks", "0"), "no tasks to evaluate")


# -- a quiet run ---------------------------------------------------------------------------------------------
def test_quiet_run_to_a_pipe_stays_small_and_readable(tmp_path):
    """The real train command on the toy env with the tiny student, stdout and stderr to pipes (not a
    terminal): the results table on stdout, the library's own lines on stderr, no trainer dicts, no
    carriage-return bars, no third-party chatter; all of that in the run's leap.log."""
    run_dir = tmp_path / "run"
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(toy_config(run_dir)))
    proc = cli("train", "--config", str(path), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out, err = proc.stdout, proc.stderr
    assert len(out.encode()) + len(err.encode()) < 20_000
    assert "LEAP iter 1" in out and "teacher without privilege" in out
    assert "{'" not in out and "'loss'" not in out and "train_runtime" not in out + err
    assert "\r" not in out and "\r" not in err
    for chatter in ("Failed to load CPU", "FutureWarning", "Loading weights", "Writing model shards",
                    "Tokenizing", "QLoRA"):
        assert chatter not in err, chatter
    assert "[leap" in err and "iter 1 train: loss" in err
    assert "student.max_new_tokens raised from 16 to" in err  # the config value changed, said so
    log = (run_dir / "leap.log").read_text()
    assert "train_runtime" in log and "iter 1 train: loss" in log and "QLoRA" in log
    assert "\r" not in log


@pytest.mark.parametrize("stage_processes", ["never", "always"])
def test_ctrl_c_during_training_is_one_line_and_exit_130(tmp_path, stage_processes):
    """SIGINT to the run's process alone (``kill -INT``): with the training in a process of its own, that
    process is ended too, not waited for."""
    import signal
    import time

    cfg = toy_config(tmp_path / "run")
    cfg["training"]["bc_max_steps"] = 1000  # long enough to be interrupted mid-stage
    cfg["student"]["stage_processes"] = stage_processes
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.Popen([sys.executable, "-m", "leap_gym.cli", "train", "--config", str(path)], cwd=REPO,
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # as from a shell
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    trainer = tmp_path / "run" / "iter_0" / "train.partial" / "trainer"
    deadline = time.monotonic() + 300
    try:
        while not trainer.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()[-3000:]
            time.sleep(0.1)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("interrupted: re-run the same command to resume")
    log = (tmp_path / "run" / "leap.log").read_text().splitlines()
    trainer_pid = int(next(line for line in log if "iter 0 train: sft" in line).split()[2])
    assert (trainer_pid == proc.pid) == (stage_processes == "never")
    deadline = time.monotonic() + 10  # the trainer's process ends
    while Path(f"/proc/{trainer_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{trainer_pid}").exists()
