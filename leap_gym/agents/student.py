"""``HFStudent``: any Hugging Face causal LM (plus an optional LoRA adapter) acting in one env or a vector
env.

All envs of a vector env are answered in one left-padded batch (KV cache on): the per-token decode overhead is
paid once per batch instead of once per env. The step format calls ``generate``; the episode format decodes
with ``leap_gym.agents.decoding.decode_releasing``, which lets a row go once its answer has ended. The system
message, identical for every env, is prefilled once per call and its KV cache shared by all rows. The batch's
KV cache is preallocated with room for the answer and a large batch is prefilled in chunks of similar-length
prompts (``leap_gym.agents.kv_cache``). The student is a ``TrajectoryAgent``: each env slot keeps its own
record of the episode (observations, its own reasons and actions, the action the env actually ran when the
rollout snapped a near miss), and the prompt of a step is fitted from that record by the function training
rows are fitted with (``fit_step_prompt``, ``fit_episode_prompt``), so it acts on exactly the prompts it was
trained on.

The student reads only ``task`` and ``admissible_actions`` from ``info``, after dropping every privileged key,
so even a caller that forgets ``StudentView`` cannot leak the teacher's state into a prompt.

Candidate-constrained acting (``constrained=True``): in the episode format, generation itself is constrained
(``leap_gym.agents.action_trie``): after the action marker only continuations of the step's admissible
actions are allowed, so the constraint costs nothing beyond the generation. When the generated action is
still not one of the admissible actions (the step format, a missing marker, a free-text template), each
candidate is scored by the model's log-likelihood after the prompt and the generated reason
(``answer_head(reason)`` + `` <candidate><eos>``), batched over candidates with the prefix's KV cache computed
once (in the episode format, from the chat's own cache: only the answer head is new), and the best one is
taken. Generating first and scoring only on a miss keeps the common case cheap:
scoring 30 ALFWorld commands costs about five generations.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from leap_gym.agents.attention import use_gqa_attention
from leap_gym.agents.base import AgentOutput, TrajectoryAgent
from leap_gym.agents.conversation import DEFAULT_OBS_CHARS, ChatSegments, fit_episode_prompt, user_turn
from leap_gym.agents.prompting import (
    DEFAULT_HISTORY,
    answer_head,
    build_messages,
    fill_template,
    fit_step_prompt,
    format_target,
    is_template,
    match_candidate,
    parse_output,
)
from leap_gym.memory import release_freed_memory
from leap_gym.models.pretrained import resolve_model
from leap_gym.records import Trajectory

# torch, transformers, peft and leap_gym.agents.kv_cache (built on torch) are imported where a model is loaded
# or run, so prompts can be built, and this module imported, without them.
if TYPE_CHECKING:
    import torch

    from leap_gym.agents.kv_cache import SlotCache

# End-of-turn tokens of common chat families; whichever exist in a tokenizer's vocab stop generation.
END_OF_TURN_TOKENS = ("<|end|>", "<|eot_id|>", "<|im_end|>", "<end_of_turn>", "<|endoftext|>", "</s>")


@dataclass
class _Chat:
    """One slot's chat in the episode format: the episode it belongs to, its messages, their tokens and the KV
    cache of those tokens."""

    episode: Trajectory
    messages: list[dict[str, str]]
    ids: list[int]
    steps: int  # earlier steps of the episode the chat holds (the answer of the last one is not in it yet)
    cache: Any = None


@dataclass
class Completion:
    text: str
    tokens: int  # generated tokens, end-of-turn included
    finish_reason: str  # "stop" (end of turn) or "length" (max_new_tokens reached)


def render_prompt(tokenizer, messages: list[dict[str, str]]) -> str:
    """The prompt text up to where the assistant's answer starts (plain role headers if there is no
    template)."""
    return ChatSegments(tokenizer).render(messages, generation_prompt=True)


def default_device_dtype(device: str | None = None, dtype: str | torch.dtype | None = None):
    """CUDA with bf16 when available (fp16 on GPUs without bf16), else CPU with fp32 (safe and fast enough
    there)."""
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    if dtype is None:
        if str(device).startswith("cuda"):
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            dtype = torch.float32
    return torch.device(device), dtype


class HFStudent(TrajectoryAgent):
    """A Hugging Face causal LM as a LEAP student.

    ``model`` is a local path, a hub id the user's machine can reach, or a loaded ``PreTrainedModel``/PEFT
    model (then ``tokenizer`` is required; its device and dtype are kept, ``device``/``dtype`` apply to
    loading). ``adapter`` is a PEFT adapter directory loaded on top (merged into the weights for speed when
    ``merge_adapter``). ``do_sample=False`` is greedy; with sampling, ``seed`` makes the sequence of calls
    reproducible without touching the global RNG. ``k`` is the history window of the prompt. A prompt with
    history longer than ``history_tokens`` (default ``max_prompt_tokens``) drops its oldest steps first, the
    way training rows were fitted (``fit_step_prompt``), so the student never acts on longer histories than it
    was trained on; a history-free prompt is cut from the left at ``max_prompt_tokens``. ``prefill_tokens``
    caps the padded size of one prefill chunk of a batch (``leap_gym.agents.kv_cache``); the default is 1024
    on CPU, where about a thousand tokens keeps the activations in cache, and no cap on a GPU.
    """

    def __init__(self, model: Any, tokenizer: Any = None, adapter: str | None = None, *,
                 env: str | None = None, k: int = DEFAULT_HISTORY, max_new_tokens: int = 64,
                 do_sample: bool = False,
                 temperature: float = 0.7, top_p: float = 1.0, seed: int | None = 0,
                 device: str | None = None, dtype: Any = None, constrained: bool = False,
                 max_prompt_tokens: int = 1024,
                 history_tokens: int | None = None, batch_size: int = 32, score_batch_size: int = 64,
                 max_obs_chars: int | None = -1,
                 merge_adapter: bool = True, privileged_keys: Sequence[str] = (), share_prefix: bool = True,
                 prefill_tokens: int | None = None, prompt_format: str = "step",
                 answer_room: int | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        super().__init__(env_id=env or "", privileged_keys=privileged_keys)
        self.device, self.dtype = default_device_dtype(device, dtype)
        if tokenizer is None and not isinstance(model, str):
            raise ValueError("pass the tokenizer with a loaded model")
        if isinstance(tokenizer, str) and not isinstance(model, str):
            tokenizer = AutoTokenizer.from_pretrained(tokenizer)
        if isinstance(model, str):
            model = resolve_model(model)
            if tokenizer is None or isinstance(tokenizer, str):
                tokenizer = AutoTokenizer.from_pretrained(tokenizer if isinstance(tokenizer, str) else model)
            model = AutoModelForCausalLM.from_pretrained(model, dtype=self.dtype).to(self.device)
            use_gqa_attention(model)  # CPU: grouped key/value heads attended without copies
        if adapter is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter)
            if merge_adapter:
                model = model.merge_and_unload()
            model.to(device=self.device, dtype=self.dtype)
        self.model, self.tokenizer = model, tokenizer
        self.device = next(model.parameters()).device
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.stop_ids = self._stop_ids()
        if max_obs_chars == -1:  # the format's own clipping of long observations (as its training rows)
            max_obs_chars = DEFAULT_OBS_CHARS if prompt_format == "episode" else 600
        self.env, self.k, self.max_obs_chars = env, k, max_obs_chars
        self.max_new_tokens, self.do_sample = max_new_tokens, do_sample
        self.temperature, self.top_p, self.seed = temperature, top_p, seed
        self.constrained, self.max_prompt_tokens = constrained, max_prompt_tokens
        self.history_tokens = min(history_tokens or max_prompt_tokens, max_prompt_tokens)
        self.batch_size, self.score_batch_size = max(1, batch_size), max(1, score_batch_size)
        self._calls = 0
        self.share_prefix = share_prefix
        self.prefill_tokens = max(1, prefill_tokens) if prefill_tokens is not None else \
            (1024 if self.device.type == "cpu" else 1 << 30)
        self._system_cache: list[int] | None = None
        self._marker_ids: list[int] | None = None  # the action marker's tokens (ActionTrie)
        self._action_ids: dict[str, list[int]] = {}  # each action's tokens after the marker
        self._last_prompt_ids: list[list[int]] = []
        self._params_of: tuple[int, Mapping[str, Any]] | None = None
        if prompt_format not in ("step", "episode"):
            raise ValueError(f"prompt_format must be 'step' or 'episode', got {prompt_format!r}")
        self.prompt_format = prompt_format
        # episode format: a chat is kept while its prompt leaves this many tokens of max_prompt_tokens free,
        # the rule training rows are fitted by (``fit_episode_prompt``)
        self.answer_room = max_new_tokens if answer_room is None else answer_room
        self._segments = ChatSegments(tokenizer)
        self._chats: dict[int, _Chat] = {}
        self.stats = {"actions": 0, "generated_tokens": 0, "prompt_tokens": 0, "format_errors": 0,
                      "constrained_fallbacks": 0}
        self._torch = torch

    @property
    def last_prompts(self) -> list[str]:
        """The prompts of the last decision round as text (decoded on demand: acting never needs them)."""
        return [self.tokenizer.decode(p) for p in self._last_prompt_ids]

    # -- acting ----------------------------------------------------------------------------------------------
    def decide(self, slots: Sequence[int]) -> list[AgentOutput]:
        """One batched generation over the slots' prompts (then candidate scoring for misses when
        constrained)."""
        episodes = [self.episodes[s] for s in slots]
        if self.prompt_format == "episode":
            texts = self._act_episodes(slots)
        else:
            self._last_prompt_ids = [self._step_prompt_ids(ep) for ep in episodes]
            texts = [c.text for c in self.complete(self._last_prompt_ids, prefix=self._system_ids())]
        outputs = []
        for slot, ep, prompt, text in zip(slots, episodes, self._last_prompt_ids, texts, strict=True):
            cands = ep.steps[-1].admissible_actions
            out = parse_output(text, cands)
            concrete = [c for c in cands or () if not is_template(c)] if self.constrained else []
            if (concrete and match_candidate(out.action, cands) is None
                    and fill_template(out.action, cands) is None):
                chat = self._chats.get(slot) if self.prompt_format == "episode" else None
                scores = self.score_candidates(prompt, out.reason, concrete,
                                               prompt_cache=chat.cache if chat is not None else None)
                best = max(range(len(scores)), key=scores.__getitem__)
                out = AgentOutput(reason=out.reason, action=concrete[best], raw_text=text,
                                  format_ok=out.format_ok)
                self.stats["constrained_fallbacks"] += 1
            self.stats["format_errors"] += int(not out.format_ok)
            outputs.append(out)
        self.stats["actions"] += len(slots)
        return outputs

    def _step_prompt_ids(self, episode: Trajectory) -> list[int]:
        """Token ids of the step-format prompt of the episode's last step: history dropped, oldest first,
        while over ``history_tokens`` (``fit_step_prompt``), then cut from the left at
        ``max_prompt_tokens``."""
        fitted = fit_step_prompt(episode, len(episode.steps) - 1, k=self.k, max_obs_chars=self.max_obs_chars,
                                 tokenize=lambda m: self._encode([render_prompt(self.tokenizer, m)])[0],
                                 budget=self.history_tokens)
        return fitted.ids[-self.max_prompt_tokens:]

    # -- episode format: one chat per episode, its KV cache kept from step to step ---------------------------
    def _act_episodes(self, slots: Sequence[int]) -> list[str]:
        """Answers in the episode format (``leap_gym.agents.conversation``). Each slot's chat so far is cached
        (tokens and KV states); a step computes only its new turns: the last answer as the episode records it
        (after any snapping by the caller), the new observation and the assistant header. A slot without a
        chat of its current episode, or whose chat would outgrow ``max_prompt_tokens``, is rebuilt from its
        episode (``fit_episode_prompt``: the latest steps that fit) and, when other slots have their chats
        cached, prefilled on its own before it joins the batch.

        All rows share one ``generate``. Splitting a round into batches of similar new-turn lengths saves the
        left padding of the new turns (about half of an ALFWorld round's prefilled tokens) but measured slower
        (286 s against 262 s for a 40-env evaluation): each batch pays its own ~40-step decode loop, and
        decoding, not prefill, takes most of a round."""
        # only the chats of this round's episodes are kept (a finished slot's KV cache is let go)
        self._chats = {s: self._chats[s] for s in slots if s in self._chats
                       and self._chats[s].episode is self.episodes[s]}
        states, news = [], []
        for slot in slots:
            episode = self.episodes[slot]
            t = len(episode.steps) - 1
            chat = self._chats.get(slot)
            new: list[int] = []
            if chat is not None and chat.steps == t:
                msgs = chat.messages
                if t:
                    last = episode.steps[t - 1]
                    msgs.append({"role": "assistant", "content": format_target(last.reason, last.action)})
                    new += self._segments.turn_ids(msgs, len(msgs) - 1)[1]
                msgs.append({"role": "user", "content": user_turn(None if t else episode.task,
                                                                  episode.steps[t].observation,
                                                                  self.max_obs_chars)})
                new += self._segments.turn_ids(msgs, len(msgs) - 1)[0] + self._segments.header_ids(msgs)
                if len(chat.ids) + len(new) + self.answer_room > self.max_prompt_tokens:
                    chat = None
            else:  # a new episode, or steps the chat has not followed
                chat = None
            if chat is None:
                chat = self._fresh_chat(episode)
                self._chats[slot] = chat
                new, chat.ids, chat.cache = chat.ids, [], None
            states.append(chat)
            news.append(new)
        self.stats["prompt_tokens"] += sum(len(x) for x in news)
        was_training = self.model.training
        self.model.eval()
        try:
            if any(c.cache is not None for c in states):
                # a rebuilt chat (new episode, or over budget) among cached ones is prefilled on its own: in
                # the batch every row would be padded to its ~300-2,000 new tokens (compute and cache)
                for row, chat in enumerate(states):
                    if chat.cache is None and len(news[row]) > 1:
                        chat.ids, news[row] = news[row][:-1], news[row][-1:]
                        chat.cache = self._prefill_chat(chat.ids)
            answers = self._answer_round(slots, states, news)
        except BaseException:  # the slots' caches went into a batch: rebuild every chat next time
            self._chats = {}
            raise
        finally:
            self.model.train(was_training)
        texts = []
        self._last_prompt_ids = [chat.ids for chat in states]
        for toks in answers:
            stop = next((j for j, t in enumerate(toks) if t in self.stop_ids), None)
            k = len(toks) if stop is None else stop + 1
            self.stats["generated_tokens"] += k
            texts.append(self.tokenizer.decode(toks[:k], skip_special_tokens=True))
        release_freed_memory()  # the batch's buffers just went: keep RSS from creeping up with the chats
        return texts

    def _answer_round(self, slots: Sequence[int], states: list[_Chat], news: list[list[int]]
                      ) -> list[list[int]]:
        """One decoding pass over the round's chats: their cached states stacked into one batch cache, the
        new tokens left-padded to the longest, then the answers decoded by ``decode_releasing``, which
        lets a row go (its chat's states copied back, padding dropped) once its answer has ended. Returns
        each row's generated tokens."""
        from leap_gym.agents.decoding import decode_releasing
        from leap_gym.agents.kv_cache import stack_slot_caches

        torch = self._torch
        n = len(slots)
        parts = [c.cache for c in states]
        for chat in states:  # the batch cache takes them over (stack_slot_caches consumes them)
            chat.cache = None
        nw = max(len(x) for x in news)
        cache, _ = stack_slot_caches(self.model.config, parts, nw + self.max_new_tokens)
        del parts
        width = max(len(c.ids) for c in states)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((n, width + nw), pad, dtype=torch.long)
        mask = torch.zeros((n, width + nw), dtype=torch.long)
        for row, (chat, new) in enumerate(zip(states, news, strict=True)):
            if chat.ids:
                ids[row, width - len(chat.ids):width] = torch.tensor(chat.ids, dtype=torch.long)
                mask[row, width - len(chat.ids):width] = 1
            ids[row, width + nw - len(new):] = torch.tensor(new, dtype=torch.long)
            mask[row, width + nw - len(new):] = 1
        trie = self._action_trie([self.episodes[s].steps[-1].admissible_actions for s in slots],
                                 ids.shape[1]) if self.constrained else None
        if cache is None:
            cache = self._episode_prefill_cache(ids, mask)
        keep = [torch.nonzero(mask[row], as_tuple=False)[:, 0].to(self.device) for row in range(n)]
        settings = {"max_new_tokens": self.max_new_tokens, "do_sample": self.do_sample,
                    "temperature": self.temperature, "top_p": self.top_p, "seed": None}
        with self._seeded(settings), torch.inference_mode():
            out, slot_caches = decode_releasing(
                self._last_logits, cache, ids.to(self.device), mask.to(self.device), keep,
                max_new_tokens=self.max_new_tokens, stop_ids=self.stop_ids,
                choose=self._chooser(settings, trie))
        del cache
        for chat, new, slot_cache in zip(states, news, slot_caches, strict=True):
            chat.ids = chat.ids + new
            chat.cache = slot_cache
            chat.steps += 1
        return out

    def _last_logits(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any
                     ) -> torch.Tensor:
        """The logits of the last position after running ``ids`` on top of ``cache`` (updated in place)."""
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                         **{self._cache_kwarg(): cache}, **self._last_logits_only())
        return out.logits[:, -1]

    def _chooser(self, settings: dict[str, Any], trie: Any = None) -> Any:
        """The next-token rule ``generate`` applies with ``settings``: greedy, or sampling after temperature
        and top-p (transformers' own warpers, in float32 as there), each row first kept to its admissible
        actions by ``trie`` once it has written the action marker."""
        torch = self._torch
        from transformers import TemperatureLogitsWarper, TopPLogitsWarper

        warpers = []
        if settings["do_sample"]:
            if settings["temperature"] not in (None, 1.0):
                warpers.append(TemperatureLogitsWarper(settings["temperature"]))
            if settings["top_p"] is not None and settings["top_p"] < 1.0:
                warpers.append(TopPLogitsWarper(settings["top_p"]))

        def choose(logits: torch.Tensor, rows: list[int], generated: list[list[int]]) -> torch.Tensor:
            scores = logits.float()
            if trie is not None:
                scores = trie.constrain(scores, rows, generated)
            if not settings["do_sample"]:
                return scores.argmax(-1)
            for warp in warpers:
                scores = warp(None, scores)
            return torch.multinomial(scores.softmax(-1), 1)[:, 0]

        return choose

    def _prefill_chat(self, ids: list[int]) -> SlotCache:
        """The KV states of one chat's tokens ``ids`` (batch 1, positions from 0): the slot cache a rebuilt
        chat joins the batch with."""
        torch = self._torch
        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([ids], dtype=torch.long, device=self.device),
                             use_cache=True, **self._last_logits_only())
        cache = getattr(out, "cache", None) or out.past_key_values
        return [(layer.keys, layer.values) for layer in cache.layers]

    def _episode_prefill_cache(self, ids: torch.Tensor, mask: torch.Tensor) -> Any:
        """An empty cache with room reserved for the whole batch (first steps), filled by the decoding; the
        model's own empty cache when its layers are not plain full-attention ones (sliding windows, say),
        which decodes without releasing rows."""
        from transformers import DynamicCache

        from leap_gym.agents.kv_cache import ReservedLayer

        cfg = self.model.config.get_text_config(decoder=True)
        heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
        dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        cache = DynamicCache(config=self.model.config)
        if not all(type(layer).__name__ == "DynamicLayer" for layer in cache.layers):
            return cache
        dtype = next(self.model.parameters()).dtype
        room = ids.shape[1] + self.max_new_tokens
        layers = []
        for _ in cache.layers:
            kb = self._torch.zeros((ids.shape[0], heads, room, dim), dtype=dtype, device=self.device)
            layers.append(ReservedLayer(kb, self._torch.zeros_like(kb), 0))
        cache.layers = layers
        return cache

    def _fresh_chat(self, episode: Trajectory) -> _Chat:
        """A slot's chat rebuilt from its episode: the latest steps whose chat fits ``max_prompt_tokens`` with
        ``answer_room`` to spare (``fit_episode_prompt``)."""
        t = len(episode.steps) - 1
        fitted = fit_episode_prompt(
            episode, t, max_obs_chars=self.max_obs_chars, budget=self.max_prompt_tokens,
            room=self.answer_room,
            tokenize=lambda m: self._encode([self._segments.render(m, generation_prompt=True)])[0])
        return _Chat(episode=episode, messages=fitted.messages,
                     ids=fitted.ids[-(self.max_prompt_tokens - self.answer_room):], steps=t)

    # -- internals -------------------------------------------------------------------------------------------
    def _stop_ids(self) -> list[int]:
        ids = set()
        eos = self.tokenizer.eos_token_id
        if eos is not None:
            ids.add(int(eos))
        gen_eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        ids.update([gen_eos] if isinstance(gen_eos, int) else (gen_eos or []))
        vocab = self.tokenizer.get_vocab()
        ids.update(vocab[t] for t in END_OF_TURN_TOKENS if t in vocab)
        return sorted(ids)

    def _system_ids(self) -> list[int] | None:
        """Token ids of the rendered system message when it is a token prefix of every prompt (checked in
        ``complete``); ``None`` when prefix sharing is off or the template has no system turn."""
        if not self.share_prefix:
            return None
        if self._system_cache is None:
            if not getattr(self.tokenizer, "chat_template", None):
                return None
            msgs = build_messages("", [], "", None, env=self.env)[:1]
            text = self.tokenizer.apply_chat_template(msgs, tokenize=False)
            self._system_cache = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return self._system_cache

    def _encode(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"]

    def complete(self, prompts: Sequence[Sequence[int]], max_new_tokens: int | None = None,
                 do_sample: bool | None = None, temperature: float | None = None, top_p: float | None = None,
                 seed: int | None = None, prefix: Sequence[int] | None = None) -> list[Completion]:
        """Generate after each prompt (token ids), batched and left-padded; ``None`` keeps the student's
        setting.

        Used by acting (``decide``) and by ``leap-gym serve``. Each answer stops at the first end-of-turn
        token. An explicit ``seed`` makes this call's sampling exactly reproducible; without one, sampling
        follows the student's seeded sequence of calls (or the global RNG when the student has no seed).

        ``prefix``: token ids every prompt starts with (the system message). Its KV cache is computed once per
        call and shared by all rows, laid out as ``[prefix | left padding | rest]``, so a batch of N prompts
        prefills the prefix once instead of N times. Computed per call, so it can never go stale after
        training.
        """
        from leap_gym.agents.kv_cache import batch_cache

        torch = self._torch
        settings = {"max_new_tokens": max_new_tokens or self.max_new_tokens,
                    "do_sample": self.do_sample if do_sample is None else do_sample,
                    "temperature": self.temperature if temperature is None else temperature,
                    "top_p": self.top_p if top_p is None else top_p,
                    "seed": seed}
        head = list(prefix or [])
        if not head or not all(len(p) > len(head) and list(p[:len(head)]) == head for p in prompts):
            head = []
        rests = [list(p[len(head):]) for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: len(rests[i]))  # similar lengths share a batch
        results: list[Completion | None] = [None] * len(prompts)
        pad, h = self.tokenizer.pad_token_id, len(head)
        was_training = self.model.training
        self.model.eval()
        try:
            head_cache = self._prefill(head) if head else None
            for start in range(0, len(order), self.batch_size):
                chunk = order[start:start + self.batch_size]
                width = h + max(len(rests[i]) for i in chunk)
                ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                if head:
                    ids[:, :h] = torch.tensor(head, dtype=torch.long)
                    mask[:, :h] = 1
                for row, i in enumerate(chunk):  # left padding: every prompt ends where generation starts
                    r = rests[i]
                    ids[row, width - len(r):] = torch.tensor(r, dtype=torch.long)
                    mask[row, width - len(r):] = 1
                self.stats["prompt_tokens"] += int(mask.sum())
                cache = batch_cache(self._forward_cache, head_cache, h, [rests[i] for i in chunk], width - h,
                                    settings["max_new_tokens"], pad, self.prefill_tokens, self.device)
                # cache layers we cannot reserve: generate prefills
                if cache is None and head_cache is not None:
                    cache = copy.deepcopy(head_cache)
                    cache.batch_repeat_interleave(len(chunk))
                new = self._generate_chunk(ids.to(self.device), mask.to(self.device), settings, cache)
                for row, i in enumerate(chunk):
                    toks = new[row].tolist()
                    stop = next((j for j, t in enumerate(toks) if t in self.stop_ids), None)
                    n = len(toks) if stop is None else stop + 1
                    finish = "stop" if stop is not None else "length"
                    self.stats["generated_tokens"] += n
                    results[i] = Completion(self.tokenizer.decode(toks[:n], skip_special_tokens=True), n,
                                            finish)
        finally:
            self.model.train(was_training)
        return results  # type: ignore[return-value]

    def _prefill(self, ids: list[int]):
        """The KV cache of one token sequence (batch 1)."""
        torch = self._torch
        return self._cache_after(input_ids=torch.tensor([ids], dtype=torch.long, device=self.device))

    def _forward_cache(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any):
        """The KV cache after running ``ids`` (left-padded, explicit positions) on top of ``cache``."""
        kwargs = {self._cache_kwarg(): cache} if cache is not None else {}
        return self._cache_after(input_ids=ids, attention_mask=mask, position_ids=positions, **kwargs)

    def _cache_after(self, **inputs: Any):
        with self._torch.inference_mode():
            out = self.model(**inputs, use_cache=True, **self._last_logits_only())
        return getattr(out, "cache", None) or out.past_key_values

    def _action_trie(self, candidates: Sequence[Sequence[str] | None], start: int) -> Any:
        """The ``ActionTrie`` that keeps each row's action among its candidates (rows with a free-text
        template, or none, stay free)."""
        from leap_gym.agents.action_trie import ActionTrie

        if self._marker_ids is None:
            head, before = self._encode([answer_head("x"), answer_head("x").rsplit("\n", 1)[0] + "\n"])
            self._marker_ids = head[len(before):] if head[:len(before)] == before else \
                self._encode(["ACTION:"])[0]
        rows = [None if not cands or any(is_template(c) for c in cands) else self._action_token_ids(cands)
                for cands in candidates]
        return ActionTrie(self._marker_ids, rows, start)

    def _action_token_ids(self, actions: Sequence[str]) -> list[list[int]]:
        """Each action's tokens as the answer writes it after the action marker (`` <action>``), end-of-turn
        included; cached, since an env offers the same actions step after step."""
        if len(self._action_ids) > 50_000:  # a long-lived student (serve) sees many tasks' actions
            self._action_ids.clear()
        missing = [a for a in dict.fromkeys(actions) if a not in self._action_ids]
        if missing:
            eos = self.tokenizer.eos_token_id
            for a, ids in zip(missing, self._encode([" " + a.strip() for a in missing]), strict=True):
                self._action_ids[a] = ids + [eos]
        return [self._action_ids[a] for a in actions]

    def _generate_chunk(self, ids: torch.Tensor, mask: torch.Tensor, settings: dict[str, Any],
                        cache: Any = None) -> torch.Tensor:
        torch = self._torch
        kwargs: dict[str, Any] = {"max_new_tokens": settings["max_new_tokens"],
                                  "do_sample": settings["do_sample"], "eos_token_id": self.stop_ids,
                                  "pad_token_id": self.tokenizer.pad_token_id,
                                  "use_cache": True}
        if cache is not None:
            kwargs[self._cache_kwarg()] = cache
        if settings["do_sample"]:
            kwargs.update(temperature=settings["temperature"], top_p=settings["top_p"], top_k=0)
        else:  # explicit, so a checkpoint's generation_config (do_sample=True, top_p=0.9) cannot override
            kwargs.update(temperature=None, top_p=None, top_k=None)
        with self._seeded(settings), torch.inference_mode():
            out = self.model.generate(input_ids=ids, attention_mask=mask, **kwargs)
        return out[:, ids.shape[1]:].cpu()

    @contextlib.contextmanager
    def _seeded(self, settings: dict[str, Any]) -> Iterator[None]:
        """Sampling seeded per call (``settings["seed"]``, else from the student's seed and a call count), the
        caller's RNG state restored after."""
        torch = self._torch
        self._calls += 1
        devices = [self.device] if self.device.type == "cuda" else []
        seed = settings["seed"] if settings["seed"] is not None else \
            (None if self.seed is None else self.seed * 1_000_003 + self._calls)
        with torch.random.fork_rng(devices=devices, enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            yield

    def _forward_params(self) -> Mapping[str, Any]:
        """The model's ``forward`` parameters, looked up once per model (``inspect`` costs ~0.1 ms a call)."""
        if self._params_of is None or self._params_of[0] != id(self.model):
            base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
            self._params_of = (id(self.model), inspect.signature(base.forward).parameters)
        return self._params_of[1]

    def _cache_kwarg(self) -> str:
        """transformers >= 5.24 renamed the argument ``past_key_values`` (forward and generate) to
        ``cache``."""
        return "cache" if "cache" in self._forward_params() else "past_key_values"

    def _last_logits_only(self) -> dict[str, int]:
        """Skip the full-vocabulary logits of every prompt position (GBs for a long prompt and a big
        vocab)."""
        return {"logits_to_keep": 1} if "logits_to_keep" in self._forward_params() else {}

    def score_candidates(self, prompt_ids: list[int], reason: str, candidates: Sequence[str],
                         prompt_cache: SlotCache | None = None) -> list[float]:
        """Log-likelihood of each ``candidate`` + end-of-turn after the prompt and the answer up to its action
        (``answer_head`` of ``reason`` on one line).

        The prefix runs once; its KV cache is repeated over a chunk of candidates (right-padded), so the cost
        is one prefill plus the candidates' own tokens. ``prompt_cache``: the KV states of ``prompt_ids``
        (an episode-format chat keeps them), so only the answer head is prefilled instead of the whole chat.
        """
        torch = self._torch
        head = self.tokenizer(answer_head(" ".join(reason.split())), add_special_tokens=False)["input_ids"]
        prefix = (list(prompt_ids) + head)[-self.max_prompt_tokens:]
        reuse = (prompt_cache is not None and len(prompt_ids) + len(head) <= self.max_prompt_tokens
                 and prompt_cache[0][0].shape[-2] == len(prompt_ids))
        cand_ids = self._action_token_ids(candidates)
        was_training = self.model.training
        self.model.eval()
        scores: list[float] = []
        try:
            with torch.inference_mode():
                if reuse:  # prefill the answer head only, after the prompt's own states
                    from transformers import DynamicCache

                    states = DynamicCache(config=self.model.config)
                    for layer, (k, v) in enumerate(prompt_cache):
                        states.update(k, v, layer)
                    n = len(prompt_ids)
                    pre = torch.tensor([head], dtype=torch.long, device=self.device)
                    out = self.model(input_ids=pre, position_ids=torch.arange(n, n + len(head),
                                                                              device=self.device)[None],
                                     use_cache=True, **{self._cache_kwarg(): states},
                                     **self._last_logits_only())
                else:
                    pre = torch.tensor([prefix], dtype=torch.long, device=self.device)
                    out = self.model(input_ids=pre, use_cache=True, **self._last_logits_only())
                first_logp = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
                cache = getattr(out, "cache", None) or out.past_key_values
                for start in range(0, len(cand_ids), self.score_batch_size):
                    chunk = cand_ids[start:start + self.score_batch_size]
                    m, width = len(chunk), max(len(c) for c in chunk)
                    ids = torch.full((m, width), self.tokenizer.pad_token_id, dtype=torch.long)
                    cmask = torch.zeros((m, width), dtype=torch.long)
                    for row, c in enumerate(chunk):
                        ids[row, :len(c)] = torch.tensor(c, dtype=torch.long)
                        cmask[row, :len(c)] = 1
                    ids, cmask = ids.to(self.device), cmask.to(self.device)
                    chunk_cache = copy.deepcopy(cache)
                    chunk_cache.batch_repeat_interleave(m)
                    attn = torch.cat([torch.ones((m, len(prefix)), dtype=torch.long, device=self.device),
                                      cmask], 1)
                    pos = torch.arange(len(prefix), len(prefix) + width, device=self.device).expand(m, -1)
                    logits = self.model(input_ids=ids, attention_mask=attn, position_ids=pos, use_cache=True,
                                        **{self._cache_kwarg(): chunk_cache}).logits.float()
                    # position j predicts candidate token j+1
                    logp = torch.log_softmax(logits[:, :-1], dim=-1)
                    for row, c in enumerate(chunk):
                        total = float(first_logp[c[0]])
                        if len(c) > 1:
                            nxt = torch.tensor(c[1:], device=self.device)
                            total += float(logp[row, :len(c) - 1].gather(1, nxt[:, None]).sum())
                        scores.append(total if math.isfinite(total) else -math.inf)
        finally:
            self.model.train(was_training)
        return scores

