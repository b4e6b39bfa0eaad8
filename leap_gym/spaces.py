"""A text space for observations and actions that accepts any Unicode string.

Gymnasium's ``Text`` space restricts the character set and length, but observations of these benchmarks hold
arbitrary page text and bash output, and actions are free text an LLM wrote. ``UnicodeText`` checks only that
a value is a ``str`` of bounded length; sampling draws printable text so ``check_env`` and random agents work.
It also has a shared-memory layout, so ``AsyncVectorEnv`` (and
``gym.make_vec(..., vectorization_mode="async")``) works with its defaults.
"""

from __future__ import annotations

import multiprocessing as mp
import string
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np
from gymnasium.spaces import Space
from gymnasium.vector.utils import create_shared_memory, read_from_shared_memory, write_to_shared_memory

_SAMPLE_CHARSET = string.ascii_letters + string.digits + " _-./[]"


class UnicodeText(Space[str]):
    """Any ``str`` of at most ``max_length`` characters (Unicode included)."""

    def __init__(self, max_length: int = 1 << 20, seed: int | np.random.Generator | None = None):
        if max_length <= 0:
            raise ValueError(f"max_length must be positive, got {max_length}")
        self.max_length = int(max_length)
        super().__init__(shape=None, dtype=None, seed=seed)

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        length = int(self.np_random.integers(1, min(self.max_length, 32) + 1))
        idx = self.np_random.integers(0, len(_SAMPLE_CHARSET), size=length)
        return "".join(_SAMPLE_CHARSET[i] for i in idx)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and len(x) <= self.max_length

    def __repr__(self) -> str:
        return f"UnicodeText(max_length={self.max_length})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UnicodeText) and other.max_length == self.max_length

    def to_jsonable(self, sample_n: list[str]) -> list[str]:
        return list(sample_n)

    def from_jsonable(self, sample_n: list[str]) -> list[str]:
        return list(sample_n)


# -- AsyncVectorEnv's shared memory (its default): one slot of UTF-8 bytes per env, up to 4 bytes per
# character --

class SharedTexts(Sequence):
    """A live, read-only view of the texts in ``UnicodeText`` shared memory (one per env).

    ``AsyncVectorEnv`` reads its shared memory once and returns that object at every step (deep-copied unless
    ``copy=False``): a view that decodes on access stays current, and its deep copy is a plain tuple of
    ``str``, the type the vector envs return without shared memory.
    """

    def __init__(self, space: UnicodeText, shared_memory: tuple[Any, Any], n: int):
        self._lengths = np.frombuffer(shared_memory[0], dtype=np.int64)
        self._data = np.frombuffer(shared_memory[1], dtype=np.uint8).reshape(n, _slot_bytes(space))

    def __len__(self) -> int:
        return len(self._lengths)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return tuple(self)[i]
        return self._data[i, : self._lengths[i]].tobytes().decode("utf-8", "surrogatepass")

    def __eq__(self, other: object) -> bool:
        return tuple(self) == (tuple(other) if isinstance(other, Sequence) else other)

    def __deepcopy__(self, memo: dict) -> tuple[str, ...]:
        return tuple(self)

    def __repr__(self) -> str:
        return f"SharedTexts({tuple(self)!r})"


def _slot_bytes(space: UnicodeText) -> int:
    return 4 * space.max_length


@create_shared_memory.register(UnicodeText)
def _create_shared(space: UnicodeText, n: int = 1, ctx: ModuleType = mp) -> tuple[Any, Any]:
    return ctx.Array("q", n, lock=False), ctx.Array("B", n * _slot_bytes(space), lock=False)


@read_from_shared_memory.register(UnicodeText)
def _read_shared(space: UnicodeText, shared_memory: tuple[Any, Any], n: int = 1) -> SharedTexts:
    return SharedTexts(space, shared_memory, n)


@write_to_shared_memory.register(UnicodeText)
def _write_shared(space: UnicodeText, index: int, value: str, shared_memory: tuple[Any, Any]) -> None:
    data = value.encode("utf-8", "surrogatepass")
    size = _slot_bytes(space)
    if not space.contains(value) or len(data) > size:
        raise ValueError(f"{space} cannot hold a {type(value).__name__} of {len(value)} characters")
    np.frombuffer(shared_memory[1], dtype=np.uint8)[index * size: index * size + len(data)] = np.frombuffer(
        data, dtype=np.uint8)
    shared_memory[0][index] = len(data)
