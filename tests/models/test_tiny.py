"""Tiny local students: tokenizer trained on env text, chat template masks, model build/save/load."""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from leap_gym.agents.prompting import build_messages, format_target  # noqa: E402
from leap_gym.models import (  # noqa: E402
    MODEL_SIZES,
    SPECIAL_TOKENS,
    build_model,
    build_tokenizer,
    env_text_corpus,
    is_from_scratch,
    lora_config_for,
    mark_pretrained,
    modules_to_fully_train,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer(env_text_corpus(extra_texts=["You arrive at loc 7. On the loc 7, you see a zorb "
                                                        "3."]))


def _chat():
    msgs = build_messages("put a mug in fridge 1.", [("You arrive at shelf 1.", "go to shelf 1")],
                          "On the shelf 1, you see a mug 1.", ["take mug 1 from shelf 1", "go to fridge 1"],
                          env="alfworld")
    return msgs + [{"role": "assistant",
                    "content": format_target("I see the mug.", "take mug 1 from shelf 1")}]


def test_tokenizer_special_tokens_and_round_trip(tok):
    for t in SPECIAL_TOKENS:
        assert len(tok.encode(t, add_special_tokens=False)) == 1, t
    assert tok.eos_token == "<|end|>" and tok.pad_token == "<|pad|>"
    text = "go to shelf 1 — ünïcödé 漢字 `ls -la | wc -l`"  # byte-level: anything encodes losslessly
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text
    assert len(tok) <= 4096


def test_chat_template_masks_exactly_the_answer(tok):
    d = tok.apply_chat_template(_chat(), tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    masked = [i for i, m in zip(d["input_ids"], d["assistant_masks"], strict=True) if m]
    assert tok.decode(masked) == "REASON: I see the mug.\nACTION: take mug 1 from shelf 1<|end|>"
    text = tok.apply_chat_template(_chat(), tokenize=False)
    assert "<|end|>\n<|assistant|>\n" in text  # the newline gotcha: newlines survive after each turn
    prompt = tok.apply_chat_template(_chat()[:-1], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|assistant|>\n") and text.startswith(prompt)


def test_model_sizes(tok):
    counts = {}
    for size in MODEL_SIZES:
        model = build_model(tok, size)
        assert not model.config.tie_word_embeddings
        assert model.config.vocab_size == len(tok) and model.config.eos_token_id == tok.eos_token_id
        counts[size] = sum(p.numel() for p in model.parameters())
    assert counts["tiny"] < counts["small"] < counts["base"]
    assert 0.3e6 < counts["tiny"] < 2e6 and counts["base"] < 40e6
    with pytest.raises(ValueError, match="unknown model size"):
        build_model(tok, "huge")


def test_save_load_round_trip(tok, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = build_model(tok, "tiny", seed=3).eval()
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    model2 = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    tok2 = AutoTokenizer.from_pretrained(tmp_path)
    ids = tok2.apply_chat_template(_chat(), tokenize=True, return_dict=True, return_tensors="pt")["input_ids"]
    assert ids.tolist() == tok.apply_chat_template(_chat(), tokenize=True, return_dict=True,
                                                   return_tensors="pt")["input_ids"].tolist()
    with torch.no_grad():
        assert torch.equal(model(ids).logits, model2(ids).logits)
    assert is_from_scratch(model2)  # the random-init marker survives save/load
    d = tok2.apply_chat_template(_chat(), tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    assert sum(d["assistant_masks"]) > 0


def test_lora_config_trains_embeddings_of_a_random_base(tok):
    pytest.importorskip("peft")
    from peft import get_peft_model

    model = build_model(tok, "tiny")
    assert modules_to_fully_train(model) == ["embed_tokens", "lm_head"]
    cfg = lora_config_for(model)
    assert cfg.modules_to_save == ["embed_tokens", "lm_head"]
    peft_model = get_peft_model(model, cfg)
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert any("embed_tokens" in n for n in trainable) and any("lm_head" in n for n in trainable)
    assert any("lora_A" in n for n in trainable)

    with pytest.warns(UserWarning, match="does not learn"):
        assert lora_config_for(build_model(tok, "tiny"), from_scratch=False).modules_to_save is None
    trained = build_model(tok, "tiny")
    mark_pretrained(trained)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert lora_config_for(trained).modules_to_save is None


def test_lora_with_modules_to_save_lowers_loss_where_plain_lora_stalls(tok):
    """The plateau finding in miniature: same data, same steps; training embeddings+head must beat plain
    LoRA."""
    from peft import get_peft_model

    d = tok.apply_chat_template(_chat(), tokenize=True, return_dict=True, return_tensors="pt")
    ids = d["input_ids"]

    def final_loss(from_scratch: bool) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = get_peft_model(build_model(tok, "tiny", seed=0), lora_config_for(build_model(tok, "tiny"),
                                                                                     from_scratch=from_scratch))
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-3)
        for _ in range(30):
            loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
        return loss.item()

    full, plain = final_loss(True), final_loss(False)
    assert full < plain - 0.5, (full, plain)
