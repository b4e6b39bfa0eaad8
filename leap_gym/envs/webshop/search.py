"""BM25 search over the original's indexed text, without Java: a streaming indexer feeding ``bm25s``.

The original searched with pyserini/Anserini defaults: BM25 (Lucene 8 form) with k1=0.9, b=0.4, and the
English analyzer (standard tokenizer, possessive removal, lowercase, Lucene's 33 stopwords, Porter stemming),
top 50. Here ``Analyzer`` reproduces that analysis (PyStemmer's Porter stemmer; bm25s's English stopword list
is Lucene's), ``build_index`` streams documents into a term-by-document score matrix in chunks (bounded memory
at a million products, where bm25s's own indexer would hold every token list), and retrieval runs through a
``bm25s.BM25`` object holding that matrix. Scores follow bm25s's ``lucene`` method exactly; with
``lossy_norms=True`` (default, like Lucene) document lengths are first rounded through Lucene's one-byte norm
encoding (``SmallFloat``). Ties are broken by document order after rounding scores to 4 decimals.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

K1, B, TOP_K = 0.9, 0.4, 50
TOKEN_RE = re.compile(r"\w+(?:[.'’]\w+)*")
INDEX_FORMAT = 1


class Analyzer:
    """Text -> index terms, like Anserini's default English analyzer."""

    def __init__(self) -> None:
        self._stem = Stemmer.Stemmer("porter").stemWord
        self._stop = frozenset(STOPWORDS_EN)
        self._cache: dict[str, str] = {}

    def term(self, word: str) -> str:
        """The index term of one lowercased token ('' for a stopword)."""
        t = self._cache.get(word)
        if t is None:
            w = word[:-2] if word.endswith(("'s", "’s")) else word
            t = "" if (not w or w in self._stop) else self._stem(w)
            if len(self._cache) < 2_000_000:
                self._cache[word] = t
        return t

    def terms(self, text: str) -> list[str]:
        cache, term = self._cache, self.term
        out = []
        for w in TOKEN_RE.findall(text.lower()):
            t = cache.get(w)
            if t is None:
                t = term(w)
            if t:
                out.append(t)
        return out


def _lucene_norm_lengths(lengths: np.ndarray) -> np.ndarray:
    """Document lengths as Lucene stores them: ``byte4ToInt(intToByte4(length))`` (exact below 24)."""
    free = 24  # NUM_FREE_VALUES = 255 - longToInt4(Integer.MAX_VALUE)
    lengths = lengths.astype(np.int64)
    out = lengths.copy()
    big = lengths >= free
    v = lengths[big] - free
    nbits = np.zeros_like(v)
    nz = v > 0
    nbits[nz] = np.floor(np.log2(v[nz])).astype(np.int64) + 1
    shift = np.maximum(nbits - 4, 0)
    mantissa = np.where(nbits < 4, v, (v >> shift) & 0x07)
    # decode: subnormal values (fewer than 4 bits) are exact; others keep their top 4 bits
    decoded = np.where(nbits < 4, v, (mantissa | 0x08) << shift)
    out[big] = free + decoded
    return out


def build_index(texts: Iterable[str], analyzer: Analyzer | None = None, k1: float = K1, b: float = B,
                lossy_norms: bool = True, chunk_docs: int = 20_000):
    """A ``bm25s.BM25`` (method "lucene") whose score matrix is built from ``texts`` in bounded-memory
    chunks."""
    analyzer = analyzer or Analyzer()
    vocab: dict[str, int] = {}
    word_ids: dict[str, int] = {}  # token -> term id, -1 for stopwords
    docs_parts, terms_parts, tf_parts, lengths = [], [], [], []
    n_docs = 0

    def flush(flat: list[int], doc_len: list[int]) -> None:
        if not doc_len:
            return
        local = np.repeat(np.arange(len(doc_len), dtype=np.int64), doc_len)
        keys, counts = np.unique((local << 32) | np.asarray(flat, dtype=np.int64), return_counts=True)
        docs_parts.append(((keys >> 32) + n_docs).astype(np.int32))
        terms_parts.append((keys & 0xFFFFFFFF).astype(np.int32))
        tf_parts.append(counts.astype(np.float32))
        lengths.append(np.asarray(doc_len, dtype=np.int64))

    flat: list[int] = []
    doc_len: list[int] = []
    for text in texts:
        before = len(flat)
        for w in TOKEN_RE.findall(text.lower()):
            i = word_ids.get(w)
            if i is None:
                t = analyzer.term(w)
                i = vocab.setdefault(t, len(vocab)) if t else -1
                word_ids[w] = i
            if i >= 0:
                flat.append(i)
        doc_len.append(len(flat) - before)
        if len(doc_len) >= chunk_docs:
            flush(flat, doc_len)
            n_docs += len(doc_len)
            flat, doc_len = [], []
    flush(flat, doc_len)
    n_docs += len(doc_len)
    del flat, doc_len, word_ids

    docs = np.concatenate(docs_parts) if docs_parts else np.zeros(0, np.int32)
    terms = np.concatenate(terms_parts) if terms_parts else np.zeros(0, np.int32)
    tf = np.concatenate(tf_parts) if tf_parts else np.zeros(0, np.float32)
    docs_parts.clear(), terms_parts.clear(), tf_parts.clear()
    dl = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
    avgdl = float(dl.sum()) / max(n_docs, 1) or 1.0
    if lossy_norms:
        dl = _lucene_norm_lengths(dl)
    n_vocab = len(vocab)
    df = np.bincount(terms, minlength=n_vocab).astype(np.float64)
    idf = np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
    norm = (k1 * ((1 - b) + b * dl.astype(np.float32) / np.float32(avgdl))).astype(np.float32)
    scores = idf[terms] * (tf / (tf + norm[docs]))
    del tf
    order = np.argsort(terms, kind="stable")
    del terms
    indices = docs[order]
    del docs
    data = scores[order]
    del scores, order
    indptr = np.zeros(n_vocab + 1, dtype=np.int64)
    np.cumsum(df.astype(np.int64), out=indptr[1:])

    retriever = bm25s.BM25(method="lucene", k1=k1, b=b)
    retriever.scores = {"data": data, "indices": indices, "indptr": indptr, "num_docs": n_docs}
    retriever.vocab_dict = vocab
    retriever.nonoccurrence_array = None
    return retriever


def top_k(scores: np.ndarray, k: int = TOP_K) -> list[int]:
    """Indices of the ``k`` best positive scores, best first; scores equal to 4 decimals: lower index first.

    On large arrays a threshold from a strided sample narrows the candidates first; the result is exact (the
    sample's bound is used only when at least ``k`` scores clear it, widened to every tie of the k-th).
    """
    docs = None
    stride = scores.size // 8192
    if stride > 1:
        sample = scores[::stride]
        j = min(sample.size, -(-2 * k // stride))
        thr = float(np.partition(sample, sample.size - j)[sample.size - j])
        if thr > 0:
            cand = np.flatnonzero(scores >= thr)
            if cand.size >= k:  # then the k-th best is >= thr; widen to its ties below thr if any
                sub = scores[cand]
                kth = float(np.partition(sub, sub.size - k)[sub.size - k])
                docs = cand if kth - 1e-4 >= thr else np.flatnonzero(scores >= kth - 1e-4)
    if docs is None:
        docs = np.flatnonzero(scores > 0)  # only matching documents are hits
    if docs.size == 0:
        return []
    sub = scores[docs]
    if docs.size > k:  # keep the top k and everything tied with the k-th after rounding
        part = np.argpartition(-sub, k - 1)[:k]
        keep = sub >= sub[part].min() - 1e-4
        docs, sub = docs[keep], sub[keep]
    rounded = np.round(sub.astype(np.float64), 4)
    order = np.lexsort((docs, -rounded))[:k]
    return [int(i) for i in docs[order]]


class SearchIndex:
    """Top-50 BM25 search with the original's query handling; build once, save/load per catalog."""

    def __init__(self, retriever, analyzer: Analyzer | None = None):
        self.retriever = retriever
        self.analyzer = analyzer or Analyzer()
        self.num_docs = int(retriever.scores["num_docs"])

    @classmethod
    def build(cls, texts: Iterable[str], lossy_norms: bool = True) -> SearchIndex:
        analyzer = Analyzer()
        return cls(build_index(texts, analyzer, lossy_norms=lossy_norms), analyzer)

    def scores(self, query: str) -> np.ndarray:
        vocab = self.retriever.vocab_dict
        ids = [vocab[t] for t in self.analyzer.terms(query) if t in vocab]
        if not ids:
            return np.zeros(self.num_docs, dtype=np.float32)
        return self.retriever.get_scores_from_ids(ids)

    def search(self, query: str, k: int = TOP_K) -> list[int]:
        """Document numbers of the top ``k`` matching documents, best first (ties: lower document first)."""
        return top_k(self.scores(query), k)

    # --- persistence
    # ------------------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike, meta: dict | None = None) -> None:
        """Write the index to ``directory`` atomically (built in a temporary sibling, then renamed into
        place)."""
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        try:
            self.retriever.save(str(tmp), show_progress=False)
            with open(tmp / "leap_gym_index.json", "w", encoding="utf-8") as f:
                json.dump({"format": INDEX_FORMAT, "num_docs": self.num_docs, **(meta or {})}, f)
            try:
                os.rename(tmp, directory)
            except OSError:
                if not (directory / "leap_gym_index.json").exists():  # not a concurrent builder's result
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @classmethod
    def load(cls, directory: str | os.PathLike, mmap: bool = True) -> SearchIndex:
        directory = Path(directory)
        marker = directory / "leap_gym_index.json"
        try:
            with open(marker, encoding="utf-8") as f:
                meta = json.load(f)
            if meta.get("format") != INDEX_FORMAT:
                raise ValueError(f"index format {meta.get('format')!r}, expected {INDEX_FORMAT}")
            retriever = bm25s.BM25.load(str(directory), mmap=mmap)
        except (OSError, ValueError, KeyError) as e:
            raise ValueError(f"corrupt or incompatible WebShop search index at {directory}: {e}") from e
        retriever.nonoccurrence_array = None
        return cls(retriever)


def cache_root() -> Path:
    """Where built indexes live: ``$LEAP_GYM_CACHE`` or ``$XDG_CACHE_HOME/leap_gym``
    (``~/.cache/leap_gym``)."""
    if os.environ.get("LEAP_GYM_CACHE"):
        return Path(os.environ["LEAP_GYM_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "leap_gym"


def load_or_build(directory: Path, texts_factory, meta: dict | None = None) -> SearchIndex:
    """Load the index cached at ``directory``; build and save it first when missing (or corrupt)."""
    if (directory / "leap_gym_index.json").exists():
        try:
            return SearchIndex.load(directory)
        except ValueError:
            shutil.rmtree(directory, ignore_errors=True)
    index = SearchIndex.build(texts_factory())
    try:
        index.save(directory, meta)
    except OSError:
        return index  # read-only cache: keep the in-memory index
    return SearchIndex.load(directory)
