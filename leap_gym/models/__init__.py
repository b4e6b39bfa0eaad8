"""Tiny local students: a byte-level BPE tokenizer trained on env text and small Llama models built from a
config.

Nothing here downloads anything. ``import leap_gym.models`` is cheap; torch/transformers load when a function
that needs them runs.
"""

from __future__ import annotations

from leap_gym.models.tiny import (
    MODEL_SIZES,
    build_model,
    build_tiny_student,
    is_from_scratch,
    lora_config_for,
    mark_pretrained,
    modules_to_fully_train,
)
from leap_gym.models.tokenizer import CHAT_TEMPLATE, SPECIAL_TOKENS, build_tokenizer, env_text_corpus

__all__ = ["CHAT_TEMPLATE", "MODEL_SIZES", "SPECIAL_TOKENS", "build_model", "build_tiny_student",
           "build_tokenizer", "env_text_corpus", "is_from_scratch", "lora_config_for", "mark_pretrained",
           "modules_to_fully_train"]
