"""The episode as one chat: the student's prompt format for pretrained chat models, in training and acting
alike.

Turn by turn: a system message (role, the env's rules, the answer format), then one user turn per step
(``TASK: ...`` and the first observation, then each new observation) and one assistant turn per step
(``REASON: ...`` / ``ACTION: ...``, ``format_target``). Candidate actions are not listed: the student writes
the command (a near miss is snapped to the closest admissible one by the rollout), which keeps a step to about
the observation and the answer, ~70 tokens on ALFWorld instead of ~400 with the candidate list and a
re-rendered history. Because every earlier turn stays exactly as it was, a student acting step after step only
has to compute the new turns: its KV cache is kept across the episode
(``HFStudent(prompt_format="episode")``).

The token stream is built segment by segment (``encode_turns``): each message is tokenized on its own, an
assistant message as its header (``<|im_start|>assistant\\n``) and its body. Acting appends exactly those
segments as the episode goes on, and training rows are tokenized by the same function, so the tokens a student
is trained on are the tokens it acts on, with no drift at turn boundaries.

``fit_episode_prompt`` is the chat at step ``t`` of a trajectory fitted to a token budget (the chat restarts
at a later step when it outgrows the budget): training rows of corrected steps and the acting student both
call it.

Only student-view information goes in: the task, the observations and the student's own (or, in
demonstrations, the teacher's) reasons and actions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from leap_gym.agents.prompting import FORMAT_RULE, ROLE, FittedPrompt, Tokenize, clip_text, format_target
from leap_gym.records import Trajectory
from leap_gym.specs import get_spec

# The rules for an env without a benchmark spec (each spec carries its env's own,
# ``BenchmarkSpec.episode_rules``).
GENERIC_EPISODE_RULES = "Write one action in the form the environment uses."

# Long observations (WebShop pages) are clipped to this many characters in every turn.
DEFAULT_OBS_CHARS = 1000

# A chat that outgrows its token budget restarts at a later step (the task restated in its first turn).
# Restart points are multiples of this many steps, so a restarted chat has room to grow for several steps
# before the next restart: with any step allowed, a long episode restarts (and recomputes its whole chat) at
# every step.
WINDOW_STRIDE = 8


def window_starts(steps: int) -> list[int]:
    """The steps a chat over ``steps`` earlier steps may start at, earliest first (the last: no history)."""
    return sorted(set(range(0, steps, WINDOW_STRIDE)) | {steps})


def episode_system_prompt(env: str | None = None) -> str:
    """The env's rules for a student that writes its actions itself (no candidate list to copy from)."""
    spec = get_spec(env)
    rules = (spec.episode_rules or spec.rules) if spec else GENERIC_EPISODE_RULES
    return f"{ROLE}\n{rules}\n{FORMAT_RULE}"


def user_turn(task: str | None, observation: str, max_obs_chars: int | None = DEFAULT_OBS_CHARS) -> str:
    """A step's user message: the first one also states the task."""
    obs = f"OBSERVATION: {clip_text(observation, max_obs_chars)}"
    return f"TASK: {task.strip()}\n{obs}" if task is not None else obs


def episode_messages(task: str, steps: Sequence[tuple[str, str, str]], observation: str | None = None,
                     env: str | None = None, max_obs_chars: int | None = DEFAULT_OBS_CHARS
                     ) -> list[dict[str, str]]:
    """System, then a user and an assistant turn for each ``(observation, reason, action)`` of ``steps``, then
    the user turn of ``observation`` when given (the prompt of the next decision)."""
    msgs = [{"role": "system", "content": episode_system_prompt(env)}]
    for t, (obs, reason, action) in enumerate(steps):
        msgs.append({"role": "user", "content": user_turn(task if t == 0 else None, obs, max_obs_chars)})
        msgs.append({"role": "assistant", "content": format_target(reason, action)})
    if observation is not None:
        msgs.append({"role": "user", "content": user_turn(task if not steps else None, observation,
                                                          max_obs_chars)})
    return msgs


def fit_episode_prompt(trajectory: Trajectory, t: int, *, max_obs_chars: int | None = DEFAULT_OBS_CHARS,
                       tokenize: Tokenize | None = None, budget: int | None = None,
                       room: int = 0) -> FittedPrompt:
    """The chat the student has at step ``t`` of ``trajectory``: its own turns of ``steps[:t]`` (observations,
    reasons and actions) and the observation of ``steps[t]``, ready for the answer.

    Fitted to ``budget`` tokens (with ``tokenize``), ``room`` of them kept free for the answer: a chat that
    does not fit restarts at the next of ``window_starts`` (the task restated in its first turn), so it keeps
    its latest steps; the last start (no earlier steps) is kept whatever its size. Training rows of corrected
    steps and the acting student (rebuilding a slot's chat) both fit by this rule, so a row shows exactly the
    steps the student saw.
    """
    steps = [(s.observation, s.reason, s.action) for s in trajectory.steps[:t]]
    obs = trajectory.steps[t].observation
    for start in window_starts(t):
        messages = episode_messages(trajectory.task, steps[start:], obs, env=trajectory.env_id,
                                    max_obs_chars=max_obs_chars)
        if tokenize is None or not budget:
            return FittedPrompt(messages, t - start)
        ids = tokenize(messages)
        fits = len(ids) + room <= budget
        if fits or start == t:
            return FittedPrompt(messages, t - start, ids, fits)
    raise AssertionError("unreachable: the last window start has no earlier steps")


class ChatSegments:
    """Tokenizes a chat message by message with a tokenizer's chat template (plain role headers without one).

    ``segment(messages, j)`` is the text message ``j`` adds to the rendered chat, split into the part before
    its content (the role header) and the rest; rendering is checked to be prefix-stable, which holds for
    ChatML, Llama-3 and Zephyr-style templates (a template that rewrites earlier turns cannot be used this
    way).
    """

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self.templated = bool(getattr(tokenizer, "chat_template", None))

    def render(self, messages: Sequence[dict[str, str]], generation_prompt: bool = False) -> str:
        if not messages:
            return ""
        if self.templated:
            return self.tokenizer.apply_chat_template(list(messages), tokenize=False,
                                                      add_generation_prompt=generation_prompt)
        body = "".join(f"{m['role'].upper()}:\n{m['content']}\n\n" for m in messages)
        return body + ("ASSISTANT:\n" if generation_prompt else "")

    def segment(self, messages: Sequence[dict[str, str]], j: int) -> tuple[str, str]:
        """``(header, rest)`` of message ``j``: ``header`` is what the generation prompt adds for its role."""
        before = self.render(messages[:j])
        full = self.render(messages[:j + 1])
        if not full.startswith(before):
            raise ValueError("the tokenizer's chat template is not prefix-stable; use prompt_format='step'")
        added = full[len(before):]
        if messages[j]["role"] == "assistant":
            prompt = self.render(messages[:j], generation_prompt=True)
            header = prompt[len(before):]
            if not (prompt.startswith(before) and added.startswith(header)):
                raise ValueError("the chat template's generation prompt is not the assistant header")
            return header, added[len(header):]
        return added, ""

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

    def header_ids(self, messages: Sequence[dict[str, str]]) -> list[int]:
        """Tokens of the assistant header that follows ``messages`` (where a generated answer starts)."""
        before = self.render(messages)
        return self.encode(self.render(messages, generation_prompt=True)[len(before):])

    def turn_ids(self, messages: Sequence[dict[str, str]], j: int) -> tuple[list[int], list[int]]:
        """``(header tokens, body tokens)`` of message ``j`` (body empty for non-assistant messages)."""
        header, body = self.segment(messages, j)
        return self.encode(header), self.encode(body)


def encode_turns(tokenizer: Any, messages: Sequence[dict[str, str]], trained: Sequence[int]
                 ) -> tuple[list[int], list[int]]:
    """``(input_ids, labels)`` of a chat; loss (labels = ids) only on the bodies of the assistant messages
    whose indexes are in ``trained`` (their end-of-turn token included), -100 elsewhere."""
    ids, labels, _, _ = encode_tree(tokenizer, messages, (), trained)
    return ids, labels


# ``fork`` of the trunk's tokens in ``encode_tree``; a branch's tokens hold the trunk position it attaches at.
TRUNK = -1


def encode_tree(tokenizer: Any, messages: Sequence[dict[str, str]], branches: Sequence[tuple[int, str]],
                trained: Sequence[int] = ()) -> tuple[list[int], list[int], list[int], list[int]]:
    """One sequence for several answers that each continue a prefix of the same chat: ``(input_ids, labels,
    position_ids, fork)``.

    ``messages`` (the trunk) is tokenized message by message, with loss on the bodies of the assistant
    messages in ``trained`` (``encode_turns`` is the trunk alone). Each branch ``(j, answer)``
    is the assistant turn ``answer`` as it would follow ``messages[:j]``: its tokens (header, then the body
    with loss) are appended after the trunk, positioned from where message ``j`` starts. ``fork`` is ``TRUNK``
    for the trunk's tokens and that start for a branch's, which is all ``tree_attention_mask`` needs: a branch
    sees the trunk before its fork and its own earlier tokens, the trunk sees only itself. So the corrected
    answers of one episode share a single pass over the student's chat, and each is trained on exactly the
    tokens a row of its own (``messages[:j]`` + answer, ``encode_turns``) would hold.
    """
    seg = ChatSegments(tokenizer)
    ids: list[int] = []
    labels: list[int] = []
    starts: list[int] = []
    train = set(trained)
    for j in range(len(messages)):
        starts.append(len(ids))
        head, body = seg.turn_ids(messages, j)
        ids += head + body
        labels += [-100] * len(head) + (body if j in train else [-100] * len(body))
    starts.append(len(ids))
    positions = list(range(len(ids)))
    fork = [TRUNK] * len(ids)
    for j, answer in branches:
        if not 0 < j <= len(messages):
            raise ValueError(f"a branch must follow a prefix of the chat: message {j} of {len(messages)}")
        head, body = seg.turn_ids(list(messages[:j]) + [{"role": "assistant", "content": answer}], j)
        ids += head + body
        labels += [-100] * len(head) + body
        positions += range(starts[j], starts[j] + len(head) + len(body))
        fork += [starts[j]] * (len(head) + len(body))
    return ids, labels, positions, fork


def tree_attention_mask(position_ids: Any, fork: Any) -> Any:
    """The ``(batch, 1, length, length)`` boolean attention mask (True: attend) of ``encode_tree`` sequences
    (tensors ``(batch, length)``). A padding token (``fork`` below ``TRUNK``) sees the padding before it and
    itself, so no row of the mask is empty."""
    import torch

    length = fork.shape[1]
    index = torch.arange(length, device=fork.device)
    causal = index[None, :] <= index[:, None]
    same = fork[:, :, None] == fork[:, None, :]
    trunk_before_fork = (fork[:, None, :] == TRUNK) & (position_ids[:, None, :] < fork[:, :, None])
    return ((same & causal) | trunk_before_fork)[:, None]
