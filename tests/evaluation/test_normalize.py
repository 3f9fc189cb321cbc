import pytest

from speechllm.evaluation.normalize import normalize_label, normalize_text


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("Hello,   World!", "hello world"),
        ("I have 21 cats and 1,000 dogs.", "i have twenty one cats and one thousand dogs"),
        ("It is 3.5 km", "it is three point five km"),
        ("the 21st century", "the twenty first century"),
        ("Don't 'quote' me", "don't quote me"),
        ("It\u2019s well-known: 50%", "it's well known fifty"),
        ("", ""),
    ],
)
def test_normalize_text(raw: str, normalised: str) -> None:
    assert normalize_text(raw) == normalised


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [(" Happy. ", "happy"), ("Alarm_Set", "alarm_set"), ('"Yes"', "yes"), ("NO  way", "no way")],
)
def test_normalize_label(raw: str, normalised: str) -> None:
    assert normalize_label(raw) == normalised
