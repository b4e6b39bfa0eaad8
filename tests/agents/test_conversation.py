"""The episode format: ``encode_turns`` tokenizes a chat exactly as its template renders it, message by
message."""

from __future__ import annotations

import copy

import pytest

pytest.importorskip("transformers")

from leap_gym.agents.conversation import (  # noqa: E402
    ChatSegments,
    encode_turns,
    episode_messages,
    episode_system_prompt,
)
from leap_gym.agents.prompting import format_target  # noqa: E402

CHATML = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")

STEPS = [("You are in the middle of a room. You see a desk 1, a drawer 2 and a shelf 3.", "find the mug",
          "go to desk 1"),
         ("You arrive at desk 1. On the desk 1, you see a mug 1 and a pen 2.", "take it",
          "take mug 1 from desk 1"),
         ("You pick up the mug 1 from the desk 1.", "cool it", "go to fridge 1")]


@pytest.fixture(scope="module")
def tok():
    from leap_gym.models import build_tokenizer, env_text_corpus

    return build_tokenizer(env_text_corpus(n_samples=60), vocab_size=1024)


@pytest.fixture(scope="module")
def chatml(tok):
    """The tiny tokenizer with a ChatML template (``<|im_start|>``/``<|im_end|>`` added as special tokens)."""
    t = copy.deepcopy(tok)
    t.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    t.chat_template = CHATML
    return t


def _messages():
    return episode_messages("put a cool mug in the cabinet.", STEPS, "You arrive at fridge 1.",
                            env="alfworld")


@pytest.mark.parametrize("which", ["tiny", "chatml"])
def test_encode_turns_is_the_template_rendering_tokenized_whole(which, tok, chatml):
    t = tok if which == "tiny" else chatml
    msgs = _messages()
    trained = [j for j, m in enumerate(msgs) if m["role"] == "assistant"]
    ids, labels = encode_turns(t, msgs, trained)
    rendered = t.apply_chat_template(msgs, tokenize=False)
    assert t.decode(ids) == rendered
    assert ids == t(rendered, add_special_tokens=False)["input_ids"]  # no drift at turn boundaries
    assert len(labels) == len(ids)
    # the generation prompt is the assistant header: an acting prompt is a token prefix of the trained row
    prompt = t.apply_chat_template(msgs[:4], tokenize=False, add_generation_prompt=True)
    assert ids[:len(t(prompt, add_special_tokens=False)["input_ids"])] == t(prompt, add_special_tokens=False)[
        "input_ids"]


@pytest.mark.parametrize("which", ["tiny", "chatml"])
def test_labels_only_on_the_trained_answers_and_their_end_of_turn(which, tok, chatml):
    t = tok if which == "tiny" else chatml
    end = "<|end|>" if which == "tiny" else "<|im_end|>"
    msgs = _messages()
    answers = [j for j, m in enumerate(msgs) if m["role"] == "assistant"]
    ids, labels = encode_turns(t, msgs, answers[1:])  # the first answer is context only
    assert all(lab == -100 or lab == i for i, lab in zip(ids, labels, strict=True))
    learned = t.decode([i for i in labels if i != -100])
    want = "".join(format_target(r, a) + end + "\n" for _, r, a in STEPS[1:])
    assert learned == want
    assert STEPS[0][2] not in learned and "OBSERVATION" not in learned and "assistant" not in learned
    none_ids, none_labels = encode_turns(t, msgs, ())
    assert none_ids == ids and set(none_labels) == {-100}


def test_segments_split_an_assistant_turn_into_header_and_body(chatml):
    seg = ChatSegments(chatml)
    msgs = _messages()
    head, body = seg.segment(msgs, 2)
    assert head == "<|im_start|>assistant\n"
    assert body == format_target(STEPS[0][1], STEPS[0][2]) + "<|im_end|>\n"
    assert seg.segment(msgs, 1) == ("<|im_start|>user\n" + msgs[1]["content"] + "<|im_end|>\n", "")
    assert seg.header_ids(msgs[:2]) == seg.encode(head)
    assert msgs[0]["content"] == episode_system_prompt("alfworld")


def test_untemplated_tokenizer_uses_plain_role_headers(tok):
    plain = copy.deepcopy(tok)
    plain.chat_template = None
    msgs = _messages()
    ids, labels = encode_turns(plain, msgs, [2])
    text = plain.decode(ids)
    assert text.startswith("SYSTEM:\n") and "\n\nASSISTANT:\nREASON: find the mug" in text
    assert plain.decode([i for i in labels if i != -100]).strip() == format_target(STEPS[0][1], STEPS[0][2])


def test_a_template_that_rewrites_earlier_turns_is_refused(tok):
    last_marked = copy.deepcopy(tok)  # marks the last message, so an earlier rendering is not a prefix
    last_marked.chat_template = ("{% for m in messages %}{% if loop.last %}LAST {% endif %}"
                                 "{{ m['role'] + ': ' + m['content'] + '\\n' }}{% endfor %}")
    with pytest.raises(ValueError, match="not prefix-stable"):
        encode_turns(last_marked, _messages(), [2])
    odd_header = copy.deepcopy(tok)  # its generation prompt is not how an assistant turn starts
    odd_header.chat_template = ("{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\\n' }}"
                                "{% endfor %}{% if add_generation_prompt %}{{ 'ANSWER NOW: ' }}{% endif %}")
    with pytest.raises(ValueError, match="generation prompt is not the assistant header"):
        encode_turns(odd_header, _messages(), [2])
