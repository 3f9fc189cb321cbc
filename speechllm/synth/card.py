"""The dataset card (``README.md`` beside the manifests): how the data was made and what is
in each split, so a score on it can be read without this code at hand."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from speechllm.synth.voices import ACCENTS, STYLES, VARIANT_GROUPS
from speechllm.tasks import get_task

_TARGETS = {
    "asr": "transcript: lower case, numbers as words, no punctuation",
    "st": "Spanish (`tgt_lang: es`) or German (`de`) translation of a templated statement",
    "ic": "intent label (`labels` lists all)",
    "sf": "`slot=value; slot=value` in order of appearance, `none` without slots",
    "kws": "`yes`/`no`: is `meta.keyword` said (balanced)",
    "kwe": "content words in order of appearance, `kw1, kw2`",
    "er": "speaking style (prosody proxy for emotion)",
    "asc": "`positive`/`negative`/`neutral`: an opinion's words, in a matching style half the time",
    "sc": "`one`/`two` speakers in a two-turn clip",
    "ac": "English accent",
    "sns": "`speech`/`non-speech`",
    "gr": "`female`/`male` voice variant",
}


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _split_section(name: str, lines: list[dict[str, Any]]) -> str:
    tasks = sorted({line["task"] for line in lines})
    audio = {line["audio"]: line["duration"] for line in lines}
    rows = [
        [
            task,
            sum(line["task"] == task for line in lines),
            f"{sum(line['duration'] for line in lines if line['task'] == task) / 3600:.3f}",
        ]
        for task in tasks
    ]
    parts = [
        f"### {name}",
        "",
        f"{len(audio)} audio files, {sum(audio.values()) / 3600:.3f} h of audio, "
        f"{len(lines)} lines.",
        "",
        _table(["task", "lines", "hours"], rows),
        "",
    ]
    for task in (t for t in tasks if get_task(t).classifies):
        counts = Counter(line["target"] for line in lines if line["task"] == task)
        labels = ", ".join(f"{label} {n}" for label, n in sorted(counts.items()))
        parts.append(f"- `{task}`: {labels}")
    return "\n".join(parts) + "\n"


def write_card(
    path: Path,
    config: dict[str, Any],
    manifests: dict[str, list[dict[str, Any]]],
    variants: dict[str, dict[str, tuple[str, ...]]],
) -> None:
    """Write the card from the config, the manifests' lines and the variant split."""
    sizes = " ".join(f"{key}={config[key]}" for key in ("n_train", "n_dev", "n_test"))
    voice_rows = [
        [group, ", ".join(variants["train"][group]), ", ".join(variants["test"][group])]
        for group in VARIANT_GROUPS
    ]
    style_rows = [[style, p.rate, p.pitch, p.range, p.volume] for style, p in STYLES.items()]
    text = f"""# Synthetic multitask speech benchmark

Spoken-language tasks synthesised offline with eSpeak NG by `speechllm-synth`, to try a speech
LLM end to end before fetching real corpora. The speech is robotic and the vocabulary closed:
scores here measure the pipeline, not real-world accuracy.

## Generation

- seed `{config["seed"]}`, preset `{config["preset"]}`, {sizes}
- reproduce: `speechllm-synth out=DIR preset={config["preset"]} seed={config["seed"]}
  n_train={config["n_train"]}` (same seed and sizes give byte-identical audio)
- audio: 16 kHz mono FLAC; eSpeak output (22.05 kHz) resampled; peak at most 0.95
- noise: with probability {config["noise_prob"]}, white, pink or brown noise at an SNR drawn
  from {list(config["snr_db"])} dB (`meta.snr_db`)
- sentence kinds (single-speaker share): {config["sentence_mix"]}; two-turn clips
  {config["two_turn_frac"]}, non-speech clips {config["nonspeech_frac"]}
- config: `{config}`

## Held-out conditions

- **Sentences**: a seeded hash of each sentence's text puts it in exactly one of train
  ({1 - config["dev_sentences"] - config["test_sentences"]:.0%} of the sentence space), dev
  ({config["dev_sentences"]:.0%}) or test ({config["test_sentences"]:.0%}); no sentence is
  shared between splits.
- **Voices**: a voice is an accent plus a voice variant. Test uses only the variants below
  that no train or dev utterance uses (under any accent); dev shares train's variants.
  Every accent and both genders occur in every split.
- **Instructions**: `test_heldout_instructions.jsonl` repeats `test.jsonl` line for line
  (ids suffixed `-heldout`, `meta.instruction_split: heldout`), so that the data module
  prompts it with instruction templates never used in training and the difference in score
  is due to the instructions alone.

## Voices

Accents (`ac` label: eSpeak language): {", ".join(f"{k} `{v}`" for k, v in ACCENTS.items())}.

Genders (`gr`) come from the variant files in `espeak-ng-data/voices/!v`: the `female` group
is labelled female, the `male` and `klatt` groups male (the klatt variants use eSpeak's Klatt
synthesiser with its default male pitch; there is no female Klatt variant).

{_table(["group", "train and dev variants", "test-only variants"], voice_rows)}

## Speaking styles (`er`)

`er` labels are speaking styles made from eSpeak's prosody settings, a **proxy for emotion**,
not acted or perceived emotion; each utterance jitters its preset (rate and volume by up to
8%, pitch and range by up to 5 points).

{_table(["style", "rate (wpm)", "pitch", "range", "volume"], style_rows)}

## Tasks

{_table(["task", "target"], [[task, fmt] for task, fmt in _TARGETS.items()])}

Classification lines carry their label set in `labels`; `kws` lines carry the queried word in
`meta.keyword`. One audio file yields several lines (asr, ac, gr, er, kws, kwe, plus ic and sf
for commands, st for statements, asc for opinions); two-turn clips yield `sc`, non-speech clips
`sns` (matched by as many `sns: speech` lines).

## Splits

{"".join(_split_section(name, lines) + chr(10) for name, lines in manifests.items())}"""
    path.write_text(text.rstrip() + "\n", encoding="utf-8")
