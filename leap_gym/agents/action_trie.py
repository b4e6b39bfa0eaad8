"""Constrained decoding over admissible actions: once a row of a batched ``generate`` has written the action
marker, only token continuations of that row's admissible actions (each followed by end-of-turn) are allowed.

The student writes its reason freely and then picks among real actions token by token, at the cost of the
generation itself. Candidates are tokenized as `` <action>`` after the marker, the way ``format_target``
trains them (byte-level BPE starts a new word at a space, so this is also their tokenization in context). A
row that never writes the marker, or whose candidates include a free-text template (WebShop's
``search[<query>]``), is left alone: the caller scores its candidates afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import LogitsProcessor


class ActionTrie(LogitsProcessor):
    """Per row: after the last occurrence of ``marker`` among the generated tokens, mask every token that does
    not continue one of the row's candidate token sequences.

    ``start``: the prompt width (generated tokens begin there). ``candidates[row]``: token ids of each
    admissible action of that row, end-of-turn included, or ``None`` to leave the row unconstrained.
    """

    def __init__(self, marker: Sequence[int], candidates: Sequence[Sequence[Sequence[int]] | None],
                 start: int):
        self.marker, self.start = list(marker), start
        self.candidates = [None if c is None else [list(x) for x in c] for c in candidates]

    def allowed(self, row: int, generated: list[int]) -> set[int] | None:
        """The token ids row ``row`` may write next after ``generated``; ``None`` when it is unconstrained
        (no candidates, no marker yet, or an action no candidate starts with)."""
        cands, m = self.candidates[row], len(self.marker)
        if not cands or m == 0:
            return None
        at = next((i for i in range(len(generated) - m, -1, -1) if generated[i:i + m] == self.marker), None)
        if at is None:
            return None
        action = generated[at + m:]
        j = len(action)
        nxt = {c[j] for c in cands if len(c) > j and c[:j] == action}
        return nxt or None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        rows = list(range(scores.shape[0]))
        return self.constrain(scores, rows, [input_ids[row, self.start:].tolist() for row in rows])

    def constrain(self, scores: torch.Tensor, rows: Sequence[int], generated: Sequence[list[int]]
                  ) -> torch.Tensor:
        """``scores`` (one line per batch row) with the disallowed tokens of each row at ``-inf``: batch row
        ``b`` is candidate row ``rows[b]``, whose tokens so far are ``generated[rows[b]]`` (a decoding loop
        that drops finished rows from its batch keeps the original rows this way)."""
        for b, row in enumerate(rows):
            allowed = self.allowed(row, generated[row])
            if allowed is not None:
                keep = torch.tensor(sorted(allowed), dtype=torch.long, device=scores.device)
                kept = scores[b, keep]
                scores[b] = float("-inf")
                scores[b, keep] = kept
        return scores
