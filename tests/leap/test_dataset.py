"""Training rows: on-policy prompts, no privileged text, corrected targets only, history cut to fit,
aggregation."""

from __future__ import annotations

import json

import pytest

from leap_gym.agents.conversation import window_starts
from leap_gym.agents.prompting import format_target
from leap_gym.leap.dataset import DatasetStats, aggregate, build_dataset, chat_token_counter
from leap_gym.records import Correction, Step, Trajectory

SECRET = "PRIVSENTINEL_drawer_7"


def _traj(n: int = 6, obs_words: int = 5) -> Trajectory:
    steps = []
    for t in range(n):
        obs = f"obs{t} " + " ".join(f"w{t}x{j}" for j in range(obs_words))
        steps.append(Step(observation=obs, action=f"student act {t}",
                          admissible_actions=[f"cand {t}", "look"], reason=f"student reason {t}",
                          raw_output=f"REASON: raw {t}\nACTION: student act {t}",
                          info={"task_type": "toy", "privileged": {"expert_action": SECRET,
                                                                   "expert_plan": [SECRET],
                                                                   "where": SECRET}}))
    return Trajectory(env_id="leap/ALFWorld-v0", task_id="t/0", task="put a mug in the fridge", steps=steps)


def _fixes(traj: Trajectory, changed=lambda t: t % 2 == 0) -> list[Correction]:
    return [Correction(step_index=t, reason=f"teacher reason {t}", action=f"teacher act {t}" if changed(t)
                       else s.action, was_corrected=changed(t)) for t, s in enumerate(traj.steps)]


def _text(row) -> str:
    return json.dumps(row["prompt"])


def test_prompts_are_the_students_own_history_and_targets_the_corrections():
    traj = _traj()
    rows = build_dataset([traj], [_fixes(traj)], history_k=3)
    assert len(rows) == len(traj.steps)
    for t, row in enumerate(rows):
        prompt = _text(row)
        assert traj.steps[t].observation in prompt and "put a mug in the fridge" in prompt
        for j in range(max(0, t - 3), t):  # the student's own earlier actions, not the teacher's
            assert f"student act {j}" in prompt
        assert "teacher" not in prompt and "student reason" not in prompt  # no reasons in the history
        assert row["completion"] == [{"role": "assistant", "content": format_target(f"teacher reason {t}",
                                      f"teacher act {t}" if t % 2 == 0 else f"student act {t}")}]
        assert row["meta"]["step"] == t and row["meta"]["was_corrected"] == (t % 2 == 0)


def test_no_privileged_text_reaches_any_row():
    traj = _traj()
    for method in ("sft", "dpo"):
        for row in build_dataset([traj], [_fixes(traj)], method=method):
            body = json.dumps({k: v for k, v in row.items() if k != "meta"})
            assert SECRET not in body and "privileged" not in body


def test_demonstrations_use_their_own_reasons():
    traj = _traj(3)
    rows = build_dataset([traj], None)
    assert [r["completion"][0]["content"] for r in rows] == [
        format_target(f"student reason {t}", f"student act {t}") for t in range(3)]


def test_only_corrected_and_dpo_pairs():
    traj = _traj()
    stats = DatasetStats()
    rows = build_dataset([traj], [_fixes(traj)], only_corrected=True, stats=stats)
    assert [r["meta"]["step"] for r in rows] == [0, 2, 4] and stats.skipped_uncorrected == 3
    pairs = build_dataset([traj], [_fixes(traj)], method="dpo")
    assert [r["meta"]["step"] for r in pairs] == [0, 2, 4]
    assert pairs[0]["chosen"][0]["content"] == format_target("teacher reason 0", "teacher act 0")
    assert pairs[0]["rejected"][0]["content"] == "REASON: raw 0\nACTION: student act 0"


def test_rows_end_at_the_nth_changed_step():
    traj = _traj()  # steps 0, 2, 4 changed
    stats = DatasetStats()
    rows = build_dataset([traj], [_fixes(traj)], max_corrected=2, stats=stats)
    assert [r["meta"]["step"] for r in rows] == [0, 1, 2] and stats.skipped_after_limit == len(traj.steps) - 3
    assert len(build_dataset([traj], [_fixes(traj)], max_corrected=9)) == len(traj.steps)  # fewer: all
    assert len(build_dataset([traj], [_fixes(traj)], max_corrected=0)) == len(traj.steps)
    invalid = _fixes(traj)
    invalid[2].metadata["valid"] = False  # a failed correction is no change
    assert [r["meta"]["step"] for r in build_dataset([traj], [invalid], max_corrected=2)] == [0, 1, 3, 4]


def test_mismatched_inputs_raise():
    traj = _traj()
    with pytest.raises(ValueError, match="correction lists"):
        build_dataset([traj], [])
    with pytest.raises(ValueError, match="DPO rows need corrections"):
        build_dataset([traj], None, method="dpo")


@pytest.fixture(scope="module")
def tokenizer():
    pytest.importorskip("transformers")
    from leap_gym.models import build_tokenizer, env_text_corpus

    return build_tokenizer(env_text_corpus(n_samples=60), vocab_size=1024)


def test_history_is_cut_to_fit_and_the_target_is_never_cut(tokenizer):
    traj = _traj(8, obs_words=40)
    count = chat_token_counter(tokenizer)
    full = build_dataset([traj], [_fixes(traj)], history_k=6)
    longest = max(count(r["prompt"] + r["completion"]) for r in full)
    limit = longest - 150
    stats = DatasetStats()
    rows = build_dataset([traj], [_fixes(traj)], history_k=6, max_length=limit, tokenizer=tokenizer,
                         stats=stats)
    assert stats.history_cut > 0
    for row in rows:
        assert count(row["prompt"] + row["completion"]) <= limit
        t = row["meta"]["step"]
        assert traj.steps[t].observation in _text(row)  # the current observation always stays
        assert row["completion"][0]["content"].endswith(f"act {t}")
    # when even the bare prompt cannot fit, the row is dropped and counted, never cut
    stats = DatasetStats()
    assert build_dataset([traj], [_fixes(traj)], max_length=20, tokenizer=tokenizer, stats=stats) == []
    assert stats.dropped_too_long == len(traj.steps)


def test_aggregate_equal_shares_union_and_last():
    a = [{"i": 0, "n": n} for n in range(10)]
    b = [{"i": 1, "n": n} for n in range(4)]
    c = [{"i": 2, "n": n} for n in range(6)]
    eq = aggregate([a, b, c], "equal", seed=1)
    assert len(eq) == 12 and sorted(r["i"] for r in eq) == [0] * 4 + [1] * 4 + [2] * 4
    assert len({(r["i"], r["n"]) for r in eq}) == 12
    assert aggregate([a, b, c], "equal", seed=1) == eq  # seeded
    assert len(aggregate([a, [], c], "equal")) == 12  # an empty iteration does not zero the mix
    assert len(aggregate([a, b, c], "all")) == 20
    assert {r["i"] for r in aggregate([a, b, c], "last")} == {2}
    with pytest.raises(ValueError):
        aggregate([a], "mean")


def test_long_candidate_lists_keep_whole_rows_up_to_the_hard_cap(tokenizer):
    traj = _traj(3)
    for s in traj.steps:
        s.admissible_actions = [f"go to countertop {j}" for j in range(40)]
    count = chat_token_counter(tokenizer)
    bare = min(count(r["prompt"] + r["completion"])
               for r in build_dataset([traj], [_fixes(traj)], history_k=0))
    stats = DatasetStats()
    rows = build_dataset([traj], [_fixes(traj)], history_k=2, max_length=bare - 10, tokenizer=tokenizer,
                         stats=stats, hard_max_length=bare + 200)
    assert len(rows) == 3 and stats.over_length == 3 and stats.dropped_too_long == 0
    for row in rows:
        assert "go to countertop 39" in _text(row)  # every candidate kept, target whole
        assert row["meta"]["tokens"] == count(row["prompt"] + row["completion"]) > bare - 10


def test_stats_record_the_longest_target_in_tokens(tokenizer):
    traj = _traj(5)
    fixes = _fixes(traj)
    fixes[2] = Correction(2, "a much longer reason " * 6, fixes[2].action, True)
    stats = DatasetStats()
    rows = build_dataset([traj], [fixes], max_length=2048, tokenizer=tokenizer, stats=stats)
    lengths = [len(tokenizer(r["completion"][0]["content"], add_special_tokens=False)["input_ids"])
               for r in rows]
    assert stats.max_answer_tokens == max(lengths) and lengths.index(max(lengths)) == 2


@pytest.mark.parametrize("method", ["sft", "dpo"])
def test_corrections_the_teacher_failed_never_become_rows(method):
    """A failed correction carries the student's own action: training on it would teach the student its own
    failures (an endpoint answering 500 once produced a whole dataset of them)."""
    traj = _traj(4)
    fixes = _fixes(traj, changed=lambda t: True)
    for t in (1, 2):
        fixes[t] = Correction(t, traj.steps[t].reason, traj.steps[t].action, False,
                              {"valid": False, "error": "backend: HTTP 500"})
    stats = DatasetStats()
    rows = build_dataset([traj], [fixes], method=method, history_k=2, stats=stats)
    assert [r["meta"]["step"] for r in rows] == [0, 3]
    assert stats.skipped_invalid == 2 and stats.rows == 2
    every = build_dataset([traj], [[Correction(t, "", s.action, False, {"valid": False})
                                    for t, s in enumerate(traj.steps)]], method=method)
    assert every == []


# -- the episode format --------------------------------------------------------------------------------------

def _answers(messages) -> list[str]:
    return [m["content"] for m in messages if m["role"] == "assistant"]


def test_episode_demonstration_is_one_chat_with_an_answer_per_step(tokenizer):
    from leap_gym.agents.conversation import encode_turns

    traj = _traj(5)
    stats = DatasetStats()
    rows = build_dataset([traj], None, prompt_format="episode", tokenizer=tokenizer, max_length=4096,
                         stats=stats)
    assert len(rows) == 1 and stats.rows == 1
    row = rows[0]
    assert [m["role"] for m in row["prompt"]] == ["system", "user"]
    assert row["prompt"][1]["content"].startswith("TASK: put a mug in the fridge\nOBSERVATION: obs0 ")
    assert [m["role"] for m in row["completion"]] == ["assistant", "user"] * 4 + ["assistant"]
    assert _answers(row["completion"]) == [format_target(f"student reason {t}", f"student act {t}")
                                           for t in range(5)]
    assert [m["content"] for m in row["completion"] if m["role"] == "user"] == \
        [f"OBSERVATION: {traj.steps[t].observation}" for t in range(1, 5)]
    assert row["meta"]["step"] == -1 and row["meta"]["turns"] == 5
    msgs = row["prompt"] + row["completion"]
    ids, labels = encode_turns(tokenizer, msgs, [j for j, m in enumerate(msgs) if m["role"] == "assistant"])
    assert row["meta"]["tokens"] == len(ids)
    trained = tokenizer.decode([x for x in labels if x != -100])
    assert trained == "".join(a + "<|end|>\n" for a in _answers(msgs))
    assert SECRET not in json.dumps(rows) and "privileged" not in json.dumps(rows)


def test_a_long_episode_is_split_into_windows_training_every_step_once(tokenizer):
    traj = _traj(9, obs_words=30)
    whole = build_dataset([traj], None, prompt_format="episode", tokenizer=tokenizer, max_length=100_000)[0]
    limit = whole["meta"]["tokens"] // 3
    rows = build_dataset([traj], None, prompt_format="episode", tokenizer=tokenizer, max_length=limit)
    assert 3 <= len(rows) < 9
    answers = [a for r in rows for a in _answers(r["completion"])]
    assert answers == [format_target(f"student reason {t}", f"student act {t}") for t in range(9)]
    first = 0
    for row in rows:  # each window restates the task and starts at its own first step
        assert row["meta"]["tokens"] <= limit
        assert row["prompt"][1]["content"].startswith("TASK: put a mug in the fridge\nOBSERVATION: "
                                                      f"obs{first} ")
        first += row["meta"]["turns"]
    assert first == 9


def test_episode_correction_rows_hold_only_the_students_own_turns(tokenizer):
    traj = _traj(5)
    fixes = _fixes(traj, changed=lambda t: True)
    fixes[3] = Correction(3, traj.steps[3].reason, traj.steps[3].action, False, {"valid": False})
    stats = DatasetStats()
    rows = build_dataset([traj], [fixes], prompt_format="episode", tokenizer=tokenizer, max_length=4096,
                         stats=stats)
    assert [r["meta"]["step"] for r in rows] == [0, 1, 2, 4] and stats.skipped_invalid == 1
    for row in rows:
        t = row["meta"]["step"]
        assert _answers(row["prompt"]) == [format_target(f"student reason {j}", f"student act {j}")
                                           for j in range(t)]
        assert row["prompt"][-1] == {"role": "user",
                                     "content": ("TASK: put a mug in the fridge\n" if t == 0 else "")
                                     + f"OBSERVATION: {traj.steps[t].observation}"}
        assert "teacher" not in json.dumps(row["prompt"]) and SECRET not in json.dumps(row)
        assert row["completion"] == [{"role": "assistant",
                                      "content": format_target(f"teacher reason {t}", f"teacher act {t}")}]
    # a tight budget restarts the chat at a later window start (the task restated in its first turn), never
    # cuts the answer: with 4 earlier steps the starts are step 0 and step 4 (WINDOW_STRIDE apart, then none)
    assert window_starts(4) == [0, 4]
    tight = build_dataset([traj], [fixes], prompt_format="episode", tokenizer=tokenizer,
                          max_length=rows[1]["meta"]["tokens"] + 5)
    last = tight[-1]
    assert last["meta"]["step"] == 4 and last["meta"]["tokens"] <= rows[1]["meta"]["tokens"] + 5
    assert _answers(last["prompt"]) == []
    assert last["prompt"][1]["content"].startswith("TASK: put a mug in the fridge\nOBSERVATION: obs4")
