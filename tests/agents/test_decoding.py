"""decode_releasing: dropping finished rows from the batch changes no answer and no kept state."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from transformers import DynamicCache  # noqa: E402

from leap_gym.agents.decoding import decode_releasing  # noqa: E402
from leap_gym.agents.kv_cache import ReservedLayer, stack_slot_caches  # noqa: E402
from leap_gym.models import build_tiny_student  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model_tok():
    model, tok = build_tiny_student("tiny", seed=0)
    return model.eval(), tok


def _forward(model):
    def forward(ids, mask, positions, cache):
        return model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache,
                     use_cache=True, logits_to_keep=1).logits[:, -1]
    return forward


def _batch(model, tok, chats, news, cached=True):
    """The student's layout: each chat's states cached on its own, stacked right-aligned, then the new
    tokens left-padded after them; ``cached=False``: nothing cached yet (a first round), the whole chats
    prefilled into an empty reserved cache."""
    if not cached:
        chats, news = [[] for _ in chats], [c + n for c, n in zip(chats, news, strict=True)]
    parts = []
    with torch.inference_mode():
        for chat in filter(None, chats):
            out = model(input_ids=torch.tensor([chat]), use_cache=True)
            parts.append([(layer.keys, layer.values) for layer in out.past_key_values.layers])
    nw = max(map(len, news))
    if parts:
        cache, _ = stack_slot_caches(model.config, parts, nw + 16)
    else:
        cfg = model.config
        shape = (len(news), cfg.num_key_value_heads, nw + 16, cfg.hidden_size // cfg.num_attention_heads)
        cache = DynamicCache(config=cfg)
        cache.layers = [ReservedLayer(torch.zeros(shape), torch.zeros(shape), 0) for _ in cache.layers]
    width = max(map(len, chats))
    n = len(chats)
    ids = torch.full((n, width + nw), tok.pad_token_id)
    mask = torch.zeros((n, width + nw), dtype=torch.long)
    for row, (chat, new) in enumerate(zip(chats, news, strict=True)):
        if chat:
            ids[row, width - len(chat):width] = torch.tensor(chat)
            mask[row, width - len(chat):width] = 1
        ids[row, width + nw - len(new):] = torch.tensor(new)
        mask[row, width + nw - len(new):] = 1
    return cache, ids, mask


def _reference(model, tokens, stops, max_new):
    """Greedy tokens of the bare model on one unpadded, uncached sequence, up to the first stop token."""
    with torch.inference_mode():
        out = model.generate(input_ids=torch.tensor([tokens]), max_new_tokens=max_new, do_sample=False,
                             eos_token_id=sorted(stops), pad_token_id=0, temperature=None, top_p=None,
                             top_k=None)[0, len(tokens):].tolist()
    stop = next((j for j, t in enumerate(out) if t in stops), None)
    return out if stop is None else out[:stop + 1]


@pytest.mark.parametrize("cached", [True, False])
def test_releasing_finished_rows_changes_no_answer_and_no_state(model_tok, cached):
    model, tok = model_tok
    texts = ["put a mug in the fridge", "go to shelf 2 and look", "take the apple", "open the drawer 3 now"]
    chats = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    news = [tok(" then" * (i + 1), add_special_tokens=False)["input_ids"] for i in range(len(texts))]
    # stop tokens that end the rows at different steps: each row's own greedy token at a different step
    free = [_reference(model, c + n, set(), 12) for c, n in zip(chats, news, strict=True)]
    stops = {free[0][1], free[2][5]}
    want = [_reference(model, c + n, stops, 12) for c, n in zip(chats, news, strict=True)]
    assert len({len(w) for w in want}) > 1  # rows end at different steps: some are released early

    cache, ids, mask = _batch(model, tok, chats, news, cached)
    keep = [torch.nonzero(mask[row])[:, 0] for row in range(len(chats))]
    with torch.inference_mode():
        got, states = decode_releasing(_forward(model), cache, ids, mask, keep, max_new_tokens=12,
                                       stop_ids=sorted(stops), choose=lambda logits, rows, gen:
                                       logits.argmax(-1), compact_fraction=0.0)
        assert got == want
        for chat, new, slot in zip(chats, news, states, strict=True):  # the chat's own states, batch 1
            full = model(input_ids=torch.tensor([chat + new]), use_cache=True).past_key_values
            assert len(slot) == len(full.layers)
            for (k, v), layer in zip(slot, full.layers, strict=True):
                assert k.shape == layer.keys.shape
                torch.testing.assert_close(k, layer.keys, atol=1e-5, rtol=1e-4)
                torch.testing.assert_close(v, layer.values, atol=1e-5, rtol=1e-4)


def test_choose_sees_original_rows_after_release(model_tok):
    """After a release the batch is smaller, but ``choose`` is told each batch row's original row and every
    row's tokens so far (what a per-row constraint needs)."""
    model, tok = model_tok
    chats = [tok(t, add_special_tokens=False)["input_ids"] for t in ("a b c", "d e f g", "h i")]
    news = [[5], [6, 7], [8]]
    cache, ids, mask = _batch(model, tok, chats, news)
    keep = [torch.nonzero(mask[row])[:, 0] for row in range(3)]
    seen: list[list[int]] = []

    def choose(logits, rows, generated):
        seen.append(list(rows))
        assert all(len(generated[r]) == len(generated[rows[0]]) for r in rows)
        step = len(generated[rows[0]])
        # row 1 stops at once, the others write their row number until step 3
        return torch.tensor([99 if (r == 1 or step == 3) else 10 + r for r in rows])

    with torch.inference_mode():
        got, _ = decode_releasing(_forward(model), cache, ids, mask, keep, max_new_tokens=8, stop_ids=[99],
                                  choose=choose, compact_fraction=0.0)
    assert got == [[10, 10, 10, 99], [99], [12, 12, 12, 99]]
    assert seen[0] == [0, 1, 2] and seen[1] == [0, 2]
