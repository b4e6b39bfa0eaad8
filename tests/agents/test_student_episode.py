"""HFStudent in the episode format: the kept KV cache changes no answer, only new turns are computed, snapped
actions and new episodes are followed, long chats are rebuilt, nothing privileged reaches a prompt, and the
training rows of a trajectory hold exactly the tokens the student acted on."""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from leap_gym.agents.conversation import DEFAULT_OBS_CHARS, ChatSegments, encode_turns, episode_messages  # noqa: E402
from leap_gym.agents.student import HFStudent  # noqa: E402
from leap_gym.models import build_tiny_student  # noqa: E402

torch.set_num_threads(1)

SECRET = "PRIVSENTINEL_episode_drawer_9"


@pytest.fixture(scope="module")
def random_model():
    """A tiny model with random weights: its greedy answers are sensitive to every token of the context."""
    model, tok = build_tiny_student("tiny", seed=0)
    return model.eval(), tok


@pytest.fixture(scope="module")
def taught(random_model):
    """The tiny model taught the answer format on a few episode chats (~3 s), so reasons and actions are real
    text that the chat carries from turn to turn."""
    model, tok = copy.deepcopy(random_model[0]), random_model[1]
    rows = []
    for i in range(4):
        steps = [(f"You arrive at shelf {j}. you see a mug {j}.", f"look at shelf {j + 1}",
                  f"go to shelf {j + 1}") for j in range(i + 1)]
        msgs = episode_messages(f"put a mug in fridge {i}.", steps, env="alfworld")
        rows.append(encode_turns(tok, msgs, [j for j, m in enumerate(msgs) if m["role"] == "assistant"]))
    torch.manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(30):
        for ids, labels in rows:
            model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).loss.backward()
            opt.step()
            opt.zero_grad()
    return model.eval(), tok


def _student(model_tok, **kw) -> HFStudent:
    model, tok = model_tok
    kw.setdefault("max_new_tokens", 16)
    return HFStudent(model, tok, env="alfworld", prompt_format="episode", max_obs_chars=DEFAULT_OBS_CHARS,
                     dtype=torch.float32, **kw)


def _round(step: int, n: int = 3):
    """Observations of different lengths per slot (rows are left-padded differently) and their infos."""
    obs = [f"You arrive at shelf {step}." + " You see a mug." * (i + 1) for i in range(n)]
    infos = [{"task": f"put a mug in fridge {i}.",
              "admissible_actions": [f"go to shelf {j}" for j in range(4)]} for i in range(n)]
    return obs, infos


def _prompt_ids(tok, task, steps, obs):
    """The whole chat rendered by the template and tokenized at once (no cache, no segments)."""
    seg = ChatSegments(tok)
    text = seg.render(episode_messages(task, steps, obs, env="alfworld"), generation_prompt=True)
    return tok(text, add_special_tokens=False)["input_ids"]


def _reference_answer(student, ids):
    """Greedy answer of the bare model on one unpadded prompt, decoded as the student decodes."""
    with torch.inference_mode():
        out = student.model.generate(input_ids=torch.tensor([ids]),
                                     attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                     max_new_tokens=student.max_new_tokens,
                                     do_sample=False, eos_token_id=student.stop_ids,
                                     pad_token_id=student.tokenizer.pad_token_id,
                                     temperature=None, top_p=None, top_k=None)
    toks = out[0, len(ids):].tolist()
    stop = next((j for j, t in enumerate(toks) if t in student.stop_ids), None)
    return student.tokenizer.decode(toks[:len(toks) if stop is None else stop + 1], skip_special_tokens=True)


def test_no_privileged_state_or_candidate_list_in_episode_prompts(random_model):
    student = _student(random_model, max_new_tokens=4)
    obs, infos = _round(0)
    leaky = [{**i, "admissible_actions": i["admissible_actions"] + ["CANDIDATE_only_in_info"],
              "privileged": {"expert_action": SECRET, "expert_plan": [SECRET], "where": SECRET},
              "expert_action": SECRET} for i in infos]
    student.act_batch(obs, leaky)
    vector_info = {"task": np.array([i["task"] for i in infos], dtype=object), "_task": np.ones(3, bool),
                   "privileged": {"expert_action": np.array([SECRET] * 3, dtype=object),
                                  "_expert_action": np.ones(3, bool)},
                   "_privileged": np.ones(3, bool), "expert_plan": np.array([[SECRET]] * 3, dtype=object),
                   "_expert_plan": np.ones(3, bool)}
    for step in (1, 2):
        student.act_batch(_round(step)[0], vector_info)
        prompts = student.last_prompts
        assert len(prompts) == 3 and all(f"TASK: {infos[i]['task']}" in p for i, p in enumerate(prompts))
        assert all(f"You arrive at shelf {step}." in p for p in prompts)
        assert not any(SECRET in p or "CANDIDATE_only_in_info" in p for p in prompts)


@pytest.mark.parametrize("which", ["random", "taught"])
def test_cached_acting_equals_rebuilding_every_step(which, random_model, taught):
    model_tok = random_model if which == "random" else taught
    cached, rebuilt = _student(model_tok), _student(model_tok)
    steps: list[list[tuple[str, str, str]]] = [[], [], []]
    previous: list[list[int]] = []
    for step in range(5):
        obs, infos = _round(step)
        rebuilt._chats.clear()  # every chat rebuilt from the slot's episode (its reasons kept)
        before = (cached.stats["prompt_tokens"], rebuilt.stats["prompt_tokens"])
        outs, again = cached.act_batch(obs, infos), rebuilt.act_batch(obs, infos)
        assert [o.raw_text for o in outs] == [o.raw_text for o in again]
        assert cached._last_prompt_ids == rebuilt._last_prompt_ids
        for i in range(3):  # the bare model on the whole chat, unpadded and uncached, answers the same
            ids = _prompt_ids(cached.tokenizer, infos[i]["task"], steps[i], obs[i])
            assert cached._last_prompt_ids[i] == ids
            assert _reference_answer(cached, ids) == outs[i].raw_text
            steps[i].append((obs[i], outs[i].reason, outs[i].action))
        new_cached = cached.stats["prompt_tokens"] - before[0]
        new_rebuilt = rebuilt.stats["prompt_tokens"] - before[1]
        assert new_rebuilt == sum(len(p) for p in rebuilt._last_prompt_ids)
        if step:  # only the last answer, the new observation and the assistant header
            assert new_cached < new_rebuilt / 3
            assert new_cached == sum(len(p) - len(q) for p, q in zip(cached._last_prompt_ids, previous,
                                                                     strict=True))
        previous = cached._last_prompt_ids
    if which == "taught":  # the chats carried real reasons and actions
        assert sum(bool(r) for slot in steps for _, r, _ in slot) >= 6


def test_a_recorded_action_is_the_action_shown(taught):
    student = _student(taught)
    obs, infos = _round(0)
    first = student.act_batch(obs, infos)
    student.record_action(1, "go to shelf 3")  # the rollout snapped it
    obs2, _ = _round(1)
    student.act_batch(obs2, infos)
    want = _prompt_ids(student.tokenizer, infos[1]["task"], [(obs[1], first[1].reason, "go to shelf 3")],
                       obs2[1])
    assert student._last_prompt_ids[1] == want
    assert "ACTION: go to shelf 3" in student.last_prompts[1]
    assert f"ACTION: {first[0].action}" in student.last_prompts[0]


def test_a_new_episode_starts_a_fresh_chat(taught):
    student = _student(taught)
    for step in range(2):
        obs, infos = _round(step)
        outs = student.act_batch(obs, infos)
    obs, infos = _round(2)
    student.reset_batch(["put a mug in fridge 1."], indices=[1])  # slot 1's env reset (same task again)
    infos[2] = {**infos[2], "task": "heat an egg."}  # slot 2 moved on without an announcement
    before = student.stats["prompt_tokens"]
    again = student.act_batch(obs, infos)
    tok = student.tokenizer
    assert student._last_prompt_ids[1] == _prompt_ids(tok, "put a mug in fridge 1.", [], obs[1])
    assert student._last_prompt_ids[2] == _prompt_ids(tok, "heat an egg.", [], obs[2])
    # the new chats were prefilled on their own beside slot 0's cached one: the same answers as the bare model
    # on each whole chat, every new chat token counted, and each chat's cache covering its tokens
    for i in range(3):
        assert _reference_answer(student, student._last_prompt_ids[i]) == again[i].raw_text
        assert student._chats[i].cache[0][0].shape[-2] == len(student._last_prompt_ids[i])
    assert student.stats["prompt_tokens"] - before > len(student._last_prompt_ids[1]) + \
        len(student._last_prompt_ids[2])
    assert student.last_prompts[0].count("OBSERVATION:") == 3 and f"ACTION: {outs[0].action}" in \
        student.last_prompts[0]
    assert len(student._chats) == 3  # the old chats were let go


def test_a_slot_reset_in_place_is_not_answered_from_the_old_chat(taught):
    """A slot reset by the caller (with a new task or the same one) starts a new chat, never continued from
    the old episode's tokens."""
    student = _student(taught)
    for step in range(2):
        obs, infos = _round(step)
        student.act_batch(obs, infos)
    obs, infos = _round(2)
    student.reset_slot(0, "heat an egg.")
    infos[0]["task"] = "heat an egg."
    student.reset_slot(1, infos[1]["task"])
    student.act_batch(obs, infos)
    tok = student.tokenizer
    assert student._last_prompt_ids[0] == _prompt_ids(tok, "heat an egg.", [], obs[0])
    assert student._last_prompt_ids[1] == _prompt_ids(tok, infos[1]["task"], [], obs[1])
    assert student.last_prompts[2].count("OBSERVATION:") == 3


def test_a_chat_over_budget_is_rebuilt_from_its_latest_steps(taught):
    tok = taught[1]
    one_step = len(_prompt_ids(tok, "put a mug in fridge 0.", [], _round(0)[0][0]))
    budget = one_step + 90  # room for about two more steps
    student = _student(taught, max_prompt_tokens=budget)
    rebuilt = 0
    steps: list[tuple[str, str, str]] = []
    for step in range(8):
        obs, infos = _round(step, n=1)
        out = student.act_batch(obs, infos)[0]
        ids = student._last_prompt_ids[0]
        assert len(ids) + student.max_new_tokens <= budget
        # the latest steps, whole
        kept = next(s for s in range(len(steps) + 1)
                    if ids == _prompt_ids(tok, infos[0]["task"], steps[s:], obs[0]))
        rebuilt += kept > 0
        assert student.last_prompts[0].count("TASK: put a mug in fridge 0.") == 1
        assert out.format_ok and out.action  # still answers
        steps.append((obs[0], out.reason, out.action))
    assert rebuilt >= 3 and kept < len(steps) - 1


def test_training_rows_hold_exactly_the_tokens_the_student_acted_on(taught):
    """A real ALFWorld rollout by the student (snapping its actions), then correction rows for every step:
    each row's prompt tokens are the tokens the student had at that step, and the loss starts right after
    them."""
    from leap_gym.agents.prompting import parse_output
    from leap_gym.leap.dataset import build_dataset
    from leap_gym.leap.rollout import rollout
    from leap_gym.records import Correction

    class Recording(HFStudent):
        def act_slots(self, slots, observations, infos):
            keys = [(self.episodes[s].task, len(self.episodes[s].steps)) for s in slots]
            outs = super().act_slots(slots, observations, infos)
            for key, ids in zip(keys, self._last_prompt_ids, strict=True):
                seen[key] = list(ids)
            return outs

    seen: dict[tuple[str, int], list[int]] = {}
    model, tok = taught
    student = Recording(model, tok, env="leap/ALFWorld-v0", prompt_format="episode", max_new_tokens=16,
                        max_obs_chars=DEFAULT_OBS_CHARS, dtype=torch.float32, max_prompt_tokens=2048)
    trajs = rollout("leap/ALFWorld-v0", student, [0, 1], batch_size=2, max_steps=4, snap=True)
    assert len({t.task for t in trajs}) == 2 and all(len(t) == 4 for t in trajs)
    assert any(parse_output(s.raw_output).action != s.action for t in trajs for s in t.steps)  # snapped
    fixes = [[Correction(step_index=s, reason=f"teacher reason {s}", action="look", was_corrected=True)
              for s in range(len(t))] for t in trajs]
    rows = build_dataset(trajs, fixes, tokenizer=tok, prompt_format="episode", max_length=2048)
    assert len(rows) == 8
    for row in rows:
        traj = next(t for t in trajs if t.task_id == row["meta"]["task_id"])
        acted = seen[(traj.task, row["meta"]["step"])]
        msgs = row["prompt"] + row["completion"]
        ids, labels = encode_turns(tok, msgs, [len(row["prompt"])])
        assert ids[:len(acted)] == acted
        assert set(labels[:len(acted)]) == {-100} and labels[len(acted)] != -100
        assert tok.decode([x for x in labels if x != -100]).startswith(
            f"REASON: teacher reason {row['meta']['step']}\nACTION: look")


def test_episode_sampling_is_seeded(random_model):
    """Sampling in the episode format (the student's own decoding loop, not ``generate``) is reproducible per
    seed, and a different seed answers differently."""

    def run(seed):
        student = _student(random_model, do_sample=True, temperature=1.0, top_p=0.9, seed=seed)
        return [o.raw_text for step in range(3) for o in student.act_batch(*_round(step))]

    first = run(5)
    assert run(5) == first and run(6) != first


def test_a_model_cache_without_reservation_still_answers_the_same(taught, monkeypatch):
    """Models whose cache layers cannot be reserved (sliding windows, say) decode in the model's own cache,
    without releasing rows: the same answers."""
    from transformers import DynamicCache

    plain = _student(taught)  # what _episode_prefill_cache returns for such a model: its own empty cache
    monkeypatch.setattr(plain, "_episode_prefill_cache",
                        lambda ids, mask: DynamicCache(config=plain.model.config))
    reserved = _student(taught)
    for step in range(3):
        obs, infos = _round(step)
        assert [o.raw_text for o in plain.act_batch(obs, infos)] == \
            [o.raw_text for o in reserved.act_batch(obs, infos)]
