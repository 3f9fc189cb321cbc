import math

import pytest

from speechllm.data.joint import parse_joint
from speechllm.evaluation.metrics import (
    OTHER_LABEL,
    auroc,
    bleu,
    bleu_tokenizer,
    cer,
    choose_threshold,
    confusion_matrix,
    keyword_f1,
    parse_slots,
    slu_f1,
    uar,
    wer,
)
from speechllm.evaluation.scoring import score_records, score_task
from speechllm.tasks import SCORING, TASKS


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


def test_parse_slots_prepares_gold_and_predictions_as_slurp_does() -> None:
    text = "Time = 5 PM; garbage; date=; place_name=London"
    # a prediction keeps its case and its empty filler (scored as the largest distance)
    assert parse_slots(text) == [("Time", "5 PM"), ("date", ""), ("place_name", "London")]
    # a reference filler is lower-cased; a reference slot without a filler is no slot
    assert parse_slots(text, reference=True) == [("Time", "5 pm"), ("place_name", "london")]


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


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_reports_its_metric(task: str) -> None:
    """What the registry promises is what scoring computes (one source: the task)."""
    spec = TASKS[task]
    labels = ["a", "b"] if spec.classifies else None
    scores = score_task(
        task, ["a", "b"], ["a", "b"], labels, [[0.9, 0.1], [0.2, 0.8]] if labels else None
    )
    reported = set(scores) - {"n"}
    assert reported <= set(SCORING[spec.scoring])
    assert spec.metric is None or spec.metric in reported


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
    with pytest.raises(ValueError, match="unknown task 'nope'; known tasks"):
        score_task("nope", ["a"], ["a"])
    with pytest.raises(ValueError, match="targets"):
        score_task("asr", ["a"], [])
    with pytest.raises(ValueError, match="labels"):
        score_task("kws", ["yes"], ["yes"], label_scores=[[1.0]])


def test_score_records_groups_rows_by_task() -> None:
    rows = [
        {"task": "ic", "prediction": "a", "target": "a"},
        {"task": "asr", "prediction": "x y", "target": "x z"},
        {"task": "ic", "prediction": "b", "target": "a"},
    ]
    scores = score_records(rows)
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


def test_bleu_is_tokenised_for_the_target_language() -> None:
    # Chinese has no spaces: under 13a the whole sentence is one token, so one wrong character
    # zeroes BLEU; the zh tokeniser splits characters and gives credit for the rest.
    hyp, ref = ["我喜欢吃苹果和香蕉"], ["我喜欢吃苹果和橘子"]
    assert bleu(hyp, ref) == 0.0
    assert bleu(hyp, ref, "zh") > 40
    assert bleu(["今日は良い天気です"], ["今日は良い天気です"], "ja") == pytest.approx(100.0)
    assert (bleu_tokenizer("ja-JP"), bleu_tokenizer("de"), bleu_tokenizer(None)) == (
        "ja-mecab",
        "13a",
        "13a",
    )


def test_translation_scores_each_language_and_their_mean() -> None:
    scores = score_task(
        "st",
        ["the cat sat", "我喜欢吃苹果和香蕉"],
        ["the cat sat", "我喜欢吃苹果和橘子"],
        langs=["en", "zh"],
    )
    assert scores["bleu_en"] == pytest.approx(0.0)  # 3 words: no 4-gram, 13a BLEU is 0
    assert scores["bleu_zh"] == pytest.approx(
        bleu(["我喜欢吃苹果和香蕉"], ["我喜欢吃苹果和橘子"], "zh")
    )
    assert scores["bleu"] == pytest.approx((scores["bleu_en"] + scores["bleu_zh"]) / 2)
    assert scores["chrf_en"] == pytest.approx(100.0) and 0 < scores["chrf"] < 100
    one = score_task("st", ["the cat sat on the mat"], ["the cat sat on the mat"], langs=["de"])
    assert set(one) == {"n", "bleu", "chrf"} and one["bleu"] == pytest.approx(100.0)


def test_transcripts_use_the_leaderboard_normaliser_and_drop_empty_references() -> None:
    scores = score_task("asr", ["it is 21 colour", "hm"], ["It is twenty one color.", "uh"])
    assert scores["wer"] == 0.0  # "uh" normalises to nothing and leaves the normalised scores
    assert scores["wer_raw"] > 0
    assert (
        score_task("asr", ["it is 21"], ["it is twenty one"], normalizer="speechllm")["wer"] == 0.0
    )
    assert score_task("asr", ["it is 21"], ["it is twenty one"], normalizer="none")["wer"] > 0


def test_multi_label_scoring_from_label_lists_and_scores() -> None:
    labels = ["cardiac", "respiratory", "renal"]
    targets = ["cardiac, respiratory", "none", "renal"]
    predictions = ["Cardiac", "none", "renal, cardiac"]
    scores = score_task("symptoms", predictions, targets, labels)
    # tp: cardiac, renal; fp: cardiac (item 3); fn: respiratory -> micro 2*2/(4+1+1)
    assert scores["micro_f1"] == pytest.approx(100 * 4 / 6)
    # per label F1: cardiac 2/3, respiratory 0, renal 1
    assert scores["macro_f1"] == pytest.approx(100 * (2 / 3 + 0 + 1) / 3)
    assert "auroc" not in scores
    probs = [[0.9, 0.8, 0.1], [0.2, 0.3, 0.1], [0.4, 0.1, 0.7]]
    with_scores = score_task("symptoms", predictions, targets, labels, probs)
    assert with_scores["auroc"] == pytest.approx(100.0)


def test_choose_threshold_maximises_micro_f1() -> None:
    y_true = [[1, 0], [1, 1], [0, 0]]
    y_score = [[0.6, 0.2], [0.7, 0.4], [0.5, 0.1]]
    # >= 0.4 catches all 3 positives with no false positive
    assert choose_threshold(y_true, y_score) == pytest.approx(0.4)


def test_single_label_scores_include_macro_f1() -> None:
    scores = score_task("er", ["a", "a", "b"], ["a", "b", "b"])
    assert scores["macro_f1"] == pytest.approx(100 * (2 / 3 + 2 / 3) / 2)
