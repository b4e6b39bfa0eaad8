"""Prompting baselines a run evaluates beside its students (``evaluation.baselines``).

A baseline is a ``"module:function"`` that takes the run's ``LeapConfig`` and returns an agent; the run calls
it once, so an agent that plays many env slots itself (a ``BatchAgent``) loads its model once for all of them.
"""

from __future__ import annotations

from leap_gym.agents.backends import LocalChat
from leap_gym.agents.react import ReActAgent
from leap_gym.agents.student import HFStudent
from leap_gym.leap.config import LeapConfig
from leap_gym.leap.run import acting_dtype
from leap_gym.models.pretrained import resolve_model

# A ReAct answer is a thought and an action; longer ones are cut (and scored as written).
REACT_ANSWER_TOKENS = 96
# The chat a small model is shown: SmolLM2's window is 8k tokens, roughly 4 characters per token.
REACT_MAX_CHARS = 6000


def zero_shot_react(cfg: LeapConfig) -> ReActAgent:
    """The run's student model as it starts (pretrained, no training), prompted ReAct-style with the env's
    rules: the paper's prompting baseline, showing what behaviour cloning and LEAP add to the same model."""
    student = HFStudent(resolve_model(cfg.student.model), env=cfg.env.env_id,
                        batch_size=cfg.student.batch_size, max_new_tokens=REACT_ANSWER_TOKENS, seed=cfg.seed,
                        dtype=acting_dtype(cfg))
    return ReActAgent(LocalChat(student, max_tokens=REACT_ANSWER_TOKENS), env=cfg.env.env_id,
                      max_chars=REACT_MAX_CHARS)
