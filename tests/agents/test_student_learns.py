"""End to end on the toy env: a tiny student trained with LoRA + embeddings/head (the from-scratch recipe) on
the student prompt format learns a search policy, answers in format, and batched acting equals single
acting."""

from __future__ import annotations

import random

import gymnasium as gym
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from leap_gym.agents.prompting import build_messages, format_target  # noqa: E402
from tests.toy_env import TOY_ID  # noqa: E402


def search_policy(room: str, tried: set[str]) -> tuple[str, str]:
    """Look in the kitchen first, then the garden: solves every toy episode without privileged state."""
    if room == "hall":
        return "The key is often in the kitchen, so I look there first.", "go to kitchen"
    return "The key was not in the kitchen, so it must be in the garden.", "go to garden"


def demonstrations(n_episodes: int = 40) -> list[list[dict]]:
    env = gym.make(TOY_ID)
    rows = []
    for seed in range(n_episodes):
        obs, info = env.reset(seed=seed)
        history: list[tuple[str, str]] = []
        room = "hall"
        while True:
            reason, action = search_policy(room, set())
            msgs = build_messages(info["task"], history, obs, info["admissible_actions"], env="toy")
            rows.append(msgs + [{"role": "assistant", "content": format_target(reason, action)}])
            history.append((obs, action))
            obs, _, term, trunc, info = env.step(action)
            room = action.removeprefix("go to ")
            if term or trunc:
                break
    return rows


@pytest.mark.slow
def test_tiny_student_learns_toy_search_policy():
    from peft import get_peft_model

    from leap_gym.agents.student import HFStudent
    from leap_gym.models import build_model, build_tokenizer, env_text_corpus, lora_config_for

    torch.set_num_threads(1)
    torch.manual_seed(0)
    rows = demonstrations()
    texts = [m["content"] for r in rows for m in r]
    tok = build_tokenizer(env_text_corpus(texts))
    model = get_peft_model(build_model(tok, "tiny", seed=0), lora_config_for(build_model(tok, "tiny")))
    encoded = [tok.apply_chat_template(r, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
               for r in rows]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    rng = random.Random(0)
    model.train()
    for _ in range(150):
        batch = rng.sample(encoded, 8)
        width = max(len(e["input_ids"]) for e in batch)
        ids = torch.full((8, width), tok.pad_token_id)
        labels = torch.full((8, width), -100)
        attn = torch.zeros((8, width), dtype=torch.long)
        for i, e in enumerate(batch):
            n = len(e["input_ids"])
            ids[i, :n] = torch.tensor(e["input_ids"])
            attn[i, :n] = 1
            mask = torch.tensor(e["assistant_masks"], dtype=torch.bool)
            labels[i, :n] = torch.where(mask, ids[i, :n], torch.tensor(-100))
        loss = model(input_ids=ids, attention_mask=attn, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    assert loss.item() < 0.5

    student = HFStudent(model, tok, env="toy", max_new_tokens=40, batch_size=8)
    envs = gym.vector.SyncVectorEnv([lambda: gym.make(TOY_ID) for _ in range(8)])
    obs, infos = envs.reset(seed=100)
    student.reset_batch(8)
    done = [False] * 8
    won = [False] * 8
    for _ in range(3):  # the search policy ends every episode within two steps
        outs = student.act_batch(list(obs), infos)
        assert all(o.format_ok for i, o in enumerate(outs) if not done[i]), [o.raw_text for o in outs]
        obs, _, term, trunc, infos = envs.step([o.action for o in outs])
        for i in range(8):
            if not done[i] and (term[i] or trunc[i]):
                done[i], won[i] = True, bool(infos["won"][i])
        if all(done):
            break
    envs.close()
    assert sum(won) == 8

    single = HFStudent(model, tok, env="toy", max_new_tokens=40)
    env = gym.make(TOY_ID)
    o, info = env.reset(seed=100)
    single.reset(info["task"])
    first = single.act(o, info)
    assert first.action == "go to kitchen" and first.reason.startswith("The key is often in the kitchen")
