"""Run-level metrics (held-out success per iteration, the teachers as references) for the experiment trackers
that ``training.report_to`` names, beside the per-step training logs the trainer itself sends there.

TensorBoard: the run's ``tensorboard/leap`` is rebuilt from the run's metrics after every stage, so a resumed
run never logs a point twice. W&B: one W&B run per process (named after the run directory, grouped by it) gets
every evaluated iteration once. A tracker that is not installed is skipped with a one-line warning.
"""

from __future__ import annotations

import importlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from leap_gym.leap.layout import RunLayout
from leap_gym.leap.report import success_interval

# torch's TensorBoard writer and wandb are optional: each is imported only when its tracker is used.

TRACKERS = ("tensorboard", "wandb")


def _names(report_to: str | list[str] | None) -> list[str]:
    if isinstance(report_to, list):
        return report_to
    return [n for n in str(report_to or "none").replace(",", " ").split() if n != "none"]


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def requested(report_to: str | list[str] | None) -> list[str]:
    """The trackers of ours that ``report_to`` names: "none", "all" (those installed, as transformers reads
    it), or one or more names separated by commas."""
    names = _names(report_to)
    if "all" in names:
        return [n for n in TRACKERS if _importable(n)]
    return [n for n in TRACKERS if n in names]


def trainer_report_to(report_to: str | list[str] | None) -> list[str]:
    """``report_to`` for the trainer: the names as a list, less TensorBoard or W&B where they cannot be
    imported (transformers would stop the run when training starts; the run warns once instead)."""
    names = _names(report_to)
    return [n for n in names if n not in TRACKERS or _importable(n)]


def scalars(rows: list[dict[str, Any]]) -> list[tuple[int, dict[str, float]]]:
    """``(iteration, {tag: value})`` for every evaluated student iteration; each teacher's success is repeated
    at every iteration so trackers draw it as a reference line."""
    refs = {f"reference/{r['key']}/success": r["success"] for r in rows
            if r.get("agent") in ("teacher", "baseline") and "success" in r}
    out = []
    for r in rows:
        if r.get("agent") != "student" or "success" not in r:
            continue
        lo, hi = success_interval(r)
        values = {"leap/success": r["success"], "leap/success_ci_low": lo, "leap/success_ci_high": hi,
                  "leap/score": r["score"], "leap/format_error_rate": r.get("format_error_rate", 0.0),
                  "leap/invalid_action_rate": r.get("invalid_action_rate", 0.0), **refs}
        if r.get("expert_agreement") is not None:
            values["leap/oracle_agreement"] = r["expert_agreement"]
        if "train" in r:
            values["leap/train_loss"] = r["train"]["train_loss"]
        out.append((int(r["iteration"]), values))
    return out


class RunTrackers:
    """The trackers of one process of a run; ``log(rows)`` after every stage."""

    def __init__(self, run_dir: str | Path, report_to: str | list[str] | None, warn: Callable[[str], None],
                 config: dict[str, Any] | None = None):
        self.layout = RunLayout(run_dir)
        self.config = config or {}
        self.trackers = []
        for name in requested(report_to):
            try:
                importlib.import_module(name)
            except ImportError as e:  # the trainer skips it too (``trainer_report_to``)
                warn(f"report_to asks for {name}, which cannot be imported ({e}); run-level metrics are not "
                     "sent there")
                continue
            self.trackers.append(name)
        self._wandb_run = None
        self._wandb_logged: set[int] = set()

    def log(self, rows: list[dict[str, Any]]) -> None:
        points = scalars(rows)
        if "tensorboard" in self.trackers:
            self._tensorboard(points)
        if "wandb" in self.trackers:
            self._wandb(points)

    def _tensorboard(self, points: list[tuple[int, dict[str, float]]]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        final, partial = self.layout.tensorboard, self.layout.tensorboard_partial
        shutil.rmtree(partial, ignore_errors=True)
        with SummaryWriter(log_dir=str(partial)) as w:
            for step, values in points:
                for tag, v in values.items():
                    w.add_scalar(tag, v, global_step=step)
        shutil.rmtree(final, ignore_errors=True)
        final.parent.mkdir(exist_ok=True)
        os.replace(partial, final)

    def _wandb(self, points: list[tuple[int, dict[str, float]]]) -> None:
        import wandb

        new = [(i, v) for i, v in points if i not in self._wandb_logged]
        if not new:
            return
        if self._wandb_run is None:
            # a run of its own (not the trainer's current one), with the LEAP iteration as its x axis
            self._wandb_run = wandb.init(project=os.environ.get("WANDB_PROJECT", "leap-gym"),
                                         name=self.layout.root.name, group=self.layout.root.name,
                                         job_type="leap", dir=str(self.layout.root), config=self.config,
                                         reinit="create_new")
            self._wandb_run.define_metric("leap/iteration")
            self._wandb_run.define_metric("*", step_metric="leap/iteration")
        for i, values in new:
            self._wandb_run.log({"leap/iteration": i, **values})
            self._wandb_logged.add(i)

    def close(self) -> None:
        if self._wandb_run is not None:
            self._wandb_run.finish()
            self._wandb_run = None
