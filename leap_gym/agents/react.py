"""ReAct prompting baseline over any chat backend: the "teacher without privilege" and GPT-4o-style baselines.

Unlike the trained student (one self-contained prompt per step, actions only in the history), a ReAct agent
keeps the whole episode as a chat: each turn the env's observation (with the candidate actions) goes in as a
user message and the model answers ``Thought: ...`` then ``Action: ...``; its earlier thoughts stay in
context, as in ReAct (Yao et al., 2023) and the LEAP authors' ReAct baselines. Optional few-shot examples
(full example episodes as text) go in the system message.

A backend is anything with ``chat(messages, **params)`` returning a ``ChatResult`` (or a plain string), e.g.
``OpenAIChat`` or ``LocalChat`` (a local HF model); ``chat_many`` answers all the slots of a decision round in
one call when present. The agent is a ``TrajectoryAgent``: its chat is rebuilt from its record of each slot's
episode. It reads only ``task`` and ``admissible_actions`` from ``info`` after dropping privileged keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from leap_gym.agents.base import AgentOutput, TrajectoryAgent
from leap_gym.agents.prompting import env_rules, parse_output

REACT_ROLE = ("You are an agent solving a task in a text environment. Each turn you get an observation; "
              "think about what to do, then give exactly one action.")
REACT_FORMAT = "Answer in exactly this format:\nThought: <your reasoning>\nAction: <one action>"


def react_system_prompt(env: str | None = None, examples: Sequence[str] = ()) -> str:
    parts = [REACT_ROLE, env_rules(env), REACT_FORMAT]
    if examples:
        parts.append("Here are examples of solved tasks:")
        parts.extend(f"--- example {i + 1} ---\n{ex.strip()}" for i, ex in enumerate(examples))
    return "\n".join(parts)


def observation_message(observation: str, admissible_actions: Sequence[str] | None,
                        task: str | None = None) -> str:
    lines = [f"TASK: {task.strip()}"] if task else []
    lines.append(f"OBSERVATION: {observation.strip()}")
    if admissible_actions is not None:
        lines.append("CANDIDATE ACTIONS:\n" + "\n".join(f"- {a}" for a in admissible_actions))
    return "\n".join(lines)


class ReActAgent(TrajectoryAgent):
    """A prompting agent over any number of env slots, one backend for all (``chat_many`` answers the slots of
    a round in one call when the backend has it). ``max_turns`` and ``max_chars`` bound the chat (oldest turns
    go first, the task is restated), so a long episode fits a small model's context (a WebShop page is ~1-2k
    characters; a 2k-token model takes roughly 6k characters)."""

    def __init__(self, backend: Any, env: str | None = None, examples: Sequence[str] = (),
                 max_turns: int = 30, max_chars: int | None = None, privileged_keys: Sequence[str] = (),
                 **chat_params: Any):
        super().__init__(env_id=env or "", privileged_keys=privileged_keys)
        self.backend, self.env, self.max_turns, self.max_chars = backend, env, max(1, max_turns), max_chars
        self.system = react_system_prompt(env, examples)
        self.chat_params = chat_params
        self.format_errors = 0

    def messages(self, slot: int) -> list[dict[str, str]]:
        """The chat sent for ``slot``'s pending decision: system, then the last ``max_turns``
        observation/answer turns (fewer when ``max_chars`` would be exceeded; the current observation always
        stays).

        Each step of the episode is a user turn (its observation and candidates; the first one states the
        task) and, once answered, an assistant turn (the model's reply as it wrote it). Turns alternate and
        end with the current observation, so the kept tail starts with a user message; when turns were
        dropped, the task is restated there.
        """
        episode = self.episodes[slot]
        turns = []
        for t, step in enumerate(episode.steps):
            turns.append({"role": "user", "content": observation_message(
                step.observation, step.admissible_actions, episode.task if t == 0 else None)})
            if t < len(episode.steps) - 1:
                turns.append({"role": "assistant", "content": step.raw_output.strip()})
        keep = turns[-(2 * self.max_turns - 1):]
        if self.max_chars is not None:
            budget = self.max_chars - len(self.system)
            while len(keep) > 1 and sum(len(m["content"]) for m in keep) > budget:
                keep = keep[2:]  # one observation/answer pair; the tail still starts with a user turn
        if len(keep) < len(turns):
            head = f"TASK: {episode.task}\n(earlier turns omitted)\n"
            keep = [{"role": "user", "content": head + keep[0]["content"]}, *keep[1:]]
        return [{"role": "system", "content": self.system}, *keep]

    def decide(self, slots: Sequence[int]) -> list[AgentOutput]:
        convs = [self.messages(s) for s in slots]
        if hasattr(self.backend, "chat_many"):
            replies = self.backend.chat_many(convs, **self.chat_params)
        else:
            replies = [self.backend.chat(c, **self.chat_params) for c in convs]
        outs = []
        for slot, reply in zip(slots, replies, strict=True):
            out = parse_output(reply if isinstance(reply, str) else reply.text,
                               self.episodes[slot].steps[-1].admissible_actions)
            self.format_errors += int(not out.format_ok)
            outs.append(out)
        return outs
