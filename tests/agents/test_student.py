"""HFStudent: batched acting equals single acting, candidates constrain, seeds reproduce, nothing privileged
leaks."""

from __future__ import annotations

import gymnasium as gym
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from leap_gym.agents.base import INVALID_ACTION, split_vector_info  # noqa: E402
from leap_gym.agents.student import HFStudent  # noqa: E402
from leap_gym.models import build_tiny_student  # noqa: E402
from leap_gym.records import Step, Trajectory  # noqa: E402
from tests.toy_env import TOY_ID  # noqa: E402

torch.set_num_threads(1)

SENTINELS = ("PRIVSENTINEL_expert", "PRIVSENTINEL_plan", "PRIVSENTINEL_room", "PRIVSENTINEL_extra")


class LeakyToy(gym.Wrapper):
    """The toy env with unmistakable privileged values, inside ``privileged`` and in an extra privileged
    key."""

    def _mark(self, info):
        info = dict(info)
        info["privileged"] = {**info["privileged"], "expert_action": SENTINELS[0],
                              "expert_plan": [SENTINELS[1]], "key_room": SENTINELS[2]}
        info["secret"] = SENTINELS[3]
        return info

    def reset(self, **kw):
        obs, info = self.env.reset(**kw)
        return obs, self._mark(info)

    def step(self, action):
        obs, r, term, trunc, info = self.env.step(action)
        return obs, r, term, trunc, self._mark(info)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny")
    model, tok = build_tiny_student("tiny", seed=0, save_to=str(path))
    return model, tok, path


def _prompt_ids(student, task, history, obs, cands):
    """The student's prompt ids for ``obs`` after ``history`` (its own ``(observation, action)`` pairs)."""
    steps = [Step(observation=o, action=a) for o, a in history] + [Step(observation=obs, action="",
                                                                        admissible_actions=cands)]
    return student._step_prompt_ids(Trajectory(env_id=student.env_id, task_id="", task=task, steps=steps))


def _obs_infos(n):
    obs = [f"You arrive at shelf {i}. On the shelf {i}, you see a mug {i}." for i in range(n)]
    infos = [{"task": f"put a mug in fridge {i}.",
              "admissible_actions": [f"go to shelf {j}" for j in range(i + 2)]} for i in range(n)]
    return obs, infos


def test_batched_equals_single_greedy(tiny):
    model, tok, _ = tiny
    obs, infos = _obs_infos(7)
    batched = HFStudent(model, tok, env="alfworld", max_new_tokens=16,
                        batch_size=4)  # 2 chunks, mixed lengths
    outs = batched.act_batch(obs, infos)
    outs2 = batched.act_batch(obs, infos)  # second step: histories grow per env
    for i in range(7):
        single = HFStudent(model, tok, env="alfworld", max_new_tokens=16)
        single.reset(infos[i]["task"])
        assert single.act(obs[i], infos[i]).raw_text == outs[i].raw_text
        assert single.act(obs[i], infos[i]).raw_text == outs2[i].raw_text
        assert single.episodes[0].steps == batched.episodes[i].steps
    assert batched.stats["actions"] == 14 and batched.stats["generated_tokens"] > 0


def test_training_prompt_equals_acting_prompt(tiny):
    """A recorded trajectory rebuilds exactly the prompts the student acted on (SFT rows cannot drift)."""
    from leap_gym.agents.prompting import fit_step_prompt
    from leap_gym.agents.student import render_prompt
    from leap_gym.leap.dataset import build_dataset
    from leap_gym.records import Correction

    model, tok, _ = tiny
    student = HFStudent(model, tok, env="leap/ALFWorld-v0", max_new_tokens=6, k=2)
    obs, infos = _obs_infos(1)
    student.reset(infos[0]["task"])
    traj = Trajectory(env_id="leap/ALFWorld-v0", task_id="t", task=infos[0]["task"])
    prompts = []
    for t in range(4):
        o = f"{obs[0]} (step {t})"
        out = student.act(o, infos[0])
        prompts.append(student.last_prompts[0])
        traj.steps.append(Step(observation=o, action=out.action,
                               admissible_actions=infos[0]["admissible_actions"]))
    for t in range(4):
        assert render_prompt(tok, fit_step_prompt(traj, t, k=2).messages) == prompts[t]
    row = build_dataset([traj], [[Correction(3, "the mug", "go to shelf 1", True)]], history_k=2)[0]
    assert render_prompt(tok, row["prompt"]) == prompts[3]
    assert row["completion"][-1] == {"role": "assistant", "content": "REASON: the mug\nACTION: go to shelf 1"}


def test_history_budget_matches_training_rows(tiny):
    """With ``history_tokens`` the student drops history exactly where ``fit_step_prompt`` would for a short
    answer, so it never acts on longer histories than the training rows showed."""
    model, tok, _ = tiny
    obs, infos = _obs_infos(1)
    task, cands = infos[0]["task"], infos[0]["admissible_actions"]
    full = HFStudent(model, tok, env="alfworld", max_new_tokens=4, k=3)
    base = len(_prompt_ids(full, task, [], obs[0], cands))
    one = len(_prompt_ids(full, task, [(obs[0], "look")], obs[0], cands))
    capped = HFStudent(model, tok, env="alfworld", max_new_tokens=4, k=3, history_tokens=one,
                       max_prompt_tokens=4 * one)
    history = [(obs[0], "look")] * 3
    assert len(_prompt_ids(full, task, history, obs[0], cands)) > one
    assert len(_prompt_ids(capped, task, history, obs[0], cands)) == one
    tight = HFStudent(model, tok, env="alfworld", max_new_tokens=4, k=3, history_tokens=base - 1,
                      max_prompt_tokens=4 * one)  # no history fits: the bare prompt is kept whole
    assert len(_prompt_ids(tight, task, history, obs[0], cands)) == base


def test_shared_prefix_cache_changes_nothing(tiny):
    model, tok, _ = tiny
    obs, infos = _obs_infos(5)
    runs = []
    for share in (True, False):
        student = HFStudent(model, tok, env="alfworld", max_new_tokens=10, share_prefix=share, batch_size=3)
        runs.append([o.raw_text for _ in range(2) for o in student.act_batch(obs, infos)])
    assert runs[0] == runs[1]
    assert student._system_ids() is None and len(HFStudent(model, tok)._system_ids()) > 20


def test_constrained_acting_always_admissible(tiny):
    model, tok, _ = tiny
    student = HFStudent(model, tok, env="alfworld", max_new_tokens=8, constrained=True, do_sample=True,
                        seed=1, score_batch_size=3)
    obs, infos = _obs_infos(5)
    for _ in range(3):
        for out, info in zip(student.act_batch(obs, infos), infos, strict=True):
            assert out.action in info["admissible_actions"]
    assert student.stats["constrained_fallbacks"] > 0  # a random model never writes a valid answer by itself
    shop = {"task": "buy red shoes", "admissible_actions": ["click[back to search]", "click[next >]",
                                                           "search[<query>]"]}
    web = HFStudent(model, tok, env="webshop", max_new_tokens=8, constrained=True)
    for _ in range(3):  # a template is a pattern, not an action: never the fallback
        assert web.act("Page 1 (Total results: 0)", shop).action in shop["admissible_actions"][:2]
    free = HFStudent(model, tok, max_new_tokens=8, constrained=True)  # no candidates: generation only
    out = free.act("$ ", {"task": "count files", "admissible_actions": None})
    assert out.action == INVALID_ACTION or isinstance(out.action, str)


def test_candidate_scores_match_full_forward(tiny):
    model, tok, _ = tiny
    student = HFStudent(model, tok, score_batch_size=2)
    prompt = _prompt_ids(student, "put a mug in fridge 1.", [], "You see a mug 1.", None)
    cands = ["go to shelf 1", "take mug 1 from shelf 1", "look"]
    scores = student.score_candidates(prompt, "the mug is here", cands)
    head = tok("REASON: the mug is here\nACTION:", add_special_tokens=False)["input_ids"]
    for cand, score in zip(cands, scores, strict=True):
        tail = tok(" " + cand, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        ids = prompt + head + tail
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
        ref = sum(float(logp[j - 1, ids[j]]) for j in range(len(ids) - len(tail), len(ids)))
        assert score == pytest.approx(ref, abs=1e-3)
    with torch.no_grad():  # the prompt's own KV states (an episode chat's cache): only the head is prefilled
        past = model(torch.tensor([prompt]), use_cache=True).past_key_values
    states = [(layer.keys, layer.values) for layer in past.layers]
    assert student.score_candidates(prompt, "the mug is here", cands, prompt_cache=states) == pytest.approx(
        scores, abs=1e-4)
    stale = [(k[:, :, 1:], v[:, :, 1:]) for k, v in states]  # not the prompt's length: a full prefill
    assert student.score_candidates(prompt, "the mug is here", cands, prompt_cache=stale) == pytest.approx(
        scores, abs=1e-4)


def test_episode_constrained_acting_reuses_the_chat_cache(tiny, monkeypatch):
    """In the episode format a miss is scored from the chat's KV cache, with the same choice as a full
    prefill."""
    model, tok, _ = tiny
    obs, infos = _obs_infos(3)
    runs, reused = [], []
    for reuse in (True, False):
        student = HFStudent(model, tok, env="alfworld", max_new_tokens=8, constrained=True,
                            prompt_format="episode")
        score = student.score_candidates

        def spy(prompt, reason, cands, prompt_cache=None, _score=score, _reuse=reuse):
            reused.append(prompt_cache is not None)
            return _score(prompt, reason, cands, prompt_cache=prompt_cache if _reuse else None)

        monkeypatch.setattr(student, "score_candidates", spy)
        runs.append([o.action for _ in range(3) for o in student.act_batch(obs, infos)])
    assert runs[0] == runs[1] and all(reused)


def test_sampling_is_seeded_and_leaves_global_rng_alone(tiny):
    model, tok, _ = tiny
    obs, infos = _obs_infos(4)

    def run(seed):
        return [o.raw_text for o in HFStudent(model, tok, do_sample=True, temperature=1.0, seed=seed,
                                              max_new_tokens=12).act_batch(obs, infos)]

    torch.manual_seed(123)
    a = run(5)
    after = torch.rand(1)
    torch.manual_seed(123)
    assert run(5) == a and torch.equal(torch.rand(1), after)
    assert run(6) != a


def test_load_from_path_and_adapter(tiny, tmp_path):
    from peft import get_peft_model

    from leap_gym.models import lora_config_for

    model, tok, path = tiny
    obs, infos = _obs_infos(3)
    from_disk = HFStudent(str(path), max_new_tokens=12).act_batch(obs, infos)
    assert [o.raw_text for o in from_disk] == [o.raw_text for o in HFStudent(model, tok, max_new_tokens=12)
                                               .act_batch(obs, infos)]
    peft_model = get_peft_model(build_tiny_student("tiny", seed=0)[0], lora_config_for(model))
    with torch.no_grad():  # make the adapter change the outputs
        for name, p in peft_model.named_parameters():
            if "lora_B" in name or "modules_to_save" in name:
                p.add_(torch.randn_like(p) * 0.5)
    peft_model.save_pretrained(tmp_path / "adapter")
    peft_model.train()
    in_memory = [o.raw_text for o in HFStudent(peft_model, tok, max_new_tokens=12).act_batch(obs, infos)]
    assert peft_model.training  # acting switches to eval mode and back
    chunked = HFStudent(peft_model, tok, max_new_tokens=12, prefill_tokens=1)  # a PEFT forward per prompt
    assert [o.raw_text for o in chunked.act_batch(obs, infos)] == in_memory
    loaded = HFStudent(str(path), adapter=str(tmp_path / "adapter"), max_new_tokens=12)
    assert [o.raw_text for o in loaded.act_batch(obs, infos)] == in_memory
    assert in_memory != [o.raw_text for o in from_disk]


@pytest.mark.parametrize("vector", [False, True])
def test_no_privileged_value_reaches_the_prompt(tiny, vector):
    """Raw env infos (no StudentView) with sentinel privileged values: none may appear in any prompt."""
    model, tok, _ = tiny
    student = HFStudent(model, tok, max_new_tokens=6, constrained=vector, privileged_keys=("secret",))
    seen = []
    if vector:
        envs = gym.vector.SyncVectorEnv([lambda: LeakyToy(gym.make(TOY_ID)) for _ in range(3)])
        obs, infos = envs.reset(seed=0)
        assert SENTINELS[3] in list(infos["secret"])
        student.reset_batch(3)
        for _ in range(4):
            outs = student.act_batch(list(obs), infos)
            seen += student.last_prompts
            obs, _, _, _, infos = envs.step([o.action for o in outs])
        envs.close()
    else:
        env = LeakyToy(gym.make(TOY_ID))
        for seed in range(3):
            obs, info = env.reset(seed=seed)
            student.reset(info["task"])
            for _ in range(5):
                out = student.act(obs, info)
                seen += student.last_prompts
                obs, _, term, trunc, info = env.step(out.action)
                if term or trunc:
                    break
    assert len(seen) >= 10
    for prompt in seen:
        assert "CANDIDATE ACTIONS" in prompt and "TASK: find the key" in prompt
        for s in SENTINELS:
            assert s not in prompt


def test_split_vector_info_masks():
    import numpy as np

    infos = {"task": np.array(["a", "b"], dtype=object), "_task": np.array([True, True]),
             "admissible_actions": np.array([["x"], None], dtype=object),
             "_admissible_actions": np.array([True, False])}
    infos["nested"] = {"a": np.array([1, 2]), "_a": np.array([True, True])}
    infos["_nested"] = np.array([True, True])
    assert split_vector_info(infos, 2) == [{"task": "a", "admissible_actions": ["x"], "nested": {"a": 1}},
                                           {"task": "b", "nested": {"a": 2}}]
    with pytest.raises(ValueError, match="2 observations but 1 infos"):
        split_vector_info([{}], 2)


def test_chunked_prefill_keeps_greedy_answers_and_order(tiny):
    """Prefill in small chunks of mixed-length rows (each row its own chunk, pairs, or one chunk for all)
    gives the same greedy answers, in the caller's order, as acting on each env alone."""
    model, tok, _ = tiny
    obs, infos = _obs_infos(6)
    obs = [o + " You also see" + " a plate," * (3 * i) for i, o in enumerate(obs)]  # very different lengths
    singles = []
    for i in range(6):
        single = HFStudent(model, tok, env="alfworld", max_new_tokens=12)
        single.reset(infos[i]["task"])
        singles.append(single.act(obs[i], infos[i]).raw_text)
    lengths = [len(_prompt_ids(HFStudent(model, tok, env="alfworld"), i["task"], [], o,
                               i["admissible_actions"])) for o, i in zip(obs, infos, strict=True)]
    for budget, chunks in ((1, {6}), (2 * max(lengths), {2, 3, 4, 5}), (10**6, {0})):  # 0: generate prefills
        for share in (True, False):
            student = HFStudent(model, tok, env="alfworld", max_new_tokens=12, prefill_tokens=budget,
                                share_prefix=share,
                                batch_size=4 if budget == 1 else 32)  # 1: generate in 2 batches
            calls = []
            forward = student._forward_cache
            student._forward_cache = (lambda *a, calls=calls, forward=forward:
                                      calls.append(a[0].shape) or forward(*a))
            assert [o.raw_text for o in student.act_batch(obs, infos)] == singles, (budget, share)
            assert len(calls) in chunks


def test_chunked_prefill_sampling_is_seeded(tiny):
    model, tok, _ = tiny
    obs, infos = _obs_infos(5)

    def run(budget):
        student = HFStudent(model, tok, do_sample=True, temperature=1.0, seed=3, max_new_tokens=10,
                            prefill_tokens=budget)
        return [o.raw_text for _ in range(2) for o in student.act_batch(obs, infos)]

    assert run(1) == run(1) == run(10**6)  # the same sampling stream whichever way the prompts were prefilled


def test_chunk_rows_stays_within_budget():
    from leap_gym.agents.kv_cache import chunk_rows

    lengths = [3, 3, 4, 8, 9, 20]
    groups = chunk_rows(lengths, 12)
    assert [r for g in groups for r in g] == list(range(6))  # consecutive, every row once
    assert groups == [[0, 1, 2], [3], [4], [5]]
    assert all(len(g) * max(lengths[r] for r in g) <= 12 or len(g) == 1 for g in groups)


def test_reserved_layer_appends_in_place_and_overflows_safely():
    from transformers.cache_utils import DynamicLayer

    from leap_gym.agents.kv_cache import ReservedLayer

    keys, values = torch.randn(2, 3, 6, 4), torch.randn(2, 3, 6, 4)
    layer, plain = ReservedLayer(keys, values, 2), DynamicLayer()
    plain.update(keys[:, :, :2].clone(), values[:, :, :2].clone())
    for m in (3, 1, 2):  # the last append does not fit the room: concatenation takes over
        k, v = torch.randn(2, 3, m, 4), torch.randn(2, 3, m, 4)
        got, want = layer.update(k, v), plain.update(k, v)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    assert layer.get_seq_length() == 8
    layer2 = ReservedLayer(keys, values, 1)
    layer2.update(torch.ones(2, 3, 2, 4), torch.ones(2, 3, 2, 4))
    assert layer2.keys.data_ptr() == keys.data_ptr() and torch.equal(keys[:, :, 1:3], torch.ones(2, 3, 2, 4))


def test_chunked_prefill_never_reads_unwritten_cache(tiny, monkeypatch):
    """Reserved buffers start uninitialised: fill them with NaN, and every answer (one-token prompts after the
    shared prefix included) must still equal the prompt completed alone."""
    model, tok, _ = tiny
    student = HFStudent(model, tok, env="alfworld", max_new_tokens=8, prefill_tokens=1)
    head = student._system_ids()
    prompts = [head + tok("go", add_special_tokens=False)["input_ids"][:1],
               head + tok("TASK: put a mug in fridge 1.", add_special_tokens=False)["input_ids"],
               head + tok("OBSERVATION: a mug", add_special_tokens=False)["input_ids"]]
    alone = [student.complete([p], prefix=head)[0].text for p in prompts]
    new_empty = torch.Tensor.new_empty
    monkeypatch.setattr(torch.Tensor, "new_empty",
                        lambda self, *a, **k: new_empty(self, *a, **k).fill_(float("nan")))
    for share in (head, None):
        assert [c.text for c in student.complete(prompts, prefix=share)] == alone
