"""SLU-F1 against SLURP's reference scorer (pswietojanski/slurp @ 8eb1654,
``scripts/evaluation/metrics``): the figures below are what that code gives (run with its pinned
jiwer 2.0.0 and textdistance 4.1.5) on the same entities; the repository ships no test cases of
its own. Each case is written in our ``slot=value`` format; the reference is the gold side."""

from __future__ import annotations

import pytest

from speechllm.evaluation.metrics import slu_f1

# (name, predicted, gold, SLURP's word-F1, char-F1, SLU-F1)
CASES = [
    ("exact", "date=tomorrow", "date=tomorrow", 1.0, 1.0, 1.0),
    # WER 1/2 and char 1/11: SLU-F1 pools the counts, it is not the mean (0.7917)
    ("partial filler", "event_name=dance glass", "event_name=dance class", 0.6667, 0.9167, 0.7719),
    ("missing slot", "date=tomorrow", "date=tomorrow; time=seven am", 0.6667, 0.6667, 0.6667),
    ("extra slot", "date=tomorrow; place_name=london", "date=tomorrow", 0.6667, 0.6667, 0.6667),
    # "mary" takes mary (d=0), "jon" takes john (word d=1, char d=1/4)
    (
        "duplicate types",
        "person=mary; person=jon",
        "person=john; person=mary",
        0.6667,
        0.8889,
        0.7619,
    ),
    # greedy in prediction order: "jon" takes john first, so "john" is a false positive
    ("greedy order", "person=jon; person=john", "person=john", 0.4, 0.5714, 0.4706),
    ("wrong type", "time=monday", "date=monday", 0.0, 0.0, 0.0),
    # gold fillers are lower-cased, predictions are not
    ("case counts", "event_name=Dance Class", "event_name=dance class", 0.5, 0.8462, 0.6286),
    (
        "insertion: WER above 1",
        "place_name=the city of paris",
        "place_name=paris",
        0.25,
        0.5862,
        0.3505,
    ),
    ("empty predicted filler", "date=", "date=tomorrow", 0.5, 0.5, 0.5),
]


@pytest.mark.parametrize(
    ("name", "pred", "gold", "word", "char", "slu"), CASES, ids=[c[0] for c in CASES]
)
def test_matches_slurp_reference_per_case(
    name: str, pred: str, gold: str, word: float, char: float, slu: float
) -> None:
    scores = slu_f1([pred], [gold])
    got = (scores["word_f1"], scores["char_f1"], scores["slu_f1"])
    assert got == pytest.approx((100 * word, 100 * char, 100 * slu), abs=0.01)


def test_matches_slurp_reference_over_a_corpus() -> None:
    """Micro averaging over utterances: SLURP's figures for the partial, missing, extra and
    duplicate cases together (word 5/2.5/2.5, char 5/1.3409/1.3409)."""
    picked = [
        c
        for c in CASES
        if c[0] in ("partial filler", "missing slot", "extra slot", "duplicate types")
    ]
    scores = slu_f1([c[1] for c in picked], [c[2] for c in picked])
    assert scores["word_f1"] == pytest.approx(66.67, abs=0.01)
    assert scores["char_f1"] == pytest.approx(78.85, abs=0.01)
    assert scores["slu_f1"] == pytest.approx(72.25, abs=0.01)
    assert scores["span_f1"] == pytest.approx(50.0, abs=0.01)
