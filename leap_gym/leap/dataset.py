"""Training rows from trajectories and corrections: on-policy prompts, corrected targets, equal-share
aggregation.

A row's prompt is exactly what the student saw when it acted: the prompt at that step fitted by the function
the student fits its prompts with (``fit_step_prompt``/``fit_episode_prompt``), over the student's own
history, observation and candidates (never ``info``, so no privileged text can enter); its completion is
``format_target(corrected reason, corrected action)``. Rows use TRL's conversational prompt/completion format,
for which ``SFTTrainer`` puts the loss on the completion only, and ``DPOTrainer`` reads
``chosen``/``rejected``.

TRL can only cut the *end* of a row (the target), so the history is cut here: the prompt shows the last
``history_k`` steps, fewer if the row would exceed ``max_length`` tokens; without history a long current
observation is clipped; a row that still does not fit is kept whole up to ``hard_max_length`` (the trainer's
``max_length`` grows to the longest row, so TRL never cuts a target), and dropped and counted beyond it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from leap_gym.agents.conversation import (
    ChatSegments,
    encode_tree,
    encode_turns,
    episode_messages,
    fit_episode_prompt,
)
from leap_gym.agents.prompting import Tokenize, fit_step_prompt, format_target
from leap_gym.records import Correction, Trajectory

TokenCounter = Callable[[list[dict[str, str]]], int]


def chat_ids(tokenizer: Any) -> Tokenize:
    """Token ids of a full chat (prompt + assistant answer) with the tokenizer's own chat template."""

    def ids(messages: list[dict[str, str]]) -> list[int]:
        out = tokenizer.apply_chat_template(messages, tokenize=True)
        if isinstance(out, dict) or hasattr(out, "keys"):
            out = out["input_ids"]
        return list(out)

    return ids


def chat_token_counter(tokenizer: Any) -> TokenCounter:
    """Counts tokens of a full chat (prompt + assistant answer) with the tokenizer's own chat template."""
    ids = chat_ids(tokenizer)
    return lambda messages: len(ids(messages))


def _chat_tokens(tokenizer: Any, messages: list[dict[str, str]]) -> int:
    return len(encode_turns(tokenizer, messages, ())[0])


def episode_rows(trajectory: Trajectory, tokenizer: Any,
                 max_length: int | None) -> list[tuple[list, list, int]]:
    """A demonstration as chats in the episode format, loss on every answer: ``(prompt, completion, tokens)``.

    One chat holds the whole episode when it fits ``max_length`` tokens; a longer one is cut into consecutive
    windows, each restating the task, so every step is trained once. A single step that cannot fit alone is
    kept whole (the target is never cut)."""
    steps = [(s.observation, s.reason, s.action) for s in trajectory.steps]
    task, env = trajectory.task, trajectory.env_id
    out = []
    start = 0
    while start < len(steps):
        end = start + 1
        msgs = episode_messages(task, steps[start:end], env=env)
        n = _chat_tokens(tokenizer, msgs) if tokenizer is not None else 0
        while end < len(steps) and tokenizer is not None and max_length:
            longer = episode_messages(task, steps[start:end + 1], env=env)
            m = _chat_tokens(tokenizer, longer)
            if m > max_length:
                break
            msgs, n, end = longer, m, end + 1
        if tokenizer is None or not max_length:
            msgs, end = episode_messages(task, steps, env=env), len(steps)
            n = _chat_tokens(tokenizer, msgs) if tokenizer is not None else 0
        out.append((msgs[:2], msgs[2:], n))
        start = end
    return out


def _fit_row(trajectory: Trajectory, t: int, target: str, *, prompt_format: str, history_k: int,
             max_length: int | None, tokenizer: Any, hard_max_length: int | None, answer_room: int
             ) -> tuple[list[dict[str, str]], int, bool, int] | None:
    """The prompt of a row for step ``t``, fitted as the student's prompt at that step is fitted when it acts
    (``fit_step_prompt``/``fit_episode_prompt``): ``(prompt, history steps shown, observation clipped,
    tokens of prompt + target)``; ``None`` when the row cannot be kept.

    Step format: the row (prompt + target) must fit ``max_length``; a row that fits only without history and
    with its current observation clipped is clipped; one that still does not fit (a long candidate list) is
    kept whole when it fits ``hard_max_length`` (default twice ``max_length``), since dropping it would remove
    exactly the hard states from the data. Episode format: the student's rule with ``answer_room``; without a
    room, the prompt and the target must fit. The target is never cut.
    """
    answer = [{"role": "assistant", "content": target}]
    budgeted = tokenizer is not None and bool(max_length)
    if prompt_format == "step":
        chat = chat_ids(tokenizer) if budgeted else None
        fitted = fit_step_prompt(trajectory, t, k=history_k, budget=max_length, clip_observation=True,
                                 tokenize=(lambda p: chat(p + answer)) if chat else None)
        if not fitted.fits and len(fitted.ids) > (hard_max_length or 2 * max_length):
            return None
        return fitted.messages, fitted.shown, fitted.clipped, len(fitted.ids)

    def prompt_ids(prompt: list[dict[str, str]]) -> list[int]:  # as the student counts its prompt when acting
        return encode_turns(tokenizer, prompt, ())[0] + ChatSegments(tokenizer).header_ids(prompt)

    def row_ids(prompt: list[dict[str, str]]) -> list[int]:
        return encode_turns(tokenizer, prompt + answer, ())[0]

    fitted = fit_episode_prompt(trajectory, t, budget=max_length, room=answer_room,
                                tokenize=(prompt_ids if answer_room else row_ids) if budgeted else None)
    # a whole chat counts as history_k
    shown = min(fitted.shown, history_k) if fitted.shown < t else history_k
    return fitted.messages, shown, False, len(row_ids(fitted.messages)) if budgeted else 0


@dataclass
class DatasetStats:
    rows: int = 0
    dropped_too_long: int = 0
    skipped_uncorrected: int = 0
    skipped_after_limit: int = 0  # steps after an episode's ``max_corrected``-th changed step
    skipped_invalid: int = 0  # steps the teacher failed to correct (metadata valid: false): never trained on
    history_cut: int = 0  # rows shown fewer than history_k steps to fit max_length
    observation_clipped: int = 0  # rows whose current observation was clipped to fit (no history left to cut)
    over_length: int = 0  # rows kept longer than max_length (no history, yet too many candidates)
    # longest target (REASON + ACTION) in tokens: the student must be allowed to generate at least this many
    max_answer_tokens: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def build_dataset(trajectories: Sequence[Trajectory],
                  corrections: Sequence[Sequence[Correction]] | None = None, *, method: str = "sft",
                  history_k: int = 4, max_length: int | None = None,
                  tokenizer: Any = None, only_corrected: bool = False, iteration: int = 0,
                  stats: DatasetStats | None = None, hard_max_length: int | None = None,
                  prompt_format: str = "step", answer_room: int = 0,
                  pack: bool = False, max_corrected: int = 0) -> list[dict[str, Any]]:
    """Rows for ``SFTTrainer`` (``prompt``/``completion``) or ``DPOTrainer``
    (``prompt``/``chosen``/``rejected``).

    ``corrections[i]`` belongs to ``trajectories[i]``; without corrections the trajectories are demonstrations
    and their own reasons/actions are the targets (iteration 0). DPO rows are made only where the correction
    differs from what the student did (``rejected`` = the student's original answer). A correction the teacher
    failed to make (``metadata["valid"]`` false) carries the student's own action and is skipped.
    ``tokenizer`` (with a chat template) is needed to enforce ``max_length``.

    ``prompt_format="episode"`` builds rows in the episode format (``leap_gym.agents.conversation``): a
    demonstration becomes one multi-turn chat with loss on every answer (``completion`` holds the turns after
    the first observation), a corrected step the student's own chat up to that step plus the corrected answer,
    fitted by the student's rule with ``answer_room`` (``fit_episode_prompt``). With ``pack`` (episode format,
    SFT on corrections), the corrected steps that share a chat window become one row (``packed_row``).
    ``max_corrected`` > 0 ends each corrected episode's rows at its ``max_corrected``-th changed step
    (``last_kept_step``).
    """
    if method not in ("sft", "dpo"):
        raise ValueError(f"method must be 'sft' or 'dpo', got {method!r}")
    if corrections is not None and len(corrections) != len(trajectories):
        raise ValueError(f"{len(corrections)} correction lists for {len(trajectories)} trajectories")
    if method == "dpo" and corrections is None:
        raise ValueError("DPO rows need corrections (chosen) to pair with the student's actions (rejected)")
    stats = stats if stats is not None else DatasetStats()
    count = chat_token_counter(tokenizer) if tokenizer is not None and max_length else None
    if prompt_format not in ("step", "episode"):
        raise ValueError(f"prompt_format must be 'step' or 'episode', got {prompt_format!r}")
    rows: list[dict[str, Any]] = []
    for i, traj in enumerate(trajectories):
        if prompt_format == "episode" and corrections is None and method == "sft":
            for prompt, completion, tokens in episode_rows(traj, tokenizer, max_length):
                rows.append({"prompt": prompt, "completion": completion,
                             "meta": {"iteration": iteration, "task_id": traj.task_id, "step": -1,
                                      "tokens": tokens, "was_corrected": False,
                                      "turns": len(completion) // 2 + 1}})
                stats.over_length += int(max_length is not None and tokens > max_length)
                if tokenizer is not None:
                    stats.max_answer_tokens = max([stats.max_answer_tokens] + [
                        len(tokenizer(m["content"], add_special_tokens=False)["input_ids"])
                        for m in completion if m["role"] == "assistant"])
            continue
        fixes = {c.step_index: c for c in corrections[i]} if corrections is not None else None
        last = last_kept_step(corrections[i], max_corrected) if corrections is not None else None
        packing = pack and prompt_format == "episode" and method == "sft" and fixes is not None
        pending: list[tuple[int, list[dict[str, str]], str, bool, str]] = []
        for t, step in enumerate(traj.steps):
            if fixes is None:
                reason, action, corrected = step.reason, step.action, False
            else:
                if t not in fixes:
                    continue
                if last is not None and t > last:
                    stats.skipped_after_limit += 1
                    continue
                c = fixes[t]
                if not c.metadata.get("valid", True):  # the student's own action, not a teacher's answer
                    stats.skipped_invalid += 1
                    continue
                reason, action, corrected = c.reason, c.action, c.was_corrected
                if (only_corrected or method == "dpo") and not corrected:
                    stats.skipped_uncorrected += 1
                    continue
            if not action:
                continue
            target = format_target(reason, action)
            fitted = _fit_row(traj, t, target, prompt_format=prompt_format, history_k=history_k,
                              max_length=max_length, tokenizer=tokenizer, hard_max_length=hard_max_length,
                              answer_room=answer_room)
            if fitted is None:
                stats.dropped_too_long += 1
                continue
            if tokenizer is not None:
                stats.max_answer_tokens = max(stats.max_answer_tokens,
                                              len(tokenizer(target, add_special_tokens=False)["input_ids"]))
            prompt, used_k, clipped, tokens = fitted
            if used_k < min(history_k, t):
                stats.history_cut += 1
            stats.observation_clipped += int(clipped)
            stats.over_length += int(max_length is not None and tokens > max_length)
            if packing:
                pending.append((t, prompt, target, corrected, step.action))
                continue
            row: dict[str, Any] = {"prompt": prompt}
            if method == "sft":
                row["completion"] = [{"role": "assistant", "content": target}]
            else:
                original = step.raw_output.strip() or format_target(step.reason, step.action)
                row["chosen"] = [{"role": "assistant", "content": target}]
                row["rejected"] = [{"role": "assistant", "content": original}]
                if count is not None:
                    tokens = max(tokens, count(prompt + row["rejected"]))
            row["meta"] = {"iteration": iteration, "task_id": traj.task_id, "step": t, "tokens": tokens,
                           "was_corrected": corrected, "student_action": step.action}
            rows.append(row)
        for group in _windows(pending):
            rows.append(packed_row(group, tokenizer, iteration=iteration, task_id=traj.task_id))
    stats.rows += len(rows)
    return rows


def last_kept_step(corrections: Sequence[Correction], max_corrected: int) -> int | None:
    """The step of an episode's ``max_corrected``-th changed step; None (every step) when
    ``max_corrected`` is 0 or the episode has fewer changes.

    Why a limit: a failed episode goes wrong early and then, most of the time, loops (the same place
    re-examined, objects picked up and put down) for the rest of its step budget. Those later states are
    ones a corrected student would not reach, and on ALFWorld training on their corrections measured worse
    than the demonstrations alone; the first mistakes and their corrections are the realizable lessons."""
    changed = sorted(c.step_index for c in corrections
                     if c.was_corrected and c.metadata.get("valid", True))
    return changed[max_corrected - 1] if 0 < max_corrected <= len(changed) else None


def _windows(steps: list[tuple[int, list[dict[str, str]], str, bool, str]]
             ) -> list[list[tuple[int, list[dict[str, str]], str, bool, str]]]:
    """Consecutive fitted steps grouped by the step their chat starts at (``fit_episode_prompt`` restarts a
    chat only later, never earlier, as an episode goes on), so each group's prompts are prefixes of its
    last."""
    groups: dict[int, list] = {}
    for item in steps:
        t, prompt = item[0], item[1]
        groups.setdefault(t - sum(m["role"] == "assistant" for m in prompt), []).append(item)
    return list(groups.values())


def packed_row(group: list[tuple[int, list[dict[str, str]], str, bool, str]], tokenizer: Any, *,
               iteration: int, task_id: str) -> dict[str, Any]:
    """One SFT row for the corrected steps ``(t, prompt, target, corrected, student action)`` of one chat
    window: ``prompt`` is the student's chat up to the last step's observation, and each step's target is a
    branch (``{"at": j, "content": target}``) that continues ``prompt[:j]``, that step's own prompt.

    Trained with a tree attention mask (``leap_gym.agents.conversation.encode_tree``), every target sees
    exactly its own row's prompt, while the chat is computed once instead of once per step: an episode's
    corrected steps cost about one chat's tokens, not one chat per step."""
    trunk = group[-1][1]
    branches = []
    for _, prompt, target, _, _ in group:
        if trunk[:len(prompt)] != prompt:
            raise ValueError("packed steps must share one chat: a step's prompt is not a prefix of the last")
        branches.append({"at": len(prompt), "content": target})
    tokens = len(encode_tree(tokenizer, trunk, [(b["at"], b["content"]) for b in branches])[0]) \
        if tokenizer is not None else 0
    return {"prompt": trunk, "completion": [], "branches": branches,
            "meta": {"iteration": iteration, "task_id": task_id, "step": group[0][0], "tokens": tokens,
                     "steps": [g[0] for g in group], "was_corrected": any(g[3] for g in group),
                     "student_actions": [g[4] for g in group]}}


def aggregate(datasets: Sequence[Sequence[dict[str, Any]]], mode: str = "equal", seed: int = 0
              ) -> list[dict[str, Any]]:
    """Mix the datasets of iterations 0..i.

    ``equal`` (the paper): each non-empty dataset is shuffled and subsampled to the smallest one's size, so
    every iteration has the same weight however much data it produced; ``all``: the plain union; ``last``:
    only the newest dataset. The result is shuffled with ``seed``.
    """
    rng = random.Random(seed)
    parts = [list(d) for d in datasets if len(d)]
    if mode == "last":
        parts = [list(datasets[-1])] if datasets and len(datasets[-1]) else []
    elif mode == "equal" and parts:
        n = min(len(p) for p in parts)
        for p in parts:
            rng.shuffle(p)
        parts = [p[:n] for p in parts]
    elif mode not in ("equal", "all"):
        raise ValueError(f"aggregate mode must be equal, all or last, got {mode!r}")
    out = [row for p in parts for row in p]
    rng.shuffle(out)
    return out
