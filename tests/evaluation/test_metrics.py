import math

import pytest

from speechllm.evaluation.metrics import (
    OTHER_LABEL,
    PRIMARY_METRIC,
    TASK_SCORERS,
    auroc,
    bleu,
    cer,
    confusion_matrix,
    keyword_f1,
    parse_joint,
    parse_slots,
    score_predictions,
    score_task,
    slu_f1,
    uar,
    wer,
)


def test_wer_counts_substitution_insertion_deletion_over_reference_words() -> None:
    # "a b c" -> "a x c d": 1 substitution + 1 insertion; "d" -> "": 1 deletion; 4 ref words.
    assert wer(["a x c d", ""], ["a b c", "d"]) == pytest.approx(75.0)


def test_cer() -> None:
    # One substitution over 3 + 2 reference characters.
    assert cer(["abd", "xy"], ["abc", "xy"]) == pytest.approx(20.0)


def test_bleu_identical_is_100() -> None:
    assert bleu(["the cat sat on the mat"], ["the cat sat on the mat"]) == pytest.approx(100.0)


def test_bleu_hand_computed() -> None:
    # Clipped n-gram precisions 5/6, 3/5, 2/4, 1/3; equal lengths so brevity penalty 1.
    expected = 100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25  # 53.73
    assert bleu(["the cat sat on the mat"], ["the cat sat on a mat"]) == pytest.approx(expected)


def test_uar_on_imbalanced_classes() -> None:
    targets = ["neu"] * 8 + ["ang"] * 2
    predictions = ["neu"] * 7 + ["ang"] + ["ang", "neu"]
    # recall(neu) = 7/8, recall(ang) = 1/2; accuracy would be 8/10.
    assert uar(predictions, targets) == pytest.approx(100 * (7 / 8 + 1 / 2) / 2)
    # Always answering the majority class gets 1 / n_classes.
    assert uar(["neu"] * 10, targets) == pytest.approx(50.0)


def test_keyword_f1_is_micro_over_normalised_sets() -> None:
    predictions = ["paris, louvre", "Budget.", "", "x, x"]
    targets = ["Paris, Eiffel Tower", "budget", "a, b", "x"]
    # tp = 1 + 1 + 0 + 1, fp = 1 + 0 + 0 + 0, fn = 1 + 0 + 2 + 0 -> 2*3 / (2*3 + 1 + 3)
    assert keyword_f1(predictions, targets) == pytest.approx(60.0)


def test_parse_slots_normalises_and_drops_malformed_parts() -> None:
    assert parse_slots("Time = 5 PM; garbage; date=; place_name=London") == [
        ("time", "five pm"),
        ("place_name", "london"),
    ]


def test_slu_f1_hand_computed_slurp_case() -> None:
    targets = ["date=today; time=five pm", "place_name=london"]
    predictions = ["date=today; time=five am", "person=london; place_name=new london"]
    # Type matches: date (distance 0), time, place_name; "person" has no gold -> fp 1.
    # word distance (WER): time 1/2, place_name 1 insertion / 1 word = 1.
    word = (3, 0.5 + 1 + 1, 0.5 + 1)  # tp, fp, fn
    # char distance (Levenshtein / longer length): time 1/7, place_name 4/10.
    char = (3, 1 / 7 + 1 + 0.4, 1 / 7 + 0.4)

    def f1(tp: float, fp: float, fn: float) -> float:
        return 100 * 2 * tp / (2 * tp + fp + fn)

    scores = slu_f1(predictions, targets)
    assert scores["word_f1"] == pytest.approx(60.0)
    assert scores["word_f1"] == pytest.approx(f1(*word))
    assert scores["char_f1"] == pytest.approx(f1(*char))
    assert scores["slu_f1"] == pytest.approx(f1(*(w + c for w, c in zip(word, char, strict=True))))
    # Exact spans: only date=today; 4 predicted, 3 gold -> 2*1 / (2*1 + 3 + 2).
    assert scores["span_f1"] == pytest.approx(100 * 2 / 7)


def test_slu_f1_matches_the_closest_gold_slot_of_the_same_type() -> None:
    scores = slu_f1(["time=six pm"], ["time=five pm; time=six pm"])
    # Matched to "six pm" at distance 0; "five pm" is a miss: tp 1, fp 0, fn 1.
    assert scores == pytest.approx({k: 100 * 2 / 3 for k in scores})
    assert slu_f1([""], ["time=six pm"])["slu_f1"] == 0.0


def test_auroc_hand_computed_and_single_class_labels_skipped() -> None:
    y_true = [[1, 0, 1], [0, 0, 1], [1, 0, 0], [0, 0, 0]]
    y_score = [[0.9, 0.1, 0.9], [0.8, 0.2, 0.8], [0.3, 0.3, 0.2], [0.1, 0.4, 0.1]]
    # Label 0: positive/negative pairs (.9>.8, .9>.1, .3<.8, .3>.1) -> 3/4.
    # Label 1: never positive -> skipped (not counted as 0 or 0.5). Label 2: separable -> 1.
    assert auroc(y_true, y_score) == pytest.approx(100 * (0.75 + 1.0) / 2)
    assert math.isnan(auroc([[0], [0]], [[0.2], [0.7]]))


def test_confusion_matrix_pools_off_label_predictions() -> None:
    labels, matrix = confusion_matrix(["a", "b", "banana"], ["a", "a", "b"])
    assert labels == ["a", "b", OTHER_LABEL]
    assert matrix == [[1, 1, 0], [0, 0, 1], [0, 0, 0]]
    assert confusion_matrix(["a"], ["a"], labels=["b", "a"]) == (["b", "a"], [[0, 0], [0, 1]])


def test_every_task_has_a_primary_metric_it_reports() -> None:
    assert set(TASK_SCORERS) == set(PRIMARY_METRIC)
    for task, scorer in TASK_SCORERS.items():
        assert PRIMARY_METRIC[task] in scorer(["a"], ["a"])


@pytest.mark.parametrize(
    ("task", "predictions", "targets", "expected"),
    [
        (
            "asr",
            ["Hello world!", "it is 21"],
            ["hello world", "it is twenty one"],
            # raw: "Hello", "world!", "21" substituted and "one" deleted: 4 errors / 6 words.
            {"n": 2, "wer": 0.0, "cer": 0.0, "wer_raw": 200 / 3},
        ),
        ("st", ["the cat sat on the mat"], ["the cat sat on the mat"], {"n": 1, "bleu": 100.0}),
        ("instruct", ["a b c d"], ["a b c d"], {"bleu": 100.0}),
        ("ic", ["Alarm_Set.", "play_music"], ["alarm_set", "alarm_query"], {"accuracy": 50.0}),
        ("kws", ["Yes", "no", "no"], ["yes", "yes", "no"], {"accuracy": 200 / 3}),
        ("er", ["neu", "neu", "neu", "ang"], ["neu", "neu", "neu", "sad"], {"uar": 50.0}),
        ("kwe", ["a, b"], ["b, c"], {"f1": 50.0}),
        ("sf", ["date=today"], ["date=today"], {"slu_f1": 100.0, "span_f1": 100.0}),
    ],
)
def test_score_task_per_family(
    task: str, predictions: list[str], targets: list[str], expected: dict[str, float]
) -> None:
    scores = score_task(task, predictions, targets)
    assert {k: scores[k] for k in expected} == pytest.approx(expected)


def test_score_task_adds_auroc_from_label_scores() -> None:
    scores = score_task(
        "kws",
        ["yes", "no", "yes"],
        ["Yes", "yes", "no"],
        ["yes", "no"],
        [[0.9, 0.1], [0.4, 0.6], [0.7, 0.3]],
    )
    # "yes" column: positives .9, .4 vs negative .7 -> 1/2; "no" column: .3 vs .1, .6 -> 1/2.
    assert scores["auroc"] == pytest.approx(50.0)
    single_class = score_task("kws", ["yes"], ["yes"], ["yes", "no"], [[0.9, 0.1]])
    assert "auroc" not in single_class


def test_score_task_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown task"):
        score_task("nope", ["a"], ["a"])
    with pytest.raises(ValueError, match="targets"):
        score_task("asr", ["a"], [])
    with pytest.raises(ValueError, match="labels"):
        score_task("kws", ["yes"], ["yes"], label_scores=[[1.0]])


def test_score_predictions_groups_rows_by_task() -> None:
    rows = [
        {"task": "ic", "prediction": "a", "target": "a"},
        {"task": "asr", "prediction": "x y", "target": "x z"},
        {"task": "ic", "prediction": "b", "target": "a"},
    ]
    scores = score_predictions(rows)
    assert list(scores) == ["asr", "ic"]
    assert scores["ic"]["n"] == 2
    assert scores["ic"]["accuracy"] == pytest.approx(50.0)
    assert scores["asr"]["wer"] == pytest.approx(50.0)


@pytest.mark.parametrize(
    ("prediction", "expected"),
    [
        ("ASR: set an alarm | ic: alarm_set", ("set an alarm", "alarm_set")),
        ("ASR:  wake me at 5 |sf: time=five: am ", ("wake me at 5", "time=five: am")),
        ("ASR: hi | kwe: a, b | c", ("hi", "a, b | c")),
        ("alarm_set", ("", "alarm_set")),
    ],
)
def test_parse_joint(prediction: str, expected: tuple[str, str]) -> None:
    assert parse_joint(prediction) == expected
