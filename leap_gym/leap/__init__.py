"""The LEAP loop: behaviour cloning on privileged demonstrations, then rollout -> privileged correction ->
aggregate -> train -> evaluate, iterated (Choudhury & Sodhi, ICLR 2025).

``run(config)`` does everything in a resumable run directory; the pieces are plain functions for use in other
loops: ``rollout`` (vector envs, batched acting), ``correct`` (teacher corrections of selected episodes),
``build_dataset``/``aggregate`` (on-policy chat rows), ``train`` (TRL SFT/DPO with LoRA, QLoRA on CUDA) and
``evaluate``. Importing this package loads no torch; training and acting import it on use.
"""

from leap_gym.leap.config import (
    EnvConfig,
    EvaluationConfig,
    LeapConfig,
    RolloutConfig,
    StudentConfig,
    TeacherConfig,
    TrainingConfig,
    load_config,
    save_config,
)
from leap_gym.leap.correct import correct, select_episodes
from leap_gym.leap.dataset import aggregate, build_dataset
from leap_gym.leap.evaluate import evaluate, summarize
from leap_gym.leap.rollout import rollout
from leap_gym.leap.run import run
from leap_gym.leap.train import quantization_plan, train

__all__ = ["EnvConfig", "EvaluationConfig", "LeapConfig", "RolloutConfig", "StudentConfig", "TeacherConfig",
           "TrainingConfig", "aggregate", "build_dataset", "correct", "evaluate", "load_config",
           "quantization_plan", "rollout", "run", "save_config", "select_episodes", "summarize", "train"]
