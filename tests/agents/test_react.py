"""ReActAgent: chat bookkeeping, parsing, privilege stripping, over a rule backend and a local model
backend."""

from __future__ import annotations

import re

import gymnasium as gym
import pytest

from leap_gym.agents.backends.openai_chat import ChatResult
from leap_gym.agents.react import ReActAgent, react_system_prompt
from tests.toy_env import TOY_ID


class RuleBackend:
    """Answers like a sensible model: explores rooms in order, never revisiting; records every chat it
    gets."""

    def __init__(self):
        self.seen: list[list[dict]] = []

    def chat(self, messages, **params):
        self.seen.append(messages)
        answers = " ".join(m["content"] for m in messages if m["role"] == "assistant").lower()
        tried = set(re.findall(r"action: (go to \w+)", answers)) | {"go to hall"}
        cands = re.findall(r"^- (.+)$", messages[-1]["content"], re.M)
        choice = next((c for c in cands if c not in tried), cands[0])
        return ChatResult(text=f"Thought: I have not looked there yet.\nAction: {choice.upper()}")


def test_react_solves_toy_env_and_keeps_the_chat():
    backend = RuleBackend()
    agent = ReActAgent(backend, env="leap-test/Toy-v0", temperature=0.0)
    env = gym.make(TOY_ID)
    wins = 0
    for seed in range(4):
        obs, info = env.reset(seed=seed)
        agent.reset(info["task"])
        for _ in range(5):
            out = agent.act(obs, info)
            assert out.format_ok and out.action in info["admissible_actions"]  # snapped from upper case
            assert out.reason == "I have not looked there yet."
            obs, _, term, trunc, info = env.step(out.action)
            if term or trunc:
                wins += int(info["won"])
                break
    assert wins == 4
    first, later = backend.seen[0], backend.seen[-1]
    assert first[0]["role"] == "system" and first[0]["content"] == react_system_prompt("leap-test/Toy-v0")
    assert "TASK: find the key" in first[1]["content"] and "CANDIDATE ACTIONS" in first[1]["content"]
    assert [m["role"] for m in later[1:]] == ["user", "assistant"] * ((len(later) - 2) // 2) + ["user"]


def test_react_trims_turns_and_strips_privileged():
    backend = RuleBackend()
    agent = ReActAgent(backend, max_turns=2, privileged_keys=("secret",))
    agent.reset("find the key")
    info = {"task": "find the key", "admissible_actions": ["go to kitchen", "go to garden"],
            "privileged": {"expert_action": "PRIVSENTINEL"}, "secret": "PRIVSENTINEL2"}
    for t in range(4):
        agent.act(f"obs {t}", info)
    last = backend.seen[-1]
    assert len(last) == 1 + 3
    assert "(earlier turns omitted)" in last[1]["content"] and "obs 2" in last[1]["content"]
    assert all("PRIVSENTINEL" not in m["content"] for chat in backend.seen for m in chat)


def test_react_character_budget_keeps_the_current_observation():
    backend = RuleBackend()
    agent = ReActAgent(backend, max_chars=len(react_system_prompt()) + 700)
    info = {"task": "find the key", "admissible_actions": ["go to kitchen", "go to garden"]}
    for t in range(6):
        agent.act(f"obs {t} " + "x" * 200, info)
    last = backend.seen[-1]
    assert sum(len(m["content"]) for m in last[1:]) <= 700
    assert "obs 5 " in last[-1]["content"] and "(earlier turns omitted)" in last[1]["content"]
    assert [m["role"] for m in last[1:]][0] == "user" and last[-1]["role"] == "user"
    tiny = ReActAgent(backend, max_chars=10)  # a budget below one observation still sends the current one
    tiny.act("a long observation " * 20, info)
    assert "a long observation" in backend.seen[-1][-1]["content"]


def test_react_format_errors_counted():
    class Mumbler:
        def chat(self, messages, **params):
            return "I am not sure."

    agent = ReActAgent(Mumbler())
    out = agent.act("You are in the hall.", {"task": "t", "admissible_actions": ["look"]})
    assert not out.format_ok and agent.format_errors == 1


def test_react_over_local_model_batched(tmp_path):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from leap_gym.agents.backends import LocalChat
    from leap_gym.agents.student import HFStudent
    from leap_gym.models import build_tiny_student

    model, tok = build_tiny_student("tiny")
    backend = LocalChat(HFStudent(model, tok), max_tokens=8)
    agent = ReActAgent(backend)
    infos = [{"task": f"task {i}", "admissible_actions": ["look"]} for i in range(3)]
    outs = agent.act_batch([f"obs {i}" for i in range(3)], infos)
    again = [ReActAgent(LocalChat(HFStudent(model, tok), max_tokens=8)).act(f"obs {i}", infos[i])
             for i in range(3)]
    assert [o.raw_text for o in outs] == [o.raw_text for o in again]
    # observation + answer per slot
    assert [[s.raw_output for s in agent.episodes[i].steps] for i in range(3)] == [[o.raw_text] for o in outs]


def test_one_react_agent_plays_all_slots_of_a_rollout():
    """An instance is a BatchAgent: each decision round is one ``chat_many`` call over the live slots, and the
    episodes are the ones a separate agent per slot plays."""
    from leap_gym.leap.rollout import rollout

    class ManyBackend(RuleBackend):
        def __init__(self):
            super().__init__()
            self.rounds: list[int] = []

        def chat_many(self, conversations, **params):
            self.rounds.append(len(conversations))
            return [self.chat(c, **params) for c in conversations]

    backend = ManyBackend()
    batched = rollout(TOY_ID, ReActAgent(backend), range(5), batch_size=3, seed=1)
    assert max(backend.rounds) == 3 and sum(backend.rounds) == sum(len(t) for t in batched)
    alone = rollout(TOY_ID, lambda: ReActAgent(RuleBackend()), range(5), batch_size=3, seed=1)
    assert [[(s.observation, s.raw_output) for s in t.steps] for t in batched] == \
        [[(s.observation, s.raw_output) for s in t.steps] for t in alone]
    assert all(t.won for t in batched)
