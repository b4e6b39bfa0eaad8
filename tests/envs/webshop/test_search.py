"""BM25 search: the analyzer, parity with bm25s's own Lucene scoring, Lucene norms, top-50 order, the
cache."""

import numpy as np
import pytest

from leap_gym.envs.webshop.search import (
    Analyzer,
    SearchIndex,
    _lucene_norm_lengths,
    build_index,
    load_or_build,
)

DOCS = [
    "trailmax men's waterproof hiking boot, rubber sole, size 9.5",
    "camp sock 3-pack for hiking and running",
    "waterproof rain jacket for men",
    "the boots are the best boots",
    "ruby red matte lipstick, long lasting",
    "gold plated hdmi cable 6 ft",
]


def test_analyzer_like_lucene_english():
    a = Analyzer()
    # possessive dropped, stopwords ("the", "and", "for") removed, Porter stems, "9.5" kept whole
    assert a.terms("The men's boots and socks for running, size 9.5") == [
        "men", "boot", "sock", "run", "size", "9.5"]
    assert a.terms("3-pack x-large") == ["3", "pack", "x", "larg"]


def test_scores_match_bm25s_lucene_exactly_without_lossy_norms():
    import bm25s

    analyzer = Analyzer()
    ours = build_index(DOCS, analyzer, lossy_norms=False, chunk_docs=2)  # chunking must not matter
    ref = bm25s.BM25(method="lucene", k1=0.9, b=0.4)
    ref.index([analyzer.terms(d) for d in DOCS], show_progress=False)
    for q in ["waterproof boots", "hiking", "red lipstick boot", "cable"]:
        terms = analyzer.terms(q)
        got = ours.get_scores_from_ids([ours.vocab_dict[t] for t in terms])
        want = ref.get_scores([t for t in terms])
        np.testing.assert_allclose(got, want, rtol=1e-5)


def test_lucene_norm_encoding():
    lengths = np.array([0, 1, 23, 24, 25, 31, 32, 39, 40, 100, 1000])
    # exact below 24; above, 24 + (length - 24) rounded down to 4 significant bits
    assert _lucene_norm_lengths(lengths).tolist() == [0, 1, 23, 24, 25, 31, 32, 39, 40, 96, 984]


def test_search_order_ties_and_misses():
    index = SearchIndex.build(["red boot", "red boot", "blue boot", "green hat"])
    assert index.search("red boot") == [0, 1, 2]  # equal scores: lower document first
    assert index.search("hat") == [3]
    assert index.search("zebra") == [] and index.search("the and") == []


def test_top_fifty_only():
    index = SearchIndex.build([f"boot model {i}" for i in range(120)])
    hits = index.search("boot")
    assert len(hits) == 50 and hits == list(range(50))


def test_save_load_and_corrupt_cache(tmp_path):
    built = []

    def texts():
        built.append(1)
        return iter(DOCS)

    d = tmp_path / "idx"
    a = load_or_build(d, texts)
    b = load_or_build(d, texts)
    assert len(built) == 1 and a.search("waterproof boot") == b.search("waterproof boot")
    (d / "params.index.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupt"):
        SearchIndex.load(d)
    c = load_or_build(d, texts)  # a corrupt cache is rebuilt
    assert len(built) == 2 and c.search("waterproof boot") == a.search("waterproof boot")


def _top_k_reference(scores, k=50):
    pos = [(round(float(s), 4), i) for i, s in enumerate(scores) if s > 0]
    return [i for _, i in sorted(pos, key=lambda x: (-x[0], x[1]))[:k]]


@pytest.mark.parametrize("n,levels,density",
                         [(100_000, 1000, 1.0), (100_000, 5, 1.0), (200_000, 10**6, 0.001),
                          (50_000, 3, 0.3), (30, 10, 1.0)])
def test_top_k_is_exact_on_large_arrays_with_ties(n, levels, density):
    from leap_gym.envs.webshop.search import top_k

    rng = np.random.default_rng(n + levels)
    scores = (rng.integers(1, levels + 1, n) / 7.0).astype(np.float32)
    scores[rng.random(n) > density] = 0
    assert top_k(scores) == _top_k_reference(scores)
