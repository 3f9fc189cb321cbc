import pytest

from speechllm.evaluation.normalize import (
    normalize_label,
    normalize_text,
    resolve_normalizer,
    transcript_normalizer,
)


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


# Whisper's own normaliser tests (openai/whisper @ c0d2f62, tests/test_normalizer.py), which the
# Open ASR Leaderboard's copy (huggingface/open_asr_leaderboard normalizer/) passes unchanged.
WHISPER_CASES = [
    ("two", "2"),
    ("thirty one", "31"),
    ("five twenty four", "524"),
    ("nineteen ninety nine", "1999"),
    ("twenty nineteen", "2019"),
    ("two point five million", "2500000"),
    ("four point two billions", "4200000000s"),
    ("200 thousand", "200000"),
    ("200 thousand dollars", "$200000"),
    ("$20 million", "$20000000"),
    ("€52.4 million", "€52400000"),
    ("£77 thousands", "£77000s"),
    ("two double o eight", "2008"),
    ("three thousand twenty nine", "3029"),
    ("forty three thousand two hundred sixty", "43260"),
    ("forty three thousand two hundred and sixty", "43260"),
    ("nineteen fifties", "1950s"),
    ("thirty first", "31st"),
    ("thirty three thousand and three hundred and thirty third", "33333rd"),
    ("three billion", "3000000000"),
    ("millions", "1000000s"),
    ("july third twenty twenty", "july 3rd 2020"),
    ("august twenty sixth twenty twenty one", "august 26th 2021"),
    ("3 14", "3 14"),
    ("3.14", "3.14"),
    ("3 point 2", "3.2"),
    ("3 point 14", "3.14"),
    ("fourteen point 4", "14.4"),
    ("two point two five dollars", "$2.25"),
    ("two hundred million dollars", "$200000000"),
    ("$20.1 million", "$20100000"),
    ("ninety percent", "90%"),
    ("seventy six per cent", "76%"),
    ("double oh seven", "007"),
    ("double zero seven", "007"),
    ("nine one one", "911"),
    ("nine double one", "911"),
    ("one triple oh one", "10001"),
    ("two thousandth", "2000th"),
    ("thirty two thousandth", "32000th"),
    ("minus 500", "-500"),
    ("positive twenty thousand", "+20000"),
    ("two dollars and seventy cents", "$2.70"),
    ("3 cents", "¢3"),
    ("$0.36", "¢36"),
    ("three euros and sixty five cents", "€3.65"),
    ("three and a half million", "3500000"),
    ("forty eight and a half dollars", "$48.5"),
    ("b747", "b 747"),
    ("10 th", "10th"),
    ("10th", "10th"),
    ("mobilisation", "mobilization"),
    ("Let's", "let us"),
    ("he's like", "he is like"),
    ("she's been like", "she has been like"),
    ("10km", "10 km"),
    ("RC232", "rc 232"),
    ("Mr. Park visited Assoc. Prof. Kim Jr.", "mister park visited associate professor kim junior"),
    ("Um, I think it's colour.", "i think it is color"),
    ("It's 1,000,000 dollars.", "it is $1000000"),
]


@pytest.mark.parametrize(("raw", "normalised"), WHISPER_CASES)
def test_whisper_normalizer_matches_whisper_and_the_leaderboard(raw: str, normalised: str) -> None:
    assert transcript_normalizer("whisper")(raw) == normalised
    assert transcript_normalizer("auto", "en-US")(raw) == normalised


def test_normalizer_choice() -> None:
    assert resolve_normalizer("auto", None) == "whisper"
    assert resolve_normalizer("auto", "de") == "whisper_basic"
    basic = transcript_normalizer("auto", "de")
    assert basic("Grüße, Welt! (laughs) 21") == "grüße welt 21"  # symbols and brackets gone
    assert transcript_normalizer("speechllm")("It is 21") == "it is twenty one"
    assert transcript_normalizer("none")("It is 21.") == "It is 21."
    with pytest.raises(ValueError, match="unknown normalizer 'kaldi'"):
        transcript_normalizer("kaldi")
