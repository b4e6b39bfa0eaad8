"""A byte-level BPE tokenizer trained locally (about a second) on text the envs and the prompt builder
produce.

Byte-level means every string encodes, so an unseen env word costs tokens, never an error. The chat template
wraps assistant turns in ``{% generation %}`` markers so ``return_assistant_tokens_mask=True`` (and TRL's
``assistant_only_loss``) select exactly the answer plus its end-of-turn token. Newlines in the template are
written inside ``{{ }}`` expressions: transformers compiles templates with ``trim_blocks``/``lstrip_blocks``,
which would eat a literal newline after ``{% endgeneration %}`` or ``{% endif %}``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import TYPE_CHECKING

from leap_gym.agents import prompting
from leap_gym.specs import SPECS

# tokenizers and transformers (the train extra) are imported where a tokenizer is built.
if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

PAD, BOS, END = "<|pad|>", "<|bos|>", "<|end|>"
SPECIAL_TOKENS = [PAD, BOS, END, "<|system|>", "<|user|>", "<|assistant|>"]

CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'assistant' %}"
    "{{ '<|assistant|>\\n' }}{% generation %}{{ m['content'] + '<|end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{% else %}"
    "{{ '<|' + m['role'] + '|>\\n' + m['content'] + '<|end|>\\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)

_GENERIC_TEXT = (
    "The quick brown fox jumps over the lazy dog. You are in the middle of a room. Looking quickly around "
    "you, you see a cabinet, a drawer, a countertop, a fridge, a shelf, a sinkbasin and a microwave. Your "
    "task is to: put a clean mug in the coffee machine. I need to find the item first, then take it, then "
    "put it where it belongs. It is often found on a countertop or in a cabinet. The search returned no "
    "results, so I should try a shorter query with fewer words. The command printed an error: no such file "
    "or directory. I will check the current directory and count the lines. Numbers: 0 1 2 3 4 5 6 7 8 9 10 "
    "11 12 15 20 25 30 50 100 1000. Prices: $9.99 $14.50 $25.00 $49.99 $100.00. Punctuation: ( ) [ ] { } < > "
    ", . ; : ! ? ' \" / \\ | - _ = + * & % $ # @ ~ ^ `."
)

_ROOMS = ["cabinet", "countertop", "drawer", "fridge", "shelf", "sinkbasin", "microwave", "stoveburner",
          "diningtable", "sidetable", "garbagecan", "coffeemachine", "toaster", "desk", "bed", "sofa",
          "dresser", "safe", "armchair", "bathtubbasin", "toilet", "towelholder", "laundryhamper", "ottoman",
          "cart"]
_OBJECTS = ["apple", "mug", "cup", "plate", "bowl", "knife", "fork", "spoon", "pan", "pot", "egg", "potato",
            "lettuce", "tomato", "bread", "book", "pen", "pencil", "cellphone", "keychain", "creditcard",
            "vase", "candle", "soapbar", "towel", "cloth", "spraybottle", "watch", "pillow", "laptop",
            "alarmclock",
            "desklamp", "statue", "box", "newspaper", "remotecontrol", "bottle", "glassbottle", "saltshaker"]
_TASKS = ["put a {o} in {r}.", "put some {o} on {r}.", "clean some {o} and put it in {r}.",
          "heat some {o} and put it in {r}.", "cool some {o} and put it in {r}.",
          "look at {o} under the desklamp.", "find two {o} and put them in {r}."]
_PRODUCTS = ["men's shirt", "women's dress", "running shoes", "wireless headphones", "phone case",
             "face cream", "shampoo", "coffee mug", "yoga mat", "bluetooth speaker", "backpack", "hair dryer",
             "jeans",
             "sunglasses", "tea", "protein bar", "throw pillow", "led light", "watch band", "sofa cover"]
_ATTRS = ["long sleeve", "machine wash", "easy clean", "gluten free", "high quality", "water resistant",
          "non slip", "wireless", "slim fit", "natural", "organic", "blue", "black", "white", "large",
          "x-large", "small", "pack of 2", "cotton", "leather"]
_BASH = ["ls -la", "ls /testbed", "find . -type f -name '*.txt'", "find /testbed -name '*.py' | wc -l",
         "grep -r 'error' /var/log | head -n 5", "wc -l file.txt", "cat notes.txt", "du -sh /testbed",
         "sort data.csv | uniq -c", "head -n 10 log.txt", "tail -n 3 log.txt", "pwd", "echo $HOME",
         "find /testbed -type d | wc -l", "stat -c %s file.txt", "tar -czf out.tar.gz dir", "chmod +x run.sh",
         "cut -d, -f2 data.csv", "awk '{print $1}' log.txt", "sed 's/foo/bar/g' file.txt", "submit"]


def alfworld_like_turn(rng: random.Random) -> tuple[str, list[tuple[str, str]], str, list[str], str, str]:
    obj, room = rng.choice(_OBJECTS), rng.choice(_ROOMS)
    task = "Your task is to: " + rng.choice(_TASKS).format(o=obj, r=f"{room} {rng.randint(1, 3)}")
    places = [f"{r} {rng.randint(1, 4)}" for r in rng.sample(_ROOMS, 6)]
    cands = [f"go to {p}" for p in places] + ["inventory", "look"]
    cands += [f"take {obj} {rng.randint(1, 3)} from {places[0]}", f"open {places[1]}", f"examine {places[2]}"]
    history = [(f"You arrive at {p}. On the {p}, you see a {rng.choice(_OBJECTS)} {rng.randint(1, 3)}.",
                f"go to {p}") for p in places[: rng.randint(0, 3)]]
    obs = f"You arrive at {places[0]}. On the {places[0]}, you see a {obj} 1, and a {rng.choice(_OBJECTS)} 2."
    return task, history, obs, cands, f"The {obj} is often found here, so I take it.", cands[-3]


def webshop_like_turn(rng: random.Random) -> tuple[str, list[tuple[str, str]], str, list[str], str, str]:
    prod, attr = rng.choice(_PRODUCTS), rng.choice(_ATTRS)
    price = f"{rng.randint(10, 100)}.00"
    task = f"i need a {attr} {prod}, and price lower than {price} dollars"
    obs = (f"[SEP] Instruction: [SEP] {task} [SEP] Back to Search [SEP] Page 1 (Total results: 50) [SEP] "
           f"Next > [SEP] B0{rng.randint(1000000, 9999999)}X [SEP] {attr.title()} {prod.title()} [SEP] "
           f"${price}")
    cands = ["back to search", "next >", f"b0{rng.randint(1000000, 9999999)}x", "buy now", "description",
             "features", "reviews", rng.choice(_ATTRS)]
    return task, [("WebShop [SEP] Instruction: [SEP] " + task + " [SEP] Search", f"search[{attr} {prod}]")], \
        obs, cands, "This item matches the attributes and the price, so I open it.", f"click[{cands[2]}]"


def bash_like_turn(rng: random.Random) -> tuple[str, list[tuple[str, str]], str, None, str, str]:
    cmd = rng.choice(_BASH)
    what = rng.choice(["their names", "the total"])
    task = f"Count the files in /testbed that match the pattern and print {what}."
    history = [(f"{rng.randint(0, 99)}\nfile{rng.randint(1, 9)}.txt", rng.choice(_BASH))]
    return task, history, "bash: syntax error near unexpected token `|'", None, \
        "The last command had a syntax error, so I fix the pipe.", cmd


def env_text_corpus(extra_texts: Iterable[str] | None = None, n_samples: int = 300,
                    seed: int = 0) -> list[str]:
    """Text for training the tokenizer: generic English, the prompt builder's fixed strings, synthetic
    ALFWorld/WebShop/bash-like student turns rendered with the real prompt builder, and any ``extra_texts``
    (real env observations, transcripts). Needs no env and no file; deterministic for a ``seed``."""
    rng = random.Random(seed)
    texts = [_GENERIC_TEXT, prompting.ROLE, prompting.FORMAT_RULE, *(s.rules for s in SPECS.values()),
             prompting.GENERIC_RULES]
    makers = [(alfworld_like_turn, "alfworld"), (webshop_like_turn, "webshop"), (bash_like_turn, "bash")]
    for i in range(n_samples):
        make, env = makers[i % len(makers)]
        task, history, obs, cands, reason, action = make(rng)
        for m in prompting.build_messages(task, history, obs, cands, env=env):
            texts.append(m["content"])
        texts.append(prompting.format_target(reason, action))
    texts.extend(t for t in (extra_texts or ()) if isinstance(t, str) and t)
    return texts


def build_tokenizer(texts: Iterable[str] | None = None, vocab_size: int = 4096,
                    min_frequency: int = 2) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on ``texts`` (default: ``env_text_corpus()``) with the chat template attached.

    ``vocab_size`` is a ceiling: a small corpus runs out of merges earlier, so build models from
    ``len(tokenizer)``, never from the requested size.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = list(env_text_corpus() if texts is None else texts)
    if not corpus:
        raise ValueError("build_tokenizer needs at least one training text")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=SPECIAL_TOKENS)
    tok.train_from_iterator(corpus, trainer=trainer)
    out = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=END, pad_token=PAD,
                                  additional_special_tokens=SPECIAL_TOKENS[3:], model_max_length=2048)
    out.chat_template = CHAT_TEMPLATE
    return out
