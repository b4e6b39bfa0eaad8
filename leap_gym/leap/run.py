"""``run(config)``: the whole LEAP loop as resumable stages in a run directory (``leap_gym.leap.layout`` says
what it holds), and ``evaluate_students``: a finished run's students on other held-out tasks.

Re-running with the same config skips every finished stage; a kill mid-stage loses only that stage's work
(training resumes from its last checkpoint). A stage output that cannot be read back (a truncated file) is
redone with a one-line warning; temporaries left by a writer killed mid-write are removed at start. A
correction stage where the teacher mostly failed raises ``StageError`` and is not marked done, so a re-run
retries it. The stages that load a pretrained student (training, rollouts, evaluations) each run in a fresh
process (``student.stage_processes``), so each starts from an empty heap and one stage's fragments do not
raise the next one's peak.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from leap_gym.agents.base import BatchAgent
from leap_gym.agents.prompting import fit_step_prompt, format_target
from leap_gym.agents.student import HFStudent
from leap_gym.agents.teachers import TeacherAgent, load_symbol, make_expert
from leap_gym.io import atomic_write_json
from leap_gym.leap.config import ConfigError, LeapConfig, load_config, to_dict
from leap_gym.leap.correct import TeacherUnavailable, correct, failure_reason, is_valid
from leap_gym.leap.dataset import DatasetStats, aggregate, build_dataset
from leap_gym.leap.evaluate import evaluate
from leap_gym.leap.layout import (
    PRIVILEGED_TEACHER,
    UNPRIVILEGED_TEACHER,
    RunLayout,
    is_checkpoint,
    iteration_key,
    read_corrections,
    read_json,
    read_output,
    read_rows,
    read_train_metrics,
    write_corrections,
    write_evaluation,
)
from leap_gym.leap.logs import run_logging
from leap_gym.leap.report import iteration_name, write_learning_curve, write_loss_curves, write_report
from leap_gym.leap.rollout import make_env, rollout
from leap_gym.leap.trackers import RunTrackers
from leap_gym.leap.train import native_bf16, set_threads, train
from leap_gym.memory import PeakRSS
from leap_gym.models import MODEL_SIZES, build_model, build_tokenizer, env_text_corpus
from leap_gym.models.pretrained import resolve_model
from leap_gym.process import ProcessDied, in_fresh_process
from leap_gym.records import Correction, Trajectory, read_trajectories, write_jsonl

# An iteration's training that goes over its rows more often than this is reported: on WebShop (the learning
# benchmark's seed 2) one corrected row cut the equal-share aggregate to 2 rows, each then seen 60 times.
MAX_PASSES_WITHOUT_WARNING = 10


class StageError(RuntimeError):
    """A stage that could not produce trustworthy output; it is not marked done, so a re-run retries it."""


def make_teacher(cfg: LeapConfig, privilege: float, kind: str | None = None):
    """The configured teacher (or ``kind``) at ``privilege``; an endpoint given as ``kwargs.backend`` caches
    its answers in ``run_dir/teacher_cache`` unless it names its own ``cache_dir``, so a re-run never pays
    twice."""
    kind = kind or cfg.teacher.kind
    kwargs = dict(cfg.teacher.kwargs) if kind == cfg.teacher.kind else {}
    if kind == "expert":
        return make_expert(cfg.env.env_id, privilege, **kwargs)
    if isinstance(kwargs.get("backend"), dict):
        kwargs["backend"] = {"cache_dir": str(RunLayout(cfg.run_dir).teacher_cache), **kwargs["backend"]}
    return load_symbol(kind)(privilege=privilege, **kwargs)


def teacher_agent_factory(cfg: LeapConfig, privilege: float, kind: str | None = None) -> Callable[[], Any]:
    return lambda: TeacherAgent(make_teacher(cfg, privilege, kind), cfg.env.env_id)


def make_student(cfg: LeapConfig, model_dir: str, adapter_dir: str | None = None, answer_tokens: int = 0):
    """The student for rollouts and evaluation. ``answer_tokens`` (the longest training target) raises
    ``max_new_tokens`` when needed: a cap below it cuts the action off the end of long answers."""
    s = cfg.student
    new_tokens = max(s.max_new_tokens, answer_tokens + 2)  # + end-of-turn token and one spare
    episode = prompt_format(cfg) == "episode"
    return HFStudent(model_dir, adapter=adapter_dir, env=cfg.env.env_id, k=s.history_k,
                     max_new_tokens=new_tokens, do_sample=s.temperature > 0,
                     temperature=s.temperature or 1.0, seed=cfg.seed, constrained=s.constrained,
                     # episode: the chat keeps every step while it fits training.max_length, as training rows
                     # do
                     max_prompt_tokens=cfg.training.max_length if episode
                     else max(16, 2 * cfg.training.max_length - new_tokens),
                     # step: history only while prompt + answer fit training.max_length, as training rows
                     history_tokens=max(16, cfg.training.max_length - new_tokens),
                     batch_size=s.batch_size, prompt_format="episode" if episode else "step",
                     answer_room=s.max_new_tokens,
                     dtype=acting_dtype(cfg))


def is_built(cfg: LeapConfig) -> bool:
    """Whether the student is one of the tiny models built here from random weights."""
    return cfg.student.model in MODEL_SIZES


def own_processes(cfg: LeapConfig) -> bool:
    """Whether the stages that load the student run each in a fresh process (``student.stage_processes``).
    ``auto`` keeps them in this process in a notebook: a child's output reaches the kernel's terminal, not the
    notebook's cells."""
    mode = cfg.student.stage_processes
    return mode == "always" or (mode == "auto" and not is_built(cfg) and "ipykernel" not in sys.modules)


def set_student_threads(cfg: LeapConfig) -> None:
    """torch threads for the stages that run the student (``student.num_threads``; the tiny built models'
    automatic count is 1)."""
    set_threads(cfg.student.num_threads, tiny=cfg.student.model == "tiny")


def prompt_format(cfg: LeapConfig) -> str:
    """``student.prompt_format`` with ``auto`` resolved: the step format for the tiny built models (designed
    for it: a candidate list to copy from), the episode format for pretrained chat models."""
    fmt = cfg.student.prompt_format
    return fmt if fmt != "auto" else ("step" if is_built(cfg) else "episode")


def acting_dtype(cfg: LeapConfig) -> str | None:
    """``student.dtype`` with ``auto`` resolved (``None``: the device's default, fp32 on CPU)."""
    if cfg.student.dtype != "auto":
        return cfg.student.dtype
    return "bfloat16" if not is_built(cfg) and native_bf16() else None


def max_new_tokens_notice(cfg: LeapConfig, answer_tokens: int) -> str | None:
    """The warning to give when ``make_student`` raises ``student.max_new_tokens`` for ``answer_tokens``."""
    new_tokens = answer_tokens + 2
    if new_tokens <= cfg.student.max_new_tokens:
        return None
    return (f"warning: student.max_new_tokens raised from {cfg.student.max_new_tokens} to {new_tokens} for "
            f"acting: training targets run up to {answer_tokens} tokens (+ end of turn and one spare) and a "
            f"lower cap would cut actions off; set student.max_new_tokens={new_tokens} or more to silence "
            "this")


def rollout_settings(cfg: LeapConfig, split: str, privileged: bool) -> dict[str, Any]:
    """The ``rollout``/``evaluate`` keywords of a run's ``"train"`` or ``"test"`` episodes: the split's env
    kwargs, the step limit, the batch size; snapping to an admissible action for students only."""
    return {"env_kwargs": cfg.env.kwargs_for(split), "max_steps": cfg.env.max_steps,
            "batch_size": cfg.student.batch_size, "privileged": privileged,
            "snap": cfg.student.snap_to_admissible and not privileged}


def evaluate_agent(cfg: LeapConfig, agent: Any, tasks: Sequence[int], *, privileged: bool, progress: bool,
                   desc: str) -> tuple[dict[str, Any], list[Trajectory]]:
    """``agent`` on the held-out tasks ``tasks`` of a run's test split: ``(metrics, episodes)``."""
    return evaluate(cfg.env.env_id, agent, tasks, seed=cfg.seed, progress=progress, desc=desc,
                    **rollout_settings(cfg, "test", privileged))


def evaluate_iteration(cfg: LeapConfig, layout: RunLayout, i: int, weights: tuple[str, str | None],
                       tasks: Sequence[int], *, progress: bool) -> tuple[dict[str, Any], list[Trajectory]]:
    """Iteration ``i``'s student, acting with ``weights`` (model, adapter), on held-out tasks: the loop's
    evaluation of every iteration and ``leap-gym eval``'s. Its answers may run as long as the longest training
    target so far."""
    student = make_student(cfg, *weights, layout.longest_answer_tokens(i))
    return evaluate_agent(cfg, student, tasks, privileged=False, progress=progress,
                          desc=f"eval {iteration_name(i)}")


class Run:
    """The stages of one run; each method is idempotent (skips when its output exists)."""

    def __init__(self, cfg: LeapConfig, progress: bool = True, log: Callable[[str], None] | None = None,
                 verbose: bool = False):
        self.cfg = cfg
        self.layout = RunLayout(cfg.run_dir)
        self.progress = progress
        self.verbose = verbose
        self._log = log
        self.t0 = time.monotonic()
        self._trackers = None
        self._rss: PeakRSS | None = None  # set by __call__; records nothing once the run is over

    def log(self, msg: str, level: int = logging.INFO) -> None:
        """A line of the run's own: to ``log`` when given, else to the console and ``run_dir/leap.log``."""
        line = f"[leap {time.monotonic() - self.t0:6.0f}s] {msg}"
        if self._log is not None:
            self._log(line)
        logging.getLogger(__name__).log(level, line)

    def stage_done(self, output: Path, started: float) -> None:
        """Record the wall time and peak resident memory of the stage that wrote ``output`` (``started``: its
        ``time.time()``) for the report; a stage that a resume skips keeps what was recorded when it ran."""
        peak = self._rss.take() if self._rss is not None else None
        self.layout.record_stage(self.layout.stage_name(output), started, time.time() - started, peak)

    # -- tasks -----------------------------------------------------------------------------------------------
    def train_tasks(self) -> list[int]:
        return list(range(self.cfg.env.num_train_tasks))

    def rollout_tasks(self, i: int) -> list[int]:
        """Iteration ``i``'s slice of the train tasks (``rollout.tasks_per_iteration``; all when 0)."""
        tasks, n = self.train_tasks(), self.cfg.rollout.tasks_per_iteration
        if n <= 0 or n >= len(tasks):
            return tasks
        start = (i - 1) * n
        return [tasks[(start + j) % len(tasks)] for j in range(n)]

    def test_tasks(self) -> list[int]:
        return list(range(self.cfg.evaluation.num_test_tasks))

    # -- setup -----------------------------------------------------------------------------------------------
    def setup(self) -> None:
        stale = self.layout.resume(self.cfg)  # refuses a changed config before anything is written
        if stale:
            self.log(f"removed {len(stale)} temporary file(s) left by a run killed mid-write")
        set_student_threads(self.cfg)

    def _rollout(self, agent: Any, tasks: list[int], privileged: bool, desc: str,
                 seed: int) -> list[Trajectory]:
        """``agent``'s episodes on the train tasks ``tasks``."""
        return rollout(self.cfg.env.env_id, agent, tasks, seed=seed, progress=self.progress, desc=desc,
                       **rollout_settings(self.cfg, "train", privileged))

    def _evaluate(self, out: Path, agent: Any, privileged: bool, name: str) -> dict[str, Any]:
        """A reference agent (a teacher, a baseline) on the test tasks, recorded in ``out``."""
        done = read_output(out, read_json, self.log)
        if done is not None:
            return done
        started = time.time()
        metrics, trajs = evaluate_agent(self.cfg, agent, self.test_tasks(), privileged=privileged,
                                        progress=self.progress, desc=f"eval {name}")
        return self._record_evaluation(out, name, metrics, trajs, started)

    def _record_evaluation(self, out: Path, name: str, metrics: dict[str, Any], trajs: list[Trajectory],
                           started: float) -> dict[str, Any]:
        """An evaluation's record in ``out``, its episodes beside it (the report shows some); ``started``:
        when the stage began (before loading the agent), for its recorded wall time."""
        metrics = {"name": name, **metrics, "wall_s": round(time.time() - started, 2)}
        write_evaluation(out, metrics, trajs)
        self.stage_done(out, started)
        self.log(f"eval {name}: success {metrics['success']:.3f} score {metrics['score']:.3f}")
        return metrics

    # -- stages ----------------------------------------------------------------------------------------------
    def evaluate_teachers(self) -> None:
        """The reference evaluations: the privileged teacher, the teacher without privilege, the baselines."""
        if not self.cfg.evaluation.teachers:
            return
        p = self.cfg.teacher.privilege
        self._evaluate(self.layout.teacher_evaluation(PRIVILEGED_TEACHER), teacher_agent_factory(self.cfg, p),
                       True, f"teacher (privilege {p:g})")
        self._evaluate(self.layout.teacher_evaluation(UNPRIVILEGED_TEACHER),
                       teacher_agent_factory(self.cfg, 0.0), True, "teacher without privilege")
        for spec in self.cfg.evaluation.baselines:
            name = spec.rsplit(":", 1)[-1]
            out = self.layout.baseline_evaluation(name)
            if read_output(out, read_json, self.log) is None:
                factory = load_symbol(spec)
                agent = factory(self.cfg)
                if not isinstance(agent, BatchAgent):  # a single-episode agent: one per env slot
                    agent = functools.partial(factory, self.cfg)
                self._evaluate(out, agent, False, name)

    def demos(self) -> list[Trajectory]:
        out = self.layout.demos
        done = read_output(out, read_trajectories, self.log)
        if done is None:
            started = time.time()
            c = self.cfg
            trajs = []
            agent = teacher_agent_factory(c, c.teacher.demo_privilege, c.teacher.demo_kind)
            for r in range(c.rollout.demos_per_task):
                trajs += self._rollout(agent, self.train_tasks(), True, "demos", seed=c.seed + r)
            write_jsonl(out, trajs)
            self.stage_done(out, started)
            won = sum(t.won for t in trajs)
            self.log(f"demos: {len(trajs)} episodes, {won} won, {sum(len(t) for t in trajs)} steps")
            done = trajs
        return done

    def base(self, demos: list[Trajectory]) -> str:
        """The student's starting weights; a base built here carries the random-init marker ``train``
        reads."""
        c = self.cfg.student
        if not is_built(self.cfg):
            return resolve_model(c.model)
        out = self.layout.base
        if not is_checkpoint(out):
            started = time.time()
            texts = []
            for traj in demos[: c.tokenizer_episodes]:
                for t, step in enumerate(traj.steps):
                    texts += [m["content"] for m in fit_step_prompt(traj, t, k=c.history_k).messages]
                    texts.append(format_target(step.reason, step.action))
            tok = build_tokenizer(env_text_corpus(texts, seed=self.cfg.seed), vocab_size=c.vocab_size)
            model = build_model(tok, size=c.model, seed=self.cfg.seed)
            partial = self.layout.base_partial
            shutil.rmtree(partial, ignore_errors=True)
            model.save_pretrained(partial)
            tok.save_pretrained(partial)
            os.replace(partial, out)
            self.stage_done(out, started)
            n = sum(p.numel() for p in model.parameters())
            self.log(f"base: built {c.model} model ({n / 1e6:.2f} M params, vocab {len(tok)})")
        return str(out)

    def dataset(self, i: int, trajs: list[Trajectory], corrections: list[list[Correction]] | None,
                model_dir: str) -> list[dict[str, Any]]:
        out = self.layout.dataset(i)
        done = read_output(out, read_rows, self.log)
        if done is None:
            started = time.time()
            from transformers import AutoTokenizer  # heavy: loaded when a dataset stage runs

            c = self.cfg
            stats = DatasetStats()
            rows = build_dataset(trajs, corrections, method=c.training.for_iteration(i).method,
                                 history_k=c.student.history_k,
                                 max_length=c.training.max_length,
                                 tokenizer=AutoTokenizer.from_pretrained(model_dir),
                                 only_corrected=c.rollout.only_corrected_steps, iteration=i, stats=stats,
                                 prompt_format=prompt_format(c), answer_room=c.student.max_new_tokens,
                                 pack=c.training.pack_corrections,
                                 max_corrected=c.rollout.max_corrected_steps)
            atomic_write_json(self.layout.dataset_stats(i), vars(stats))
            write_jsonl(out, rows)  # last: its existence marks the stage done
            self.stage_done(out, started)
            self.log(f"iter {i} dataset: {stats.rows} rows ({stats.dropped_too_long} dropped as too long, "
                     f"{stats.over_length} kept over max_length, "
                     f"{stats.history_cut} with history cut, {stats.observation_clipped} observations "
                     f"clipped, {stats.skipped_uncorrected} uncorrected skipped, "
                     f"{stats.skipped_after_limit} after max_corrected_steps skipped, "
                     f"{stats.skipped_invalid} the teacher failed to correct skipped)")
            notice = max_new_tokens_notice(c, stats.max_answer_tokens)
            if notice:
                self.log(f"iter {i} dataset: {notice}", logging.WARNING)
            done = read_rows(out)
        return done

    def train(self, i: int, rows_per_iter: list[list[dict[str, Any]]], model_dir: str,
              adapter_dir: str | None) -> tuple[str, str | None]:
        """Iteration ``i``'s training, starting from ``model_dir`` (+ ``adapter_dir``); returns the weights
        the trained student acts with."""
        out = self.layout.train(i)
        c = self.cfg
        if read_output(out.log, read_train_metrics, self.log) is None:
            started = time.time()
            plan = c.training.for_iteration(i)
            if plan.method == "dpo":
                rows = aggregate([rows_per_iter[-1]], "last", seed=c.seed + i)
            else:
                rows = aggregate(rows_per_iter, c.training.aggregate, seed=c.seed + i)
            self.log(f"iter {i} train: {plan.method} on {len(rows)} rows, {plan.max_steps} steps")
            passes = plan.max_steps * plan.settings.batch_size * plan.settings.grad_accum / max(len(rows), 1)
            if i > 0 and rows and passes > MAX_PASSES_WITHOUT_WARNING:
                # equal shares cut every iteration's rows to the smallest one's: an iteration whose rollouts
                # gave one or two rows (few failures) shrinks the whole training set to a handful
                self.log(f"iter {i} train: warning: {plan.max_steps} steps go over each of the {len(rows)} "
                         f"rows ~{passes:.0f} times (training.aggregate={c.training.aggregate}: "
                         f"{', '.join(str(len(r)) for r in rows_per_iter)} rows per iteration); expect it to "
                         "overfit them", logging.WARNING)
            res = train(rows, model_dir, out.path, plan.settings, method=plan.method, adapter_dir=adapter_dir,
                        max_steps=plan.max_steps, progress=self.progress)
            self.stage_done(out.path, started)
            self.log(f"iter {i} train: loss {res.metrics['train_loss']:.3f} in "
                     f"{res.metrics['train_runtime_s']:.0f}s")
        return self.layout.student_weights(i, base=model_dir)

    def student_rollout(self, i: int, model_dir: str, adapter_dir: str | None) -> list[Trajectory]:
        out = self.layout.rollout(i)
        done = read_output(out, read_trajectories, self.log)
        if done is None:
            started = time.time()
            student = make_student(self.cfg, model_dir, adapter_dir, self.layout.longest_answer_tokens(i - 1))
            done = self._rollout(student, self.rollout_tasks(i), False, f"rollout iter {i}",
                                 seed=self.cfg.seed)
            write_jsonl(out, done)
            self.stage_done(out, started)
            self.log(f"iter {i} rollout: {sum(t.won for t in done)}/{len(done)} won")
        return done

    def corrections(self, i: int, rollouts: list[Trajectory]
                    ) -> tuple[list[Trajectory], list[list[Correction]]]:
        out = self.layout.corrections(i)
        done = read_output(out, read_corrections, self.log)
        if done is None:
            started = time.time()
            c = self.cfg
            retry = "not marked done; fix the teacher and re-run to retry"
            try:
                kept, corrections = correct(rollouts, make_teacher(c, c.teacher.privilege),
                                            select=c.rollout.select,
                                            score_threshold=c.rollout.score_threshold, progress=self.progress,
                                            max_consecutive_failures=c.teacher.max_consecutive_failures)
            except TeacherUnavailable as e:
                raise StageError(f"iter {i} corrections stopped: {e}; {retry}") from None
            # steps of the episodes dropped because the teacher raised count as invalid too
            dropped = [t for t in rollouts if "correction_error" in t.metadata]
            total = sum(map(len, corrections)) + sum(len(t) for t in dropped)
            invalid = sum(not is_valid(x) for cs in corrections for x in cs) + sum(len(t) for t in dropped)
            if total and invalid > c.teacher.max_invalid_fraction * total:
                reasons = [r for t, cs in zip(kept, corrections, strict=True) if (r := failure_reason(t, cs))]
                reasons += [t.metadata["correction_error"] for t in dropped]
                example = next((x.metadata.get("error") for cs in corrections for x in cs if not is_valid(x)),
                               None)
                why = (reasons or [example or "invalid corrections"])[0][:300]
                raise StageError(f"iter {i} corrections: the teacher failed on {invalid}/{total} steps (more "
                                 f"than teacher.max_invalid_fraction={c.teacher.max_invalid_fraction:g}; "
                                 f"e.g. {why}); {retry}")
            write_corrections(out, kept, corrections)
            self.stage_done(out, started)
            changed = sum(x.was_corrected for cs in corrections for x in cs)
            self.log(f"iter {i} corrections: {len(kept)} episodes, {changed}/{sum(map(len, corrections))} "
                     f"steps changed" + (f", {invalid} invalid (not trained on)" if invalid else ""))
            done = kept, corrections
        return done

    def evaluate_student(self, i: int, model_dir: str, adapter_dir: str | None) -> dict[str, Any]:
        out = self.layout.evaluation(i)
        done = read_output(out, read_json, self.log)
        if done is not None:
            return done
        started = time.time()
        metrics, trajs = evaluate_iteration(self.cfg, self.layout, i, (model_dir, adapter_dir),
                                            self.test_tasks(), progress=self.progress)
        return self._record_evaluation(out, iteration_name(i), metrics, trajs, started)

    def student_stage(self, stage: str, i: int, *args: Any) -> Any:
        """``getattr(self, stage)(i, *args)``: iteration ``i``'s ``train``, ``student_rollout`` or
        ``evaluate_student``, the stages that load the student. When ``own_processes`` says so and the stage
        is not done, its work runs first in a fresh process (``_run_stage``), which writes the stage's outputs
        and records its wall time and peak memory; this call then reads them back."""
        outputs = {"train": self.layout.train(i).log, "student_rollout": self.layout.rollout(i),
                   "evaluate_student": self.layout.evaluation(i)}
        if own_processes(self.cfg) and not outputs[stage].exists():
            try:
                lines = in_fresh_process(_run_stage, self.cfg, stage, i, args, time.monotonic() - self.t0,
                                         self.progress, self.verbose, self._log is not None)
            except ProcessDied as e:
                raise StageError(f"{self.layout.stage_name(outputs[stage])}: {e}; re-run to resume") from None
            for line in lines:  # the lines of a caller that collects them (``log``), in order
                self._log(line)
        return getattr(self, stage)(i, *args)

    # -- outputs ---------------------------------------------------------------------------------------------
    def refresh_outputs(self) -> list[dict[str, Any]]:
        rows = self.layout.collect_metrics()
        self.layout.write_metrics(rows)
        try:
            write_learning_curve(rows, self.layout.learning_curve)
            write_loss_curves(self.layout)
        except ImportError:  # matplotlib is optional (the train extra)
            pass
        write_report(self.layout, rows)
        if self._trackers is None:
            self._trackers = RunTrackers(self.layout.root, self.cfg.training.report_to, self.log,
                                         to_dict(self.cfg))
        self._trackers.log(rows)
        return rows

    def __call__(self) -> list[dict[str, Any]]:
        with self.layout.lock():  # one process per run directory (RunInUse otherwise)
            self.setup()  # refuses a changed config before anything is written
            with run_logging(self.layout.log, verbose=self.verbose, console=self._log is None), \
                    PeakRSS() as self._rss:
                return self._stages()

    def _stages(self) -> list[dict[str, Any]]:
        c = self.cfg
        self.log(f"run {self.layout.root} ({c.env.env_id}, student {c.student.model}, {c.iterations} LEAP "
                 "iterations)")
        self.evaluate_teachers()
        self.refresh_outputs()
        demos = self.demos()
        base_dir = self.base(demos)
        rows = [self.dataset(0, demos, None, base_dir)]
        model_dir, adapter_dir = self.student_stage("train", 0, rows, base_dir, None)
        if c.evaluation.every_iteration or c.iterations == 0:
            self.student_stage("evaluate_student", 0, model_dir, adapter_dir)
        self.refresh_outputs()
        for i in range(1, c.iterations + 1):
            trajs = self.student_stage("student_rollout", i, model_dir, adapter_dir)
            kept, corrections = self.corrections(i, trajs)
            rows.append(self.dataset(i, kept, corrections, model_dir))
            if c.training.for_iteration(i).method == "dpo" and not rows[-1]:
                self.log(f"iter {i}: no preference pairs (nothing corrected); keeping the previous student")
            else:
                model_dir, adapter_dir = self.student_stage("train", i, rows, model_dir, adapter_dir)
            if c.evaluation.every_iteration or i == c.iterations:
                self.student_stage("evaluate_student", i, model_dir, adapter_dir)
            self.refresh_outputs()
        self.log(f"done: {self.layout.root}")
        rows = self.refresh_outputs()
        self._trackers.close()
        return rows


def _run_stage(cfg: LeapConfig, stage: str, i: int, args: tuple[Any, ...], elapsed_s: float, progress: bool,
               verbose: bool, collect: bool) -> list[str]:
    """The fresh process's side of ``Run.student_stage``: the stage, its lines in the run's ``leap.log`` and
    on the console (returned instead when the parent ``collect``s them), its peak memory in
    ``stages.json``."""
    lines: list[str] = []
    run = Run(cfg, progress=progress, log=lines.append if collect else None, verbose=verbose)
    run.t0 -= elapsed_s  # the run's clock, not this process's
    set_student_threads(cfg)
    with run_logging(run.layout.log, verbose=verbose, console=not collect), PeakRSS() as run._rss:
        getattr(run, stage)(i, *args)
    return lines


def run(config: LeapConfig | dict[str, Any] | str | os.PathLike, overrides: list[str] | None = None, *,
        progress: bool = True, log: Callable[[str], None] | None = None, verbose: bool = False
        ) -> list[dict[str, Any]]:
    """Run (or resume) LEAP; returns the metric rows also written to ``run_dir/metrics.jsonl``.

    The run's own lines and one progress display per stage go to the console (``log``, when given, receives
    the lines instead), everything else to ``run_dir/leap.log``; ``verbose`` shows that on the console too."""
    if isinstance(config, LeapConfig):
        cfg = config if not overrides else load_config(None, overrides, base=to_dict(config))
    elif isinstance(config, dict):
        cfg = load_config(None, overrides, base=config)
    else:
        cfg = load_config(config, overrides)
    return Run(cfg, progress=progress, log=log, verbose=verbose)()


def evaluate_students(run_dir: str | os.PathLike, overrides: list[str] | None = None, *, name: str = "test",
                      num_tasks: int | None = None, iterations: list[int] | None = None, quiet: bool = True,
                      verbose: bool = False, first_task: int = 0) -> list[dict[str, Any]]:
    """Evaluate a run's trained students on held-out tasks (``env.test_kwargs`` overrides pick e.g. real game
    files): tasks ``first_task`` .. ``first_task + num_tasks - 1``; ``num_tasks=None`` runs to the last task
    of a file source, else ``evaluation.num_test_tasks`` tasks. ``first_task`` past the run's own test tasks
    gives held-out tasks the run never evaluated (more tasks per seed, a tighter estimate). Results go to
    ``run_dir/evals/<name>/``; library output to the run's ``leap.log`` (see ``leap_gym.leap.logs``)."""
    if first_task < 0:
        raise ValueError(f"first task {first_task}: task indices start at 0")
    layout = RunLayout(run_dir)
    if not layout.config.exists():
        raise FileNotFoundError(f"{run_dir} has no {layout.config.name} (not a leap-gym run)")
    cfg = load_config(None, overrides, base=to_dict(layout.load_config()))
    env = check_env_kwargs(cfg)  # before anything heavy loads: a bad keyword fails at once
    total = getattr(env.unwrapped, "num_tasks", None)
    env.close()
    if num_tasks is None and cfg.env.kwargs_for("test").get("tasks") == "files" and total is not None:
        num_tasks = total - first_task
    tasks = list(range(first_task, first_task + (num_tasks if num_tasks is not None
                                                 else cfg.evaluation.num_test_tasks)))
    if not tasks:
        raise ValueError(f"no tasks to evaluate (num_tasks {num_tasks})")
    if total is not None and tasks[-1] >= total:
        raise ValueError(f"tasks {first_task}..{first_task + len(tasks) - 1}: the test split has "
                         f"{total} tasks (0..{(total or 0) - 1})")
    with run_logging(layout.log, verbose=verbose):
        return _evaluate_students(layout, cfg, name, tasks, iterations, quiet, verbose)


def check_env_kwargs(cfg: LeapConfig) -> Any:
    """The test env made from the config; a keyword the env does not take is a config error naming the key,
    not a traceback."""
    try:
        return make_env(cfg.env.env_id, cfg.env.kwargs_for("test"))
    except TypeError as e:
        bad = re.search(r"unexpected keyword argument '(\w+)'", str(e))
        if bad is None:
            raise
        key = "env.test_kwargs" if bad.group(1) in cfg.env.test_kwargs else "env.kwargs"
        raise ConfigError(f"{key}: {cfg.env.env_id} takes no argument {bad.group(1)!r}") from None


def _evaluate_students(layout: RunLayout, cfg: LeapConfig, name: str, tasks: list[int],
                       iterations: list[int] | None, quiet: bool, verbose: bool) -> list[dict[str, Any]]:
    iters = [i for i in layout.trained_iterations() if iterations is None or i in iterations]
    if not iters:
        raise FileNotFoundError(f"no trained iteration found in {layout.root}")
    notice = max_new_tokens_notice(cfg, layout.longest_answer_tokens(max(iters)))
    if notice:
        logging.getLogger(__name__).warning(notice)
    if not own_processes(cfg):
        set_student_threads(cfg)
        return [_evaluate_named(cfg, layout, name, i, tasks, quiet) for i in iters]
    return [in_fresh_process(_evaluate_named_alone, cfg, layout.root, name, i, tasks, quiet, verbose)
            for i in iters]


def _evaluate_named_alone(cfg: LeapConfig, root: Path, name: str, i: int, tasks: list[int], quiet: bool,
                          verbose: bool) -> dict[str, Any]:
    """``_evaluate_named`` in a fresh process: the run's logging and threads set up first."""
    layout = RunLayout(root)
    set_student_threads(cfg)
    with run_logging(layout.log, verbose=verbose):
        return _evaluate_named(cfg, layout, name, i, tasks, quiet)


def _evaluate_named(cfg: LeapConfig, layout: RunLayout, name: str, i: int, tasks: list[int],
                    quiet: bool) -> dict[str, Any]:
    """Iteration ``i``'s student on ``tasks``, written to ``evals/<name>/``."""
    metrics, trajs = evaluate_iteration(cfg, layout, i, layout.student_weights(i), tasks, progress=not quiet)
    m = {"name": iteration_name(i), "agent": "student", "key": iteration_key(i), "iteration": i,
         "env_kwargs": cfg.env.kwargs_for("test"), "first_task": tasks[0], **metrics}
    write_evaluation(layout.named_evaluation(name, i), m, trajs)
    return m


__all__ = ["Run", "StageError", "evaluate_iteration", "evaluate_students", "run"]
