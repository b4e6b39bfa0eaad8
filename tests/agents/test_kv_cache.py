"""Episode caches: stacking the slots' caches into a batch and splitting them back round-trips the states, and
each side is let go layer by layer (so two whole copies are never held at once)."""

from __future__ import annotations

import torch
from transformers import LlamaConfig

from leap_gym.agents.kv_cache import ReservedLayer, split_slot_caches, stack_slot_caches

CONFIG = LlamaConfig(num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, hidden_size=32,
                     intermediate_size=64, vocab_size=50)


def slot(length: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(1, 2, length, 8, generator=g), torch.randn(1, 2, length, 8, generator=g))
            for _ in range(CONFIG.num_hidden_layers)]


def test_stack_then_split_round_trips_and_consumes_both_sides():
    lengths = [5, 0, 3]
    originals = [slot(n, i) if n else None for i, n in enumerate(lengths)]
    parts = [None if o is None else [(k.clone(), v.clone()) for k, v in o] for o in originals]
    cache, pads = stack_slot_caches(CONFIG, parts, room=4)
    assert pads == [0, 5, 2]
    assert all(p is None or all(layer is None for layer in p) for p in parts)  # consumed
    assert all(isinstance(layer, ReservedLayer) for layer in cache.layers)
    assert all(layer.keys.shape == (3, 2, 5, 8) for layer in cache.layers)
    assert all(layer._keys_buf.shape[-2] == 9 for layer in cache.layers)  # room for 4 more positions
    positions = [torch.arange(5 - n, 5) for n in lengths]
    back = split_slot_caches(cache, positions)
    assert all(layer.keys is None and layer._keys_buf is None for layer in cache.layers)  # consumed
    for original, got in zip(originals, back, strict=True):
        for li in range(CONFIG.num_hidden_layers):
            k, v = got[li]
            if original is None:
                assert k.shape[-2] == 0
            else:
                assert torch.equal(k, original[li][0]) and torch.equal(v, original[li][1])


def test_no_cache_yet_gives_none():
    cache, pads = stack_slot_caches(CONFIG, [None, None], room=4)
    assert cache is None and pads == [0, 0]



def test_an_empty_reserved_layer_fills_its_buffer_in_place():
    """A layer reserved with no states yet (a batch's first prefill) writes into its buffer: an empty view's
    ``data_ptr`` is 0, which once sent every append of such a layer to the copying fallback."""
    keys, values = torch.zeros(2, 3, 10, 4), torch.zeros(2, 3, 10, 4)
    layer = ReservedLayer(keys, values, 0)
    assert layer.in_buffer()
    k, v = layer.update(torch.ones(2, 3, 4, 4), torch.ones(2, 3, 4, 4))
    assert k.data_ptr() == keys.data_ptr() and layer.in_buffer() and float(keys[:, :, :4].sum()) == 96
    layer.update(torch.ones(2, 3, 7, 4), torch.ones(2, 3, 7, 4))  # outgrows the room: copies, leaves it
    assert layer.keys.shape[-2] == 11 and not layer.in_buffer()
