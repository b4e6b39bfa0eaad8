"""Grouped-query attention without repeated keys/values (``leap_gym.agents.attention``): a student that loads
a grouped model on CPU acts with it, and it computes what transformers' ``sdpa`` computes, padding and cache
included."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from transformers import AutoModelForCausalLM, DynamicCache  # noqa: E402

from leap_gym.agents.attention import GQA_SDPA, use_gqa_attention  # noqa: E402
from leap_gym.agents.student import HFStudent  # noqa: E402
from leap_gym.models import build_model, build_tiny_student  # noqa: E402


@pytest.fixture(scope="module")
def grouped_dir(tmp_path_factory):
    """A tiny Llama with 4 query heads sharing 2 key/value heads, saved with its tokenizer."""
    _, tok = build_tiny_student("tiny", seed=0)
    model = build_model(tok, size="tiny", seed=0, num_key_value_heads=2)
    path = tmp_path_factory.mktemp("grouped")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def _logits(model, ids, mask):
    """A left-padded batch's logits: the first half prefilled, the second half on top of its cache."""
    half = ids.shape[1] // 2
    with torch.inference_mode():
        first = model(input_ids=ids[:, :half], attention_mask=mask[:, :half], use_cache=True,
                      cache=DynamicCache(config=model.config))
        second = model(input_ids=ids[:, half:], attention_mask=mask, use_cache=True, cache=first.cache)
    return torch.cat([first.logits, second.logits], dim=1)


def test_same_logits_as_sdpa_with_padding_and_cache(grouped_dir):
    ref = AutoModelForCausalLM.from_pretrained(grouped_dir, attn_implementation="sdpa").eval()
    gqa = AutoModelForCausalLM.from_pretrained(grouped_dir, attn_implementation="sdpa").eval()
    assert use_gqa_attention(gqa) and gqa.config._attn_implementation == GQA_SDPA
    torch.manual_seed(0)
    ids = torch.randint(5, 200, (3, 24))
    mask = torch.ones(3, 24, dtype=torch.long)
    mask[0, :9], mask[1, :3] = 0, 0  # left padding of different widths, the first row's beyond the half
    keep = mask.bool()
    want, got = _logits(ref, ids, mask), _logits(gqa, ids, mask)
    assert torch.allclose(want[keep], got[keep], atol=1e-5, rtol=1e-5)
    assert (want[keep] - got[keep]).abs().max() < 1e-5


def test_a_student_loading_a_grouped_model_on_cpu_uses_it(grouped_dir):
    student = HFStudent(str(grouped_dir), env="alfworld", prompt_format="episode", max_new_tokens=4,
                        dtype=torch.float32)
    assert student.model.config._attn_implementation == GQA_SDPA
    out = student.act_batch(["You arrive at shelf 1.", "You see a mug."],
                            [{"task": "put a mug in fridge 1."}, {"task": "heat an egg."}])
    assert len(out) == 2


def test_models_without_grouped_heads_are_left_alone():
    model, _ = build_tiny_student("tiny", seed=0)  # 4 heads, 4 key/value heads
    implementation = model.config._attn_implementation
    assert not use_gqa_attention(model) and model.config._attn_implementation == implementation
