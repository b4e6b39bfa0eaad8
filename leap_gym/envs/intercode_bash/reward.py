"""InterCode Bash's reward, reproduced from the spec (section 2) with plain Python floats in the original
order.

reward = 0.01 + p1 (file-system diff) + p2 (md5 of common new paths) + p3 (TF-IDF similarity of the last
observation with the gold output); success is ``reward == 1.0`` exactly. The parts that need the sandboxes
(``git status`` and the hash commands) are computed by the caller inside them; this module is pure.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field

_TOKEN = re.compile(r"(?u)\b\w\w+\b")
NEW_CODES = frozenset({"A", "??", "C"})


def parse_status(text: str) -> list[tuple[str, str]]:
    """The original's parser: split on all whitespace and pair tokens as (path, code).

    A path with a space (printed quoted by git) gives an odd token count and raises ``IndexError``, as in the
    original; use ``parse_status_lines`` for the fixed parser.
    """
    t = text.split()
    return [(t[i + 1], t[i]) for i in range(0, len(t), 2)]


def parse_status_lines(text: str) -> list[tuple[str, str]]:
    """A correct parser of ``git status --short`` lines: code, then the (possibly quoted) path."""
    out = []
    for line in text.splitlines():
        if len(line) < 4:
            continue
        code, path = line[:2].strip(), line[3:]
        if len(path) >= 2 and path[0] == '"' and path[-1] == '"':
            path = _unquote(path[1:-1])
        out.append((path, code))
    return out


def _unquote(s: str) -> str:
    simple = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}
    raw, i = bytearray(), 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            nxt = s[i + 1]
            if nxt in simple:
                raw.append(simple[nxt])
                i += 2
                continue
            if s[i + 1:i + 4].isdigit():
                raw.append(int(s[i + 1:i + 4], 8))
                i += 4
                continue
        raw += c.encode("utf-8")
        i += 1
    return raw.decode("utf-8", "surrogateescape")


def tfidf_similarity(a: str, b: str) -> float:
    """scikit-learn's ``TfidfVectorizer()`` defaults fit on [a, b], cosine of the two rows.

    Raises ``ValueError`` on an empty vocabulary, as scikit-learn does (the caller falls back to equality).
    """
    docs = [Counter(_TOKEN.findall(a.lower())), Counter(_TOKEN.findall(b.lower()))]
    vocab = sorted(set(docs[0]) | set(docs[1]))
    if not vocab:
        raise ValueError("empty vocabulary; perhaps the documents only contain stop words")
    n = 2
    idf = {w: math.log((1 + n) / (1 + sum(w in d for d in docs))) + 1.0 for w in vocab}
    rows = []
    for d in docs:
        vec = [d[w] * idf[w] if w in d else 0.0 for w in vocab]
        norm = math.sqrt(sum(x * x for x in vec))
        rows.append([x / norm for x in vec] if norm > 0 else vec)
    return sum(x * y for x, y in zip(rows[0], rows[1], strict=True))


def similarity_part(agent_obs: str | None, eval_obs: str | None) -> tuple[float, float]:
    """(raw similarity, p3); any failure falls back to exact equality, as the original's ``except``."""
    try:
        if agent_obs is None or eval_obs is None:
            raise TypeError("missing observation")
        sim = tfidf_similarity(agent_obs, eval_obs)
    except (ValueError, TypeError):
        sim = 1.0 if agent_obs == eval_obs else 0.0
    return sim, round(0.33 * sim, 2)


@dataclass
class RewardResult:
    reward: float
    parts: dict[str, float] = field(default_factory=dict)
    diff_miss: list[tuple[str, str]] = field(default_factory=list)
    diff_extra: list[tuple[str, str]] = field(default_factory=list)
    same: list[str] = field(default_factory=list)
    same_correct: int = 0
    similarity: float = 0.0
    error: str | None = None  # set when the computation broke; the reward is then 0.0

    def to_info(self) -> dict:
        return {"reward": self.reward, "parts": dict(self.parts),
                "diff_miss": [list(x) for x in self.diff_miss],
                "diff_extra": [list(x) for x in self.diff_extra], "diff_same": list(self.same),
                "diff_same_correct": self.same_correct, "answer_similarity": self.similarity,
                "error": self.error}


def file_diff_part(agent: list[tuple[str, str]], gold: list[tuple[str, str]]):
    a, g = set(agent), set(gold)
    miss, extra = g - a, a - g
    p1 = round(0.33 * (1 - math.erf(len(miss) + len(extra))), 2)
    same = sorted(x[0] for x in a & g if x[1] in NEW_CODES)
    return p1, sorted(miss), sorted(extra), same


def combine(p1: float, p2: float, p3: float) -> float:
    reward = 0.01
    reward += p1
    reward += p2
    reward += p3
    return reward
