"""``LocalChat``: a local Hugging Face model behind the same ``chat``/``chat_many`` interface as
``OpenAIChat``.

Lets prompting baselines (``ReActAgent``) and teachers run on a local checkpoint without starting a server;
``chat_many`` answers all conversations with one batched ``generate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from leap_gym.agents.backends.openai_chat import ChatResult
from leap_gym.agents.student import render_prompt


class LocalChat:
    """Wraps an ``HFStudent`` (which owns the model, tokenizer, device and stop tokens)."""

    def __init__(self, student: Any, max_tokens: int | None = None, temperature: float = 0.0):
        self.student, self.max_tokens, self.temperature = student, max_tokens, temperature

    def chat(self, messages: Sequence[dict[str, str]], **params: Any) -> ChatResult:
        return self.chat_many([messages], **params)[0]

    def chat_many(self, conversations: Sequence[Sequence[dict[str, str]]], max_tokens: int | None = None,
                  temperature: float | None = None, top_p: float | None = None,
                  seed: int | None = None) -> list[ChatResult]:
        tok = self.student.tokenizer
        prompts = [tok(render_prompt(tok, [dict(m) for m in conv]), add_special_tokens=False)["input_ids"]
                   for conv in conversations]
        temperature = self.temperature if temperature is None else temperature
        results = self.student.complete(prompts, max_new_tokens=max_tokens or self.max_tokens,
                                        do_sample=temperature > 0, temperature=temperature, top_p=top_p,
                                        seed=seed)
        return [ChatResult(text=r.text, finish_reason=r.finish_reason, prompt_tokens=len(p),
                           completion_tokens=r.tokens) for r, p in zip(results, prompts, strict=True)]
