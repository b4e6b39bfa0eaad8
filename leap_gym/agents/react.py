"""ReAct prompting baseline over any chat backend: the "teacher without privilege" and GPT-4o-style baselines.

Unlike the trained student (one self-contained prompt per step, actions only in the history), a ReAct agent
keeps the whole episode as a chat: each turn the env's observation (with the candidate actions) goes in as a
user message and the model answers ``Thought: ...`` then ``Action: ...``; its earlier thoughts stay in context,
as in ReAct (Yao et al., 2023) and the LEAP authors' ReAct baselines. Optional few-shot examples (full example
episodes as text) go in the system message.

A backend is anything with ``chat(messages, **params)`` returning a ``ChatResult`` (or a plain string), e.g.
``OpenAIChat`` or ``LocalChat`` (a local HF model); ``chat_many`` is used for ``act_batch`` when present.
The agent reads only ``task`` and ``admissible_actions`` from ``info`` after dropping privileged keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from leap_gym.agents.base import Agent, AgentOutput
from leap_gym.agents.prompting import env_rules, parse_output
from leap_gym.agents.student import split_vector_info
from leap_gym.core import PRIVILEGED_INFO_KEYS
from leap_gym.wrappers import strip_privileged

REACT_ROLE = ("You are an agent solving a task in a text environment. Each turn you get an observation; "
              "think about what to do, then give exactly one action.")
REACT_FORMAT = "Answer in exactly this format:\nThought: <your reasoning>\nAction: <one action>"


def react_system_prompt(env: str | None = None, examples: Sequence[str] = ()) -> str:
    parts = [REACT_ROLE, env_rules(env), REACT_FORMAT]
    if examples:
        parts.append("Here are examples of solved tasks:")
        parts.extend(f"--- example {i + 1} ---\n{ex.strip()}" for i, ex in enumerate(examples))
    return "\n".join(parts)


def observation_message(observation: str, admissible_actions: Sequence[str] | None, task: str | None = None) -> str:
    lines = [f"TASK: {task.strip()}"] if task else []
    lines.append(f"OBSERVATION: {observation.strip()}")
    if admissible_actions is not None:
        lines.append("CANDIDATE ACTIONS:\n" + "\n".join(f"- {a}" for a in admissible_actions))
    return "\n".join(lines)


class ReActAgent(Agent):
    """A prompting agent; ``max_turns`` and ``max_chars`` bound the chat (oldest turns go first, the task is
    restated), so a long episode fits a small model's context (a WebShop page is ~1-2k characters; a 2k-token
    model takes roughly 6k characters)."""

    def __init__(self, backend: Any, env: str | None = None, examples: Sequence[str] = (), max_turns: int = 30,
                 max_chars: int | None = None, privileged_keys: Sequence[str] = (), **chat_params: Any):
        self.backend, self.env, self.max_turns, self.max_chars = backend, env, max(1, max_turns), max_chars
        self.system = react_system_prompt(env, examples)
        self.chat_params = chat_params
        self.privileged_keys = PRIVILEGED_INFO_KEYS | frozenset(privileged_keys)
        self.chats: list[list[dict[str, str]]] = [[]]
        self.tasks: list[str] = [""]
        self.format_errors = 0

    def reset(self, task: str = "") -> None:
        self.tasks, self.chats = [task], [[]]

    def reset_batch(self, tasks: int | Sequence[str], indices: Sequence[int] | None = None) -> None:
        """All slots (``tasks`` or a count), or only the slots in ``indices`` (vector-env autoreset)."""
        if isinstance(tasks, int):
            tasks = [""] * (tasks if indices is None else len(indices))
        if indices is None:
            self.tasks, self.chats = list(tasks), [[] for _ in tasks]
            return
        for i, task in zip(indices, tasks, strict=True):
            self.tasks[i], self.chats[i] = task, []

    def messages(self, i: int) -> list[dict[str, str]]:
        """The chat sent for env slot ``i``: system, then the last ``max_turns`` observation/answer turns
        (fewer when ``max_chars`` would be exceeded; the current observation always stays).

        Turns alternate user/assistant and end with the current observation, so the kept tail starts with a
        user message; when turns were dropped, the task is restated there.
        """
        turns = self.chats[i]
        keep = turns[-(2 * self.max_turns - 1):]
        if self.max_chars is not None:
            budget = self.max_chars - len(self.system)
            while len(keep) > 1 and sum(len(m["content"]) for m in keep) > budget:
                keep = keep[2:]  # one observation/answer pair; the tail still starts with a user turn
        if len(keep) < len(turns):
            head = f"TASK: {self.tasks[i]}\n(earlier turns omitted)\n"
            keep = [{"role": "user", "content": head + keep[0]["content"]}, *keep[1:]]
        return [{"role": "system", "content": self.system}, *keep]

    def act(self, observation: str, info: dict[str, Any]) -> AgentOutput:
        return self.act_batch([observation], [info])[0]

    def act_batch(self, observations: Sequence[str], infos: Any) -> list[AgentOutput]:
        """One decision per env; ``infos`` is a list of dicts or a vector-env info dict."""
        n = len(observations)
        if len(self.chats) != n:
            self.reset_batch(n)
        if isinstance(infos, Mapping):
            infos = strip_privileged(dict(infos), self.privileged_keys)
        cands = []
        for i, (obs, info) in enumerate(zip(observations, split_vector_info(infos, n), strict=True)):
            view = strip_privileged(info, self.privileged_keys)
            if isinstance(view.get("task"), str) and view["task"]:
                self.tasks[i] = view["task"]
            acts = view.get("admissible_actions")
            cands.append([str(a) for a in acts] if acts is not None else None)
            first = not self.chats[i]
            self.chats[i].append({"role": "user", "content": observation_message(
                str(obs), cands[-1], self.tasks[i] if first else None)})
        convs = [self.messages(i) for i in range(n)]
        if hasattr(self.backend, "chat_many"):
            replies = self.backend.chat_many(convs, **self.chat_params)
        else:
            replies = [self.backend.chat(c, **self.chat_params) for c in convs]
        outs = []
        for i, reply in enumerate(replies):
            text = reply if isinstance(reply, str) else reply.text
            out = parse_output(text, cands[i])
            self.format_errors += int(not out.format_ok)
            self.chats[i].append({"role": "assistant", "content": text.strip()})
            outs.append(out)
        return outs
