"""Training rows from trajectories and corrections: on-policy prompts, corrected targets, equal-share aggregation.

A row's prompt is exactly what the student saw when it acted (``build_messages`` over the student's own history,
observation and candidates: never ``info``, so no privileged text can enter); its completion is
``format_target(corrected reason, corrected action)``. Rows use TRL's conversational prompt/completion format, for
which ``SFTTrainer`` puts the loss on the completion only, and ``DPOTrainer`` reads ``chosen``/``rejected``.

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

from leap_gym.agents.conversation import ChatSegments, encode_turns, episode_messages, window_starts
from leap_gym.agents.prompting import build_messages, format_target
from leap_gym.core import Correction, Trajectory

TokenCounter = Callable[[list[dict[str, str]]], int]


def history_of(trajectory: Trajectory, t: int) -> list[tuple[str, str]]:
    """The student's own ``(observation, action)`` pairs before step ``t`` (no reasons, as the paper)."""
    return [(s.observation, s.action) for s in trajectory.steps[:t]]


def prompt_messages(trajectory: Trajectory, t: int, k: int, max_obs_chars: int | None = None
                    ) -> list[dict[str, str]]:
    """The chat prompt the student saw (or would see) at step ``t`` with the last ``k`` history steps;
    ``max_obs_chars`` clips the current observation (only used when a row cannot fit otherwise)."""
    step = trajectory.steps[t]
    obs = step.observation
    if max_obs_chars is not None and len(obs) > max_obs_chars:
        obs = obs[:max_obs_chars].rstrip() + " ..."
    return build_messages(trajectory.task, history_of(trajectory, t), obs, step.admissible_actions,
                          k=k, env=trajectory.env_id)


def chat_token_counter(tokenizer: Any) -> TokenCounter:
    """Counts tokens of a full chat (prompt + assistant answer) with the tokenizer's own chat template."""

    def count(messages: list[dict[str, str]]) -> int:
        ids = tokenizer.apply_chat_template(messages, tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return len(ids)

    return count


def fit_prompt(trajectory: Trajectory, t: int, completion: str, k: int, max_length: int | None,
               count: TokenCounter | None, hard_max_length: int | None = None
               ) -> tuple[list[dict[str, str]], int, bool, int] | None:
    """The longest-history prompt (at most ``k`` steps) whose row fits ``max_length`` tokens:
    ``(prompt, k used, observation clipped, tokens)``.

    Without history, a long current observation (a WebShop page) is clipped from its end; if the row still does
    not fit (a long candidate list), the history-free row is kept when it fits ``hard_max_length`` (default
    twice ``max_length``), since dropping it would remove exactly the hard states from the data. The target is
    never cut; ``None`` means the row cannot be kept.
    """
    answer = [{"role": "assistant", "content": completion}]
    if count is None or max_length is None:
        return prompt_messages(trajectory, t, min(k, t)), min(k, t), False, 0
    for kk in range(min(k, t), -1, -1):
        prompt = prompt_messages(trajectory, t, kk)
        n = count(prompt + answer)
        if n <= max_length:
            return prompt, kk, False, n
    bare, bare_n = prompt, n
    chars = len(trajectory.steps[t].observation)
    while chars > 200:
        chars //= 2
        prompt = prompt_messages(trajectory, t, 0, max_obs_chars=chars)
        n = count(prompt + answer)
        if n <= max_length:
            return prompt, 0, True, n
    if bare_n <= (hard_max_length or 2 * max_length):
        return bare, 0, False, bare_n
    return None


def _steps_of(trajectory: Trajectory, end: int) -> list[tuple[str, str, str]]:
    """``(observation, reason, action)`` of steps ``0..end-1``: the turns the student's chat holds then."""
    return [(s.observation, s.reason, s.action) for s in trajectory.steps[:end]]


def _chat_tokens(tokenizer: Any, messages: list[dict[str, str]]) -> int:
    return len(encode_turns(tokenizer, messages, ())[0])


def episode_rows(trajectory: Trajectory, tokenizer: Any, max_length: int | None) -> list[tuple[list, list, int]]:
    """A demonstration as chats in the episode format, loss on every answer: ``(prompt, completion, tokens)``.

    One chat holds the whole episode when it fits ``max_length`` tokens; a longer one is cut into consecutive
    windows, each restating the task, so every step is trained once. A single step that cannot fit alone is
    kept whole (the target is never cut)."""
    steps = _steps_of(trajectory, len(trajectory))
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


def episode_prompt(trajectory: Trajectory, t: int, completion: str, tokenizer: Any, max_length: int | None,
                   answer_room: int = 0) -> tuple[list[dict[str, str]], int, int]:
    """The chat the student had at step ``t`` (its own earlier observations, reasons and actions):
    ``(prompt, steps shown, tokens of prompt + completion)``. Its latest steps are kept while the prompt leaves
    ``answer_room`` of ``max_length`` tokens free: ``HFStudent``'s rule (``max_prompt_tokens``, ``answer_room``)
    for a chat that outgrows its budget, so a row shows exactly the steps the student saw (without a room, the
    prompt and ``completion`` must fit)."""
    steps, obs = _steps_of(trajectory, t), trajectory.steps[t].observation
    answer = [{"role": "assistant", "content": completion}]
    for start in window_starts(len(steps)):
        prompt = episode_messages(trajectory.task, steps[start:], obs, env=trajectory.env_id)
        if tokenizer is None or not max_length:
            return prompt, len(steps) - start, 0
        n = _chat_tokens(tokenizer, prompt + answer)
        used = n if not answer_room else \
            _chat_tokens(tokenizer, prompt) + len(ChatSegments(tokenizer).header_ids(prompt)) + answer_room
        if used <= max_length or start == len(steps):
            return prompt, len(steps) - start, n
    raise AssertionError("unreachable")


@dataclass
class DatasetStats:
    rows: int = 0
    dropped_too_long: int = 0
    skipped_uncorrected: int = 0
    skipped_invalid: int = 0  # steps the teacher failed to correct (metadata valid: false): never trained on
    history_cut: int = 0  # rows shown fewer than history_k steps to fit max_length
    observation_clipped: int = 0  # rows whose current observation was clipped to fit (no history left to cut)
    over_length: int = 0  # rows kept longer than max_length (no history, yet too many candidates)
    # longest target (REASON + ACTION) in tokens: the student must be allowed to generate at least this many
    max_answer_tokens: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def build_dataset(trajectories: Sequence[Trajectory], corrections: Sequence[Sequence[Correction]] | None = None,
                  *, method: str = "sft", history_k: int = 4, max_length: int | None = None,
                  tokenizer: Any = None, only_corrected: bool = False, iteration: int = 0,
                  stats: DatasetStats | None = None, hard_max_length: int | None = None,
                  prompt_format: str = "step", answer_room: int = 0) -> list[dict[str, Any]]:
    """Rows for ``SFTTrainer`` (``prompt``/``completion``) or ``DPOTrainer`` (``prompt``/``chosen``/``rejected``).

    ``corrections[i]`` belongs to ``trajectories[i]``; without corrections the trajectories are demonstrations
    and their own reasons/actions are the targets (iteration 0). DPO rows are made only where the correction
    differs from what the student did (``rejected`` = the student's original answer). A correction the teacher
    failed to make (``metadata["valid"]`` false) carries the student's own action and is skipped. ``tokenizer``
    (with a chat template) is needed to enforce ``max_length``.

    ``prompt_format="episode"`` builds rows in the episode format (``leap_gym.agents.conversation``): a
    demonstration becomes one multi-turn chat with loss on every answer (``completion`` holds the turns after
    the first observation), a corrected step the student's own chat up to that step plus the corrected answer,
    fitted by the student's rule with ``answer_room`` (``episode_prompt``).
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
                                      "tokens": tokens, "was_corrected": False, "turns": len(completion) // 2 + 1}})
                stats.over_length += int(max_length is not None and tokens > max_length)
                if tokenizer is not None:
                    stats.max_answer_tokens = max([stats.max_answer_tokens] + [
                        len(tokenizer(m["content"], add_special_tokens=False)["input_ids"])
                        for m in completion if m["role"] == "assistant"])
            continue
        fixes = {c.step_index: c for c in corrections[i]} if corrections is not None else None
        for t, step in enumerate(traj.steps):
            if fixes is None:
                reason, action, corrected = step.reason, step.action, False
            else:
                if t not in fixes:
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
            if prompt_format == "episode":
                prompt, shown, n = episode_prompt(traj, t, target, tokenizer, max_length, answer_room)
                fitted = (prompt, min(shown, history_k) if shown < t else history_k, False, n)
            else:
                fitted = fit_prompt(traj, t, target, history_k, max_length, count, hard_max_length)
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
    stats.rows += len(rows)
    return rows


def aggregate(datasets: Sequence[Sequence[dict[str, Any]]], mode: str = "equal", seed: int = 0
              ) -> list[dict[str, Any]]:
    """Mix the datasets of iterations 0..i.

    ``equal`` (the paper): each non-empty dataset is shuffled and subsampled to the smallest one's size, so every
    iteration has the same weight however much data it produced; ``all``: the plain union; ``last``: only the
    newest dataset. The result is shuffled with ``seed``.
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
