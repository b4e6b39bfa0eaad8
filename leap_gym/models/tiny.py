"""Small Llama students built from a config, and which modules must be trained when the base is random.

Sizes at vocab 4096: ``tiny`` ~1.1M, ``small`` ~10M, ``base`` ~30M parameters.
Embeddings are untied: with tied weights PEFT treats ``embed_tokens``/``lm_head`` specially, and the two
matrices must be trainable separately (below).

The plateau finding: LoRA adapters on a randomly initialised base do not learn (held-out loss stalled at 7.3
nats, worse than unigram), because frozen random embeddings and a frozen random ``lm_head`` cannot be steered
by low-rank updates of the inner layers. Training ``embed_tokens`` and ``lm_head`` fully alongside the
adapters fixed it (1.8 nats). A model built here is marked in its config (``leap_gym_init="random"``, saved
with it), so ``lora_config_for`` adds those modules automatically.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from leap_gym.models.tokenizer import build_tokenizer, env_text_corpus

# torch, transformers and peft (the train extra) are imported where a model is built or configured.
if TYPE_CHECKING:
    from transformers import LlamaForCausalLM, PreTrainedModel, PreTrainedTokenizerBase

MODEL_SIZES: dict[str, dict[str, int]] = {
    "tiny": {"hidden_size": 96, "num_hidden_layers": 3, "num_attention_heads": 4, "intermediate_size": 256},
    "small": {"hidden_size": 256, "num_hidden_layers": 10, "num_attention_heads": 4,
              "intermediate_size": 704},
    "base": {"hidden_size": 512, "num_hidden_layers": 8, "num_attention_heads": 8, "intermediate_size": 1376},
}

FROM_SCRATCH_MODULES = ["embed_tokens", "lm_head"]
_INIT_KEY = "leap_gym_init"


def build_model(tokenizer: PreTrainedTokenizerBase, size: str = "tiny", seed: int | None = 0,
                max_position_embeddings: int = 2048, **overrides: Any) -> LlamaForCausalLM:
    """A randomly initialised Llama sized by name, with vocab and special ids taken from ``tokenizer``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    if size not in MODEL_SIZES:
        raise ValueError(f"unknown model size {size!r}; choose one of {sorted(MODEL_SIZES)}")
    config = LlamaConfig(vocab_size=len(tokenizer), max_position_embeddings=max_position_embeddings,
                         tie_word_embeddings=False, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         **{**MODEL_SIZES[size], **overrides})
    setattr(config, _INIT_KEY, "random")
    if seed is not None:
        torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    return model


def build_tiny_student(size: str = "tiny", extra_texts: list[str] | None = None, vocab_size: int = 4096,
                       seed: int = 0, save_to: str | None = None):
    """``(model, tokenizer)``: a tokenizer trained on env text and a fresh model; saved to ``save_to`` if
    given."""
    tokenizer = build_tokenizer(env_text_corpus(extra_texts, seed=seed), vocab_size=vocab_size)
    model = build_model(tokenizer, size=size, seed=seed)
    if save_to is not None:
        model.save_pretrained(save_to)
        tokenizer.save_pretrained(save_to)
    return model, tokenizer


def is_from_scratch(model: PreTrainedModel) -> bool:
    """Whether ``model`` (or the base under a PEFT wrapper) was built here from a random init."""
    config = getattr(model, "config", None)
    return getattr(config, _INIT_KEY, None) == "random"


def mark_pretrained(model: PreTrainedModel) -> None:
    """Record that ``model``'s weights were trained (e.g. after a pretraining recipe), so plain LoRA is
    fine."""
    setattr(model.config, _INIT_KEY, "trained")


def modules_to_fully_train(model: PreTrainedModel, from_scratch: bool | None = None) -> list[str]:
    """Modules that LoRA alone cannot fix: the embeddings and head of a random base; none for a trained
    one."""
    scratch = is_from_scratch(model) if from_scratch is None else from_scratch
    return list(FROM_SCRATCH_MODULES) if scratch else []


def lora_config_for(model: PreTrainedModel, from_scratch: bool | None = None, r: int = 16, alpha: int = 32,
                    dropout: float = 0.0, target_modules: str | list[str] = "all-linear", **kwargs: Any):
    """A ``peft.LoraConfig`` for ``model`` that can actually lower the loss.

    ``from_scratch=None`` reads the marker ``build_model`` leaves in the config. Asking for plain LoRA
    (``from_scratch=False``) on a model marked random warns: that is the configuration that plateaus.
    """
    from peft import LoraConfig

    marked = is_from_scratch(model)
    if from_scratch is False and marked:
        warnings.warn("plain LoRA on a randomly initialised base does not learn (frozen random embeddings "
                      "and head); pass from_scratch=None/True to also train embed_tokens and lm_head",
                      stacklevel=2)
    modules = modules_to_fully_train(model, from_scratch)
    if modules:
        kwargs.setdefault("modules_to_save", modules)
    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules, bias="none",
                      task_type="CAUSAL_LM", **kwargs)
