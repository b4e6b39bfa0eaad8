"""``run(config)``: the whole LEAP loop as resumable stages in a run directory.

Layout (every file written atomically; a stage is done when its output exists)::

    run_dir/config.yaml                  resolved config (a resumed run must match it)
    run_dir/teachers/<name>.json         evaluation of the privileged teacher and the teacher without privilege
    run_dir/iter_0/demos.jsonl           teacher demonstrations on the train tasks (reasons included)
    run_dir/base/                        the student's starting weights (built locally for tiny/small/base)
    run_dir/iter_<i>/rollout.jsonl       the previous student's episodes on the train tasks (i >= 1)
    run_dir/iter_<i>/corrections.jsonl   teacher corrections of the selected episodes (i >= 1)
    run_dir/iter_<i>/dataset.jsonl       this iteration's training rows
    run_dir/iter_<i>/train/              model/ (merged weights), adapter/, train_log.json
    run_dir/iter_<i>/eval.json           held-out evaluation of the iteration's student (+ eval_trajectories.jsonl)
    run_dir/stages.json                  wall time of every stage, written when the stage finishes
    run_dir/metrics.jsonl, learning_curve.png, loss_curves.png, report.html   rebuilt after every stage

Re-running with the same config skips every finished stage; a kill mid-stage loses only that stage's work
(training resumes from its last checkpoint). A stage output that cannot be read back (a truncated file) is
redone with a one-line warning; temporaries left by a writer killed mid-write are removed at start. A correction
stage where the teacher mostly failed raises ``StageError`` and is not marked done, so a re-run retries it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from leap_gym.core import Correction, Trajectory, read_trajectories, write_jsonl
from leap_gym.io import atomic_write_json, remove_stale_temporaries
from leap_gym.leap.config import (
    ConfigError,
    LeapConfig,
    TrainingConfig,
    dump_config,
    from_dict,
    load_config,
    save_config,
    to_dict,
)

# Keys a resumed run may change: they do not alter finished stages.
RESUMABLE_CHANGES = ("iterations", "run_dir", "evaluation.every_iteration", "training.report_to",
                     "student.num_threads", "training.checkpoint_steps")

_T = TypeVar("_T")


class StageError(RuntimeError):
    """A stage that could not produce trustworthy output; it is not marked done, so a re-run retries it."""


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def read_output(path: Path, read: Callable[[Path], _T], warn: Callable[[str], None] | None = None) -> _T | None:
    """A finished stage's output, or ``None`` when the stage must (re)run: ``path`` is missing, or cannot be read
    back (truncated or edited by hand; ``warn`` gets one line and the stage is redone)."""
    if not path.exists():
        return None
    try:
        return read(path)
    except (OSError, ValueError, KeyError, TypeError) as e:  # JSONDecodeError, RecordError, UnicodeDecodeError
        if warn is not None:
            what = str(e).splitlines()[0] if str(e) else type(e).__name__
            warn(f"warning: {path} is unreadable ({what[:200]}); redoing its stage")
        return None


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and k not in ("kwargs", "train_kwargs", "test_kwargs"):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def check_resume(saved: LeapConfig, cfg: LeapConfig) -> None:
    a, b = _flat(to_dict(saved)), _flat(to_dict(cfg))
    diff = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k) and k not in RESUMABLE_CHANGES]
    if diff:
        raise ConfigError(f"{cfg.run_dir} holds a run with a different config ({', '.join(diff)}); use a new "
                          "run_dir or the same settings to resume")


def make_teacher(cfg: LeapConfig, privilege: float, kind: str | None = None):
    """The configured teacher (or ``kind``) at ``privilege``; an endpoint given as ``kwargs.backend`` caches its
    answers in ``run_dir/teacher_cache`` unless it names its own ``cache_dir``, so a re-run never pays twice."""
    from leap_gym.agents.teachers import load_symbol, make_expert

    kind = kind or cfg.teacher.kind
    kwargs = dict(cfg.teacher.kwargs) if kind == cfg.teacher.kind else {}
    if kind == "expert":
        return make_expert(cfg.env.env_id, privilege, **kwargs)
    if isinstance(kwargs.get("backend"), dict):
        kwargs["backend"] = {"cache_dir": str(Path(cfg.run_dir) / "teacher_cache"), **kwargs["backend"]}
    return load_symbol(kind)(privilege=privilege, **kwargs)


def teacher_agent_factory(cfg: LeapConfig, privilege: float, kind: str | None = None) -> Callable[[], Any]:
    from leap_gym.agents.teachers import TeacherAgent

    return lambda: TeacherAgent(make_teacher(cfg, privilege, kind), cfg.env.env_id)


def make_student(cfg: LeapConfig, model_dir: str, adapter_dir: str | None = None, answer_tokens: int = 0):
    """The student for rollouts and evaluation. ``answer_tokens`` (the longest training target) raises
    ``max_new_tokens`` when needed: a cap below it cuts the action off the end of long answers."""
    from leap_gym.agents.student import HFStudent

    s = cfg.student
    new_tokens = max(s.max_new_tokens, answer_tokens + 2)  # + end-of-turn token and one spare
    episode = prompt_format(cfg) == "episode"
    return HFStudent(model_dir, adapter=adapter_dir, env=cfg.env.env_id, k=s.history_k,
                     max_new_tokens=new_tokens, do_sample=s.temperature > 0,
                     temperature=s.temperature or 1.0, seed=cfg.seed, constrained=s.constrained,
                     # episode: the chat keeps every step while it fits training.max_length, as training rows do
                     max_prompt_tokens=cfg.training.max_length if episode
                     else max(16, 2 * cfg.training.max_length - new_tokens),
                     # step: history only while prompt + answer fit training.max_length, as training rows
                     history_tokens=max(16, cfg.training.max_length - new_tokens),
                     batch_size=s.batch_size, prompt_format="episode" if episode else "step",
                     answer_room=s.max_new_tokens,
                     dtype=acting_dtype(cfg))


def is_built(cfg: LeapConfig) -> bool:
    """Whether the student is one of the tiny models built here from random weights."""
    from leap_gym.models import MODEL_SIZES

    return cfg.student.model in MODEL_SIZES


def prompt_format(cfg: LeapConfig) -> str:
    """``student.prompt_format`` with ``auto`` resolved: the step format for the tiny built models (designed for
    it: a candidate list to copy from), the episode format for pretrained chat models."""
    fmt = cfg.student.prompt_format
    return fmt if fmt != "auto" else ("step" if is_built(cfg) else "episode")


def acting_dtype(cfg: LeapConfig) -> str | None:
    """``student.dtype`` with ``auto`` resolved (``None``: the device's default, fp32 on CPU)."""
    from leap_gym.leap.train import native_bf16

    if cfg.student.dtype != "auto":
        return cfg.student.dtype
    return "bfloat16" if not is_built(cfg) and native_bf16() else None


def max_new_tokens_notice(cfg: LeapConfig, answer_tokens: int) -> str | None:
    """The warning to give when ``make_student`` raises ``student.max_new_tokens`` for ``answer_tokens``."""
    new_tokens = answer_tokens + 2
    if new_tokens <= cfg.student.max_new_tokens:
        return None
    return (f"warning: student.max_new_tokens raised from {cfg.student.max_new_tokens} to {new_tokens} for acting: "
            f"training targets run up to {answer_tokens} tokens (+ end of turn and one spare) and a lower cap "
            f"would cut actions off; set student.max_new_tokens={new_tokens} or more to silence this")


def trained_answer_tokens(run_dir: Path, upto: int) -> int:
    """The longest training target (tokens) of iterations ``0..upto`` of a run (0 when not recorded)."""
    longest = 0
    for i in range(upto + 1):
        stats = read_output(run_dir / f"iter_{i}" / "dataset_stats.json", read_json) or {}
        longest = max(longest, int(stats.get("max_answer_tokens", 0)))
    return longest


def trained_iterations(run_dir: Path) -> list[int]:
    """The iterations of a run whose training finished, in order."""
    return sorted(int(p.parent.parent.name.split("_")[1]) for p in Path(run_dir).glob("iter_*/train/train_log.json"))


def _kwargs(cfg: LeapConfig, split: str) -> dict[str, Any]:
    extra = cfg.env.train_kwargs if split == "train" else cfg.env.test_kwargs
    return {**cfg.env.kwargs, **extra}


class Run:
    """The stages of one run; each method is idempotent (skips when its output exists)."""

    def __init__(self, cfg: LeapConfig, progress: bool = True, log: Callable[[str], None] | None = None,
                 verbose: bool = False):
        self.cfg = cfg
        self.dir = Path(cfg.run_dir)
        self.progress = progress
        self.verbose = verbose
        self._log = log
        self.t0 = time.monotonic()
        self._trackers = None

    def log(self, msg: str, level: int = logging.INFO) -> None:
        """A line of the run's own: to ``log`` when given, else to the console and ``run_dir/leap.log``."""
        line = f"[leap {time.monotonic() - self.t0:6.0f}s] {msg}"
        if self._log is not None:
            self._log(line)
        logging.getLogger(__name__).log(level, line)

    def stage_done(self, name: str, started: float) -> None:
        """Record the wall time of a stage that ran (``started``: its ``time.time()``) for the report; a stage
        that a resume skips keeps the time recorded when it ran."""
        from leap_gym.leap.report import record_stage

        record_stage(self.dir, name, started, time.time() - started)

    # -- paths --------------------------------------------------------------------------------------------------
    def it(self, i: int) -> Path:
        return self.dir / f"iter_{i}"

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

    # -- setup --------------------------------------------------------------------------------------------------
    def setup(self) -> None:
        path = self.dir / "config.yaml"
        if path.exists():
            if path.read_text(encoding="utf-8").strip():
                check_resume(load_config(path), self.cfg)
            elif any(p.name != "config.yaml" for p in self.dir.iterdir()):
                raise ConfigError(f"{path} is empty, so the settings this run was made with are unknown; restore "
                                  "it to resume, or use a new run_dir")
        self.dir.mkdir(parents=True, exist_ok=True)
        stale = remove_stale_temporaries(self.dir)
        if stale:
            self.log(f"removed {len(stale)} temporary file(s) left by a run killed mid-write")
        save_config(self.cfg, path)
        from leap_gym.leap.train import set_threads

        set_threads(self.cfg.student.num_threads, tiny=self.cfg.student.model == "tiny")

    def _rollout(self, agent: Any, split: str, tasks: list[int], privileged: bool, desc: str,
                 seed: int | None = None) -> list[Trajectory]:
        from leap_gym.leap.rollout import rollout

        c = self.cfg
        return rollout(c.env.env_id, agent, tasks, env_kwargs=_kwargs(c, split),
                       seed=c.seed if seed is None else seed, max_steps=c.env.max_steps,
                       batch_size=c.student.batch_size, privileged=privileged, progress=self.progress, desc=desc,
                       snap=c.student.snap_to_admissible and not privileged)

    def _evaluate(self, out: Path, agent: Any, privileged: bool, name: str,
                  started: float | None = None) -> dict[str, Any]:
        """Evaluate on the test tasks; the episodes are kept beside ``out`` (the report shows some).
        ``started``: when the stage began (before loading the agent), for its recorded wall time."""
        done = read_output(out, read_json, self.log)
        if done is not None:
            return done
        from leap_gym.leap.evaluate import summarize

        started = started or time.time()
        trajs = self._rollout(agent, "test", self.test_tasks(), privileged, f"eval {name}")
        metrics = {"name": name, **summarize(trajs), "wall_s": round(time.time() - started, 2)}
        write_jsonl(out.with_name(out.stem + "_trajectories.jsonl"), trajs)
        atomic_write_json(out, metrics)
        self.stage_done(str(out.relative_to(self.dir).with_suffix("")), started)
        self.log(f"eval {name}: success {metrics['success']:.3f} score {metrics['score']:.3f}")
        return metrics

    # -- stages -------------------------------------------------------------------------------------------------
    def teachers(self) -> None:
        if not self.cfg.evaluation.teachers:
            return
        p = self.cfg.teacher.privilege
        self._evaluate(self.dir / "teachers" / "teacher_privileged.json", teacher_agent_factory(self.cfg, p),
                       True, f"teacher (privilege {p:g})")
        self._evaluate(self.dir / "teachers" / "teacher_no_privilege.json", teacher_agent_factory(self.cfg, 0.0),
                       True, "teacher without privilege")
        for spec in self.cfg.evaluation.baselines:
            from leap_gym.agents.teachers import load_symbol

            name = spec.rsplit(":", 1)[-1]
            self._evaluate(self.dir / "baselines" / f"{name}.json", load_symbol(spec), False, name)

    def demos(self) -> list[Trajectory]:
        out = self.it(0) / "demos.jsonl"
        done = read_output(out, read_trajectories, self.log)
        if done is None:
            started = time.time()
            c = self.cfg
            trajs = []
            agent = teacher_agent_factory(c, c.teacher.demo_privilege, c.teacher.demo_kind)
            for r in range(c.rollout.demos_per_task):
                trajs += self._rollout(agent, "train", self.train_tasks(), True, "demos", seed=c.seed + r)
            write_jsonl(out, trajs)
            self.stage_done("iter_0/demos", started)
            won = sum(t.won for t in trajs)
            self.log(f"demos: {len(trajs)} episodes, {won} won, {sum(len(t) for t in trajs)} steps")
            done = trajs
        return done

    def base(self, demos: list[Trajectory]) -> str:
        """The student's starting weights; a base built here carries the random-init marker ``train`` reads."""
        c = self.cfg.student
        if not is_built(self.cfg):
            from leap_gym.models.pretrained import resolve_model

            return resolve_model(c.model)
        out = self.dir / "base"
        if not (out / "config.json").exists():
            started = time.time()
            import shutil

            from leap_gym.agents.prompting import fit_step_prompt, format_target
            from leap_gym.models import build_model, build_tokenizer, env_text_corpus

            texts = []
            for traj in demos[: c.tokenizer_episodes]:
                for t, step in enumerate(traj.steps):
                    texts += [m["content"] for m in fit_step_prompt(traj, t, k=c.history_k).messages]
                    texts.append(format_target(step.reason, step.action))
            tok = build_tokenizer(env_text_corpus(texts, seed=self.cfg.seed), vocab_size=c.vocab_size)
            model = build_model(tok, size=c.model, seed=self.cfg.seed)
            partial = out.with_name("base.partial")
            shutil.rmtree(partial, ignore_errors=True)
            model.save_pretrained(partial)
            tok.save_pretrained(partial)
            os.replace(partial, out)
            self.stage_done("base", started)
            n = sum(p.numel() for p in model.parameters())
            self.log(f"base: built {c.model} model ({n / 1e6:.2f} M params, vocab {len(tok)})")
        return str(out)

    def dataset(self, i: int, trajs: list[Trajectory], corrections: list[list[Correction]] | None,
                model_dir: str) -> list[dict[str, Any]]:
        out = self.it(i) / "dataset.jsonl"
        done = read_output(out, _read_rows, self.log)
        if done is None:
            started = time.time()
            from transformers import AutoTokenizer

            from leap_gym.leap.dataset import DatasetStats, build_dataset

            c = self.cfg
            method = "sft" if i == 0 else c.training.method
            stats = DatasetStats()
            rows = build_dataset(trajs, corrections, method=method, history_k=c.student.history_k,
                                 max_length=c.training.max_length,
                                 tokenizer=AutoTokenizer.from_pretrained(model_dir),
                                 only_corrected=c.rollout.only_corrected_steps, iteration=i, stats=stats,
                                 prompt_format=prompt_format(c), answer_room=c.student.max_new_tokens)
            atomic_write_json(self.it(i) / "dataset_stats.json", vars(stats))
            write_jsonl(out, rows)  # last: its existence marks the stage done
            self.stage_done(f"iter_{i}/dataset", started)
            self.log(f"iter {i} dataset: {stats.rows} rows ({stats.dropped_too_long} dropped as too long, "
                     f"{stats.over_length} kept over max_length, "
                     f"{stats.history_cut} with history cut, {stats.observation_clipped} observations clipped, "
                     f"{stats.skipped_uncorrected} uncorrected skipped, "
                     f"{stats.skipped_invalid} the teacher failed to correct skipped)")
            notice = max_new_tokens_notice(c, stats.max_answer_tokens)
            if notice:
                self.log(f"iter {i} dataset: {notice}", logging.WARNING)
            done = _read_rows(out)
        return done

    def training_config(self, i: int) -> TrainingConfig:
        """Iteration ``i``'s training settings: behaviour cloning (i = 0) may have its own learning rate."""
        t = self.cfg.training
        return dataclasses.replace(t, learning_rate=t.bc_learning_rate) if i == 0 and t.bc_learning_rate else t

    def train(self, i: int, rows_per_iter: list[list[dict[str, Any]]], model_dir: str,
              adapter_dir: str | None) -> tuple[str, str | None]:
        out = self.it(i) / "train"
        c = self.cfg
        if read_output(out / "train_log.json", lambda p: read_json(p)["metrics"], self.log) is None:
            started = time.time()
            from leap_gym.leap.dataset import aggregate
            from leap_gym.leap.train import train

            method = "sft" if i == 0 else c.training.method
            if method == "dpo":
                rows = aggregate([rows_per_iter[-1]], "last", seed=c.seed + i)
            else:
                rows = aggregate(rows_per_iter, c.training.aggregate, seed=c.seed + i)
            steps = c.training.bc_max_steps if i == 0 else c.training.max_steps
            self.log(f"iter {i} train: {method} on {len(rows)} rows, {steps} steps")
            res = train(rows, model_dir, out, self.training_config(i), method=method, adapter_dir=adapter_dir,
                        max_steps=steps, progress=self.progress)
            self.stage_done(f"iter_{i}/train", started)
            self.log(f"iter {i} train: loss {res.metrics['train_loss']:.3f} in {res.metrics['train_runtime_s']:.0f}s")
        if c.training.finetune == "lora" and c.training.continue_mode == "stack":
            return model_dir, str(out / "adapter")
        return str(out / "model"), None

    def student_rollout(self, i: int, model_dir: str, adapter_dir: str | None) -> list[Trajectory]:
        out = self.it(i) / "rollout.jsonl"
        done = read_output(out, read_trajectories, self.log)
        if done is None:
            started = time.time()
            student = make_student(self.cfg, model_dir, adapter_dir, trained_answer_tokens(self.dir, i - 1))
            done = self._rollout(student, "train", self.rollout_tasks(i), False, f"rollout iter {i}")
            write_jsonl(out, done)
            self.stage_done(f"iter_{i}/rollout", started)
            self.log(f"iter {i} rollout: {sum(t.won for t in done)}/{len(done)} won")
        return done

    def corrections(self, i: int, rollouts: list[Trajectory]) -> tuple[list[Trajectory], list[list[Correction]]]:
        out = self.it(i) / "corrections.jsonl"
        done = read_output(out, read_corrections_file, self.log)
        if done is None:
            started = time.time()
            from leap_gym.leap.correct import TeacherUnavailable, correct, failure_reason, is_valid

            c = self.cfg
            retry = "not marked done; fix the teacher and re-run to retry"
            try:
                kept, fixes = correct(rollouts, make_teacher(c, c.teacher.privilege), select=c.rollout.select,
                                      score_threshold=c.rollout.score_threshold, progress=self.progress,
                                      max_consecutive_failures=c.teacher.max_consecutive_failures)
            except TeacherUnavailable as e:
                raise StageError(f"iter {i} corrections stopped: {e}; {retry}") from None
            # steps of the episodes dropped because the teacher raised count as invalid too
            dropped = [t for t in rollouts if "correction_error" in t.metadata]
            total = sum(map(len, fixes)) + sum(len(t) for t in dropped)
            invalid = sum(not is_valid(x) for f in fixes for x in f) + sum(len(t) for t in dropped)
            if total and invalid > c.teacher.max_invalid_fraction * total:
                reasons = [r for r in (failure_reason(t, f) for t, f in zip(kept, fixes, strict=True)) if r]
                reasons += [t.metadata["correction_error"] for t in dropped]
                example = next((x.metadata.get("error") for f in fixes for x in f if not is_valid(x)), None)
                why = (reasons or [example or "invalid corrections"])[0][:300]
                raise StageError(f"iter {i} corrections: the teacher failed on {invalid}/{total} steps (more than "
                                 f"teacher.max_invalid_fraction={c.teacher.max_invalid_fraction:g}; e.g. {why}); "
                                 f"{retry}")
            write_corrections(out, kept, fixes)
            self.stage_done(f"iter_{i}/corrections", started)
            changed = sum(x.was_corrected for f in fixes for x in f)
            self.log(f"iter {i} corrections: {len(kept)} episodes, {changed}/{sum(map(len, fixes))} steps changed"
                     + (f", {invalid} invalid (not trained on)" if invalid else ""))
            done = kept, fixes
        return done

    def evaluate_student(self, i: int, model_dir: str, adapter_dir: str | None) -> dict[str, Any]:
        out = self.it(i) / "eval.json"
        done = read_output(out, read_json)  # an unreadable one is reported (once) by _evaluate
        if done is not None:
            return done
        label = "BC" if i == 0 else f"LEAP iter {i}"
        started = time.time()
        student = make_student(self.cfg, model_dir, adapter_dir, trained_answer_tokens(self.dir, i))
        return self._evaluate(out, student, False, label, started)

    # -- outputs --------------------------------------------------------------------------------------------------
    def refresh_outputs(self) -> list[dict[str, Any]]:
        from leap_gym.leap.report import write_learning_curve, write_loss_curves, write_report
        from leap_gym.leap.trackers import RunTrackers

        rows = collect_metrics(self.dir)
        write_jsonl(self.dir / "metrics.jsonl", rows)
        try:
            write_learning_curve(rows, self.dir / "learning_curve.png")
            write_loss_curves(self.dir, self.dir / "loss_curves.png")
        except ImportError:  # matplotlib is optional (the train extra)
            pass
        write_report(self.dir, rows)
        if self._trackers is None:
            self._trackers = RunTrackers(self.dir, self.cfg.training.report_to, self.log, to_dict(self.cfg))
        self._trackers.log(rows)
        return rows

    def __call__(self) -> list[dict[str, Any]]:
        from leap_gym.leap.logs import LOG_FILE, run_logging

        self.setup()  # refuses a changed config before anything is written
        with run_logging(self.dir / LOG_FILE, verbose=self.verbose, console=self._log is None):
            return self._stages()

    def _stages(self) -> list[dict[str, Any]]:
        c = self.cfg
        self.log(f"run {self.dir} ({c.env.env_id}, student {c.student.model}, {c.iterations} LEAP iterations)")
        self.teachers()
        self.refresh_outputs()
        demos = self.demos()
        base_dir = self.base(demos)
        rows = [self.dataset(0, demos, None, base_dir)]
        model_dir, adapter_dir = self.train(0, rows, base_dir, None)
        if c.evaluation.every_iteration or c.iterations == 0:
            self.evaluate_student(0, model_dir, adapter_dir)
        self.refresh_outputs()
        for i in range(1, c.iterations + 1):
            trajs = self.student_rollout(i, model_dir, adapter_dir)
            kept, fixes = self.corrections(i, trajs)
            rows.append(self.dataset(i, kept, fixes, model_dir))
            if c.training.method == "dpo" and not rows[-1]:
                self.log(f"iter {i}: no preference pairs (nothing corrected); keeping the previous student")
            else:
                model_dir, adapter_dir = self.train(i, rows, model_dir, adapter_dir)
            if c.evaluation.every_iteration or i == c.iterations:
                self.evaluate_student(i, model_dir, adapter_dir)
            self.refresh_outputs()
        self.log(f"done: {self.dir}")
        rows = self.refresh_outputs()
        self._trackers.close()
        return rows


def _read_rows(path: Path) -> list[dict[str, Any]]:
    from leap_gym.core import iter_jsonl

    return [obj for _, obj in iter_jsonl(path)]


def write_corrections(path: Path, trajectories: list[Trajectory], corrections: list[list[Correction]]) -> None:
    """One line per corrected episode: the trajectory and its per-step corrections."""
    from leap_gym.core import to_record

    write_jsonl(path, ({"trajectory": to_record(t), "corrections": [to_record(c) for c in cs]}
                       for t, cs in zip(trajectories, corrections, strict=True)))


def read_corrections_file(path: Path) -> tuple[list[Trajectory], list[list[Correction]]]:
    from leap_gym.core import RecordError, from_record, iter_jsonl

    trajs, fixes = [], []
    for line, obj in iter_jsonl(path):
        if not isinstance(obj, dict) or "trajectory" not in obj or "corrections" not in obj:
            raise RecordError("expected {trajectory, corrections}", path, line)
        trajs.append(from_record(obj["trajectory"], Trajectory, path, line))
        fixes.append([from_record(c, Correction, path, line) for c in obj["corrections"]])
    return trajs, fixes


def collect_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """Evaluation rows (teachers, baselines, every iteration) read back from the run's files."""
    rows: list[dict[str, Any]] = []
    for sub, agent in (("teachers", "teacher"), ("baselines", "baseline")):
        for p in sorted((run_dir / sub).glob("*.json")):
            if (metrics := read_output(p, read_json)) is not None:  # unreadable: its stage is redone
                rows.append({"agent": agent, "key": p.stem, **metrics})
    i = 0
    while (run_dir / f"iter_{i}").exists():
        d = run_dir / f"iter_{i}"
        row: dict[str, Any] = {"agent": "student", "key": f"iter_{i}", "iteration": i}
        row.update(read_output(d / "eval.json", read_json) or {})
        if (train := read_output(d / "train" / "train_log.json", lambda p: read_json(p)["metrics"])) is not None:
            row["train"] = train
        if (stats := read_output(d / "dataset_stats.json", read_json)) is not None:
            row["dataset"] = stats
        if len(row) > 3:
            rows.append(row)
        i += 1
    return rows


def run(config: LeapConfig | dict[str, Any] | str | os.PathLike, overrides: list[str] | None = None, *,
        progress: bool = True, log: Callable[[str], None] | None = None, verbose: bool = False
        ) -> list[dict[str, Any]]:
    """Run (or resume) LEAP; returns the metric rows also written to ``run_dir/metrics.jsonl``.

    The run's own lines and one progress display per stage go to the console (``log``, when given, receives the
    lines instead), everything else to ``run_dir/leap.log``; ``verbose`` shows that on the console too."""
    if isinstance(config, LeapConfig):
        cfg = config if not overrides else load_config(None, overrides, base=to_dict(config))
    elif isinstance(config, dict):
        cfg = load_config(None, overrides, base=config)
    else:
        cfg = load_config(config, overrides)
    return Run(cfg, progress=progress, log=log, verbose=verbose)()


__all__ = ["Run", "StageError", "collect_metrics", "dump_config", "from_dict", "read_corrections_file", "run",
           "write_corrections"]
