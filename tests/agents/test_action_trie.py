"""ActionTrie: after the action marker a row can only write one of its admissible actions, inside a real
``generate``."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from transformers import LogitsProcessorList  # noqa: E402

from leap_gym.agents.action_trie import ActionTrie  # noqa: E402
from leap_gym.models import build_tiny_student  # noqa: E402

MARKER = [7, 8]
EOS = 2


def test_allowed_follows_the_candidates_after_the_last_marker():
    trie = ActionTrie(MARKER, [[[5, 6, EOS], [5, 9, EOS], [4, EOS]], None, []], start=0)
    assert trie.allowed(0, [3, 3]) is None  # no marker yet: the reason is free
    assert trie.allowed(0, [3, 7, 8]) == {5, 4}
    assert trie.allowed(0, [3, 7, 8, 5]) == {6, 9}
    assert trie.allowed(0, [7, 8, 1, 7, 8, 5, 9]) == {EOS}  # the last marker counts
    assert trie.allowed(0, [7, 8, 1]) is None  # an action no candidate starts with (cannot be written here)
    assert trie.allowed(1, [7, 8]) is None and trie.allowed(2, [7, 8]) is None  # rows without candidates
    assert ActionTrie([], [[[5, EOS]]], 0).allowed(0, [5]) is None


def test_generation_after_the_marker_writes_a_candidate(tmp_path):
    model, tok = build_tiny_student("tiny", seed=0, save_to=str(tmp_path))
    model.eval()
    prompt = torch.tensor([tok("put a mug in the fridge", add_special_tokens=False)["input_ids"]] * 2)
    with torch.no_grad():
        free = model.generate(prompt, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
    first = int(free[0, prompt.shape[1]])  # the model's own first token serves as the marker
    eos = tok.eos_token_id
    cands = [[tok("go to shelf 1", add_special_tokens=False)["input_ids"] + [eos],
              tok("take mug 1", add_special_tokens=False)["input_ids"] + [eos]], None]
    trie = ActionTrie([first], cands, start=prompt.shape[1])
    with torch.no_grad():
        out = model.generate(prompt, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id,
                             eos_token_id=eos, logits_processor=LogitsProcessorList([trie]))
    action = out[0, prompt.shape[1] + 1:].tolist()
    action = action[:action.index(eos) + 1]
    assert action in cands[0]
    n = out.shape[1] - prompt.shape[1]  # a row without candidates generates as it would freely
    assert out[1, prompt.shape[1]:].tolist() == free[1, prompt.shape[1]:].tolist()[:n]
