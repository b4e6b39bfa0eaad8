"""What a LEAP run directory holds: every file's name and format, read and written here only.

Layout (every file written atomically; a stage is done when its output exists)::

    run_dir/config.yaml                  resolved config (a resumed run must match it)
    run_dir/teachers/<name>.json         evaluation of the privileged teacher and of the unprivileged one
    run_dir/baselines/<name>.json        evaluation of each prompting baseline (evaluation.baselines)
    run_dir/iter_0/demos.jsonl           teacher demonstrations on the train tasks (reasons included)
    run_dir/base/                        the student's starting weights (built locally for tiny/small/base)
    run_dir/iter_<i>/rollout.jsonl       the previous student's episodes on the train tasks (i >= 1)
    run_dir/iter_<i>/corrections.jsonl   teacher corrections of the selected episodes (i >= 1)
    run_dir/iter_<i>/dataset.jsonl       this iteration's training rows (+ dataset_stats.json)
    run_dir/iter_<i>/train/              model/ (merged weights), adapter/, train_log.json
    run_dir/iter_<i>/eval.json           held-out evaluation of the iteration's student (+ its episodes)
    run_dir/evals/<name>/iter_<i>.json   a later held-out evaluation (``leap-gym eval --name``; + episodes)
    run_dir/stages.json                  wall time and peak resident memory of every stage, written at its end
    run_dir/metrics.jsonl, learning_curve.png, loss_curves.png, report.html   rebuilt after every stage
    run_dir/leap.log                     everything the run logged; teacher_cache/, tensorboard/ when used
    run_dir/.lock                        held (``flock``) by the one process running the loop here

Every evaluation record ``<name>.json`` has its episodes beside it in ``<name>_trajectories.jsonl``. A stage's
name (in ``stages.json``) is its output's path in the run directory without the suffix (``iter_1/train``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from leap_gym.io import atomic_write_json, remove_stale_temporaries
from leap_gym.leap.config import ConfigError, LeapConfig, load_config, save_config, to_dict
from leap_gym.records import (
    Correction,
    RecordError,
    Trajectory,
    from_record,
    iter_jsonl,
    to_record,
    write_jsonl,
)

# Keys a resumed run may change: they do not alter finished stages.
RESUMABLE_CHANGES = ("iterations", "run_dir", "evaluation.every_iteration", "training.report_to",
                     "student.num_threads", "student.stage_processes", "training.checkpoint_steps")

# The teachers' evaluations: file stems in teachers/, and the ``key`` of their metric rows.
PRIVILEGED_TEACHER = "teacher_privileged"
UNPRIVILEGED_TEACHER = "teacher_no_privilege"

# The kinds of stages (``RunLayout.stage_kind``), in the order a run goes through them.
STAGE_KINDS = ("teachers", "demos", "base", "rollout", "corrections", "dataset", "train", "eval")

_ITERATION = "iter_"
_T = TypeVar("_T")


def iteration_key(i: int) -> str:
    """Iteration ``i``'s folder name, also the ``key`` of its metric rows."""
    return f"{_ITERATION}{i}"


def key_iteration(key: str) -> int | None:
    """The iteration an ``iteration_key`` names; ``None`` for any other key (a teacher, a baseline)."""
    number = key[len(_ITERATION):] if key.startswith(_ITERATION) else ""
    return int(number) if number.isdigit() else None


# -- records -------------------------------------------------------------------------------------------------
def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def read_output(path: Path, read: Callable[[Path], _T],
                warn: Callable[[str], None] | None = None) -> _T | None:
    """A finished stage's output, or ``None`` when the stage must (re)run: ``path`` is missing, or cannot be
    read back (truncated or edited by hand; ``warn`` gets one line and the stage is redone)."""
    if not path.exists():
        return None
    try:
        return read(path)
    # ValueError includes JSONDecodeError, RecordError, UnicodeDecodeError
    except (OSError, ValueError, KeyError, TypeError) as e:
        if warn is not None:
            what = str(e).splitlines()[0] if str(e) else type(e).__name__
            warn(f"warning: {path} is unreadable ({what[:200]}); redoing its stage")
        return None


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Training rows (``dataset.jsonl``) as written."""
    return [obj for _, obj in iter_jsonl(path)]


def read_train_metrics(path: Path) -> dict[str, Any]:
    """The ``metrics`` of a ``train_log.json``."""
    return read_json(path)["metrics"]


def write_corrections(path: Path, trajectories: list[Trajectory],
                      corrections: list[list[Correction]]) -> None:
    """One line per corrected episode: the trajectory and its per-step corrections."""
    write_jsonl(path, ({"trajectory": to_record(t), "corrections": [to_record(c) for c in cs]}
                       for t, cs in zip(trajectories, corrections, strict=True)))


def read_corrections(path: Path) -> tuple[list[Trajectory], list[list[Correction]]]:
    """The episodes of ``write_corrections`` and their corrections, in order."""
    trajs, corrections = [], []
    for line, obj in iter_jsonl(path):
        if not isinstance(obj, dict) or "trajectory" not in obj or "corrections" not in obj:
            raise RecordError("expected {trajectory, corrections}", path, line)
        trajs.append(from_record(obj["trajectory"], Trajectory, path, line))
        corrections.append([from_record(c, Correction, path, line) for c in obj["corrections"]])
    return trajs, corrections


def is_checkpoint(folder: Path) -> bool:
    """Whether ``folder`` holds complete weights (``save_pretrained`` writes the model's ``config.json``)."""
    return (folder / "config.json").exists()


def trajectories_of(record: Path) -> Path:
    """The episodes of an evaluation record ``<name>.json``: ``<name>_trajectories.jsonl`` beside it."""
    return record.with_name(record.stem + "_trajectories.jsonl")


def write_evaluation(record: Path, metrics: dict[str, Any], trajectories: list[Trajectory]) -> None:
    """An evaluation's episodes, then its metrics (whose existence marks the evaluation done)."""
    write_jsonl(trajectories_of(record), trajectories)
    atomic_write_json(record, metrics)


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and k not in ("kwargs", "train_kwargs", "test_kwargs"):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def check_resume(saved: LeapConfig, cfg: LeapConfig) -> None:
    """A ``ConfigError`` naming every key where ``cfg`` differs from the config a run was made with, apart
    from ``RESUMABLE_CHANGES``."""
    a, b = _flat(to_dict(saved)), _flat(to_dict(cfg))
    diff = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k) and k not in RESUMABLE_CHANGES]
    if diff:
        raise ConfigError(f"{cfg.run_dir} holds a run with a different config ({', '.join(diff)}); use a new "
                          "run_dir or the same settings to resume")


# -- one training phase's folder -----------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainOutput:
    """What one training phase (``leap_gym.leap.train.train``) writes in ``path``: first into ``partial``
    (with the trainer's checkpoints), renamed to ``path`` once complete."""

    path: Path

    @property
    def model(self) -> Path:
        """Full weights: merged LoRA or full fine-tuning (absent for a stacked adapter)."""
        return self.path / "model"

    @property
    def adapter(self) -> Path:
        return self.path / "adapter"

    @property
    def log(self) -> Path:
        """``train_log.json``: metrics, device plan and the trainer's log history; written last."""
        return self.path / "train_log.json"

    @property
    def partial(self) -> TrainOutput:
        """The same names, in the folder written while training runs."""
        return TrainOutput(self.path.with_name(self.path.name + ".partial"))

    @property
    def trainer(self) -> Path:
        """The trainer's own output folder (its checkpoints), inside ``partial``."""
        return self.path / "trainer"

    @property
    def inputs_digest(self) -> Path:
        """The digest of the training inputs its checkpoints belong to, inside ``partial``."""
        return self.path / "inputs.sha256"

    def checkpoints(self) -> list[tuple[int, Path]]:
        """``(step, folder)`` of the trainer's checkpoints (``transformers`` names them
        ``checkpoint-<step>``)."""
        return [(int(p.name.rsplit("-", 1)[1]), p) for p in self.trainer.glob("checkpoint-*")]

    @staticmethod
    def checkpoint_state(checkpoint: Path) -> Path:
        """The file ``transformers`` writes last into a checkpoint: it parses once the checkpoint is
        complete."""
        return checkpoint / "trainer_state.json"


class RunInUse(RuntimeError):
    """Another process is running the loop in the same run directory."""


# -- the run directory ---------------------------------------------------------------------------------------
class RunLayout:
    """The paths of one run directory and the records in it (see the module doc)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    # files of the whole run
    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def log(self) -> Path:
        return self.root / "leap.log"

    @property
    def lock_file(self) -> Path:
        return self.root / ".lock"

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run directory for this process, or raise ``RunInUse`` at once.

        Why: two processes resuming one run (a second ``leap-gym train``, a benchmark's worker left running)
        would redo the same stages into the same files, and each start deletes the temporaries it finds,
        which would be the other's writes in progress. ``flock`` is released by the kernel when its holder
        dies, so a killed run never leaves a stale lock; the holder's pid in the file is only for the
        message."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                raise RunInUse(f"{self.root} is in use by another leap-gym process"
                               f"{f' (pid {holder})' if holder.isdigit() else ''}: wait for it to finish or "
                               "stop it, or use another run_dir") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            yield
        finally:
            os.close(fd)  # releases the lock

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def stages(self) -> Path:
        return self.root / "stages.json"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    @property
    def learning_curve(self) -> Path:
        return self.root / "learning_curve.png"

    @property
    def loss_curves(self) -> Path:
        return self.root / "loss_curves.png"

    @property
    def teacher_cache(self) -> Path:
        """Where an endpoint teacher caches its answers, so a re-run never pays twice."""
        return self.root / "teacher_cache"

    @property
    def tensorboard(self) -> Path:
        """The run-level TensorBoard logs (``leap_gym.leap.trackers``)."""
        return self.root / "tensorboard" / "leap"

    @property
    def tensorboard_partial(self) -> Path:
        """Where those logs are rebuilt before replacing them: outside the folder TensorBoard watches."""
        return self.root / ".tensorboard_leap.partial"

    @property
    def base(self) -> Path:
        """The student's starting weights when built here (tiny/small/base)."""
        return self.root / "base"

    @property
    def base_partial(self) -> Path:
        return self.root / "base.partial"

    @property
    def teachers(self) -> Path:
        """The teachers' evaluations, one ``<key>.json`` each."""
        return self.root / "teachers"

    @property
    def baselines(self) -> Path:
        """The prompting baselines' evaluations, one ``<name>.json`` each."""
        return self.root / "baselines"

    def teacher_evaluation(self, key: str) -> Path:
        return self.teachers / f"{key}.json"

    def baseline_evaluation(self, name: str) -> Path:
        return self.baselines / f"{name}.json"

    # one iteration's files
    def iteration_dir(self, i: int) -> Path:
        return self.root / iteration_key(i)

    @property
    def demos(self) -> Path:
        return self.iteration_dir(0) / "demos.jsonl"

    def rollout(self, i: int) -> Path:
        return self.iteration_dir(i) / "rollout.jsonl"

    def corrections(self, i: int) -> Path:
        return self.iteration_dir(i) / "corrections.jsonl"

    def dataset(self, i: int) -> Path:
        return self.iteration_dir(i) / "dataset.jsonl"

    def dataset_stats(self, i: int) -> Path:
        return self.iteration_dir(i) / "dataset_stats.json"

    def train(self, i: int) -> TrainOutput:
        return TrainOutput(self.iteration_dir(i) / "train")

    def evaluation(self, i: int) -> Path:
        """Iteration ``i``'s held-out evaluation in the loop."""
        return self.iteration_dir(i) / "eval.json"

    def named_evaluation(self, name: str, i: int) -> Path:
        """Iteration ``i``'s evaluation by ``leap-gym eval --name name``."""
        return self.root / "evals" / name / f"{iteration_key(i)}.json"

    # what is there
    def iterations(self, start: int = 0) -> list[int]:
        """The iterations from ``start`` on whose folder exists, up to the first missing one."""
        out, i = [], start
        while self.iteration_dir(i).exists():
            out.append(i)
            i += 1
        return out

    def trained_iterations(self) -> list[int]:
        """The iterations whose training finished, in order."""
        logs = self.root.glob(f"{_ITERATION}*/train/train_log.json")
        found = (key_iteration(p.parent.parent.name) for p in logs)
        return sorted(i for i in found if i is not None)

    def student_weights(self, i: int, base: str | None = None) -> tuple[str, str | None]:
        """``(model, adapter)`` that iteration ``i``'s trained student acts with, and the next iteration
        starts from: its full weights (merged LoRA, full fine-tuning), else, for a stacked adapter, ``base``
        plus the adapter. ``base=None``: the base built in the run directory, else the one the adapter
        records."""
        out = self.train(i)
        if is_checkpoint(out.model):
            return str(out.model), None
        if base is None:
            base = (str(self.base) if is_checkpoint(self.base)
                    else read_json(out.adapter / "adapter_config.json")["base_model_name_or_path"])
        return base, str(out.adapter)

    def longest_answer_tokens(self, upto: int) -> int:
        """The longest training target (tokens) of iterations ``0..upto`` (0 when not recorded)."""
        longest = 0
        for i in range(upto + 1):
            stats = read_output(self.dataset_stats(i), read_json) or {}
            longest = max(longest, int(stats.get("max_answer_tokens", 0)))
        return longest

    # the config
    def load_config(self) -> LeapConfig:
        return load_config(self.config)

    def resume(self, cfg: LeapConfig) -> list[Path]:
        """Make (or reopen) the run directory for ``cfg`` and save it there; returns the temporaries that
        writers killed mid-write left, now removed. A ``ConfigError`` when the directory holds a run with
        another config, or one whose config is empty (its settings unknown)."""
        if self.config.exists():
            if self.config.read_text(encoding="utf-8").strip():
                check_resume(self.load_config(), cfg)
            elif any(p not in (self.config, self.lock_file) for p in self.root.iterdir()):
                raise ConfigError(f"{self.config} is empty, so the settings this run was made with are "
                                  f"unknown; restore it to resume, or use a new run_dir")
        self.root.mkdir(parents=True, exist_ok=True)
        stale = remove_stale_temporaries(self.root)
        save_config(cfg, self.config)
        return stale

    # stage wall times
    def stage_name(self, output: Path) -> str:
        """A stage's name: its output's path in the run directory, without the suffix."""
        return str(output.relative_to(self.root).with_suffix(""))

    @staticmethod
    def stage_kind(name: str) -> tuple[int | None, str]:
        """``(iteration, kind)`` of a stage: ``iter_1/train`` is (1, "train"), building the base counts to
        behaviour cloning (0, "base"), and the reference evaluations have no iteration (None, "teachers")."""
        head, _, tail = name.partition("/")
        i = key_iteration(head)
        if i is not None:
            return i, tail
        return (0 if head == "base" else None), head

    def record_stage(self, name: str, started: float, wall_s: float,
                     peak_rss_mib: float | None = None) -> None:
        """Add (or replace, when a killed stage was redone) a finished stage's time, and its peak resident
        memory when measured, in ``stages.json``.

        Written after the stage's output, so a resumed run keeps the times of the stages it skips."""
        stages = self.load_stages()
        stages[name] = {"started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
                        "wall_s": round(wall_s, 2)}
        if peak_rss_mib is not None:
            stages[name]["peak_rss_mib"] = peak_rss_mib
        atomic_write_json(self.stages, stages)

    def load_stages(self) -> dict[str, dict[str, Any]]:
        return json.loads(self.stages.read_text()) if self.stages.exists() else {}

    # metrics
    def collect_metrics(self) -> list[dict[str, Any]]:
        """Evaluation rows (teachers, baselines, every iteration) read back from the run's files."""
        rows: list[dict[str, Any]] = []
        for folder, agent in ((self.teachers, "teacher"), (self.baselines, "baseline")):
            for p in sorted(folder.glob("*.json")):
                if (metrics := read_output(p, read_json)) is not None:  # unreadable: its stage is redone
                    rows.append({"agent": agent, "key": p.stem, **metrics})
        for i in self.iterations():
            row: dict[str, Any] = {"agent": "student", "key": iteration_key(i), "iteration": i}
            row.update(read_output(self.evaluation(i), read_json) or {})
            if (train := read_output(self.train(i).log, read_train_metrics)) is not None:
                row["train"] = train
            if (stats := read_output(self.dataset_stats(i), read_json)) is not None:
                row["dataset"] = stats
            if len(row) > 3:
                rows.append(row)
        return rows

    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        write_jsonl(self.metrics, rows)
