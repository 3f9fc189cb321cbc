"""Build the open-vocabulary check set: ASR on speech the synthetic benchmark cannot contain.

    python recipes/synthetic_real/open_vocab.py --out data/open_vocab

writes ``open_vocab.jsonl`` and ``wavs/openvocab-<nn>.flac`` (16 kHz mono FLAC, rendered by
the benchmark's own :func:`speechllm.synth.render.write_item`, so sample rate, level
and format match). The set is outside the benchmark (:mod:`speechllm.synth`) on three
axes at once:

1. Sentences. The 60 lines of ``open_vocab_sentences.txt`` were written by hand, not drawn
   from the grammar: plain everyday English of 6-11 words on news, cooking, travel,
   science, sport, feelings and home life, numbers spelt out. The target is the line in
   lower case without punctuation, as the benchmark's ``asr`` targets are; a trailing ``?``
   marks a question (spoken with eSpeak's rising intonation, dropped from the target).
   Measured against the ``asr`` transcripts of ``data/synthetic_small/train.jsonl``, 78% of
   the 483 words (92% of the 389 distinct words) are out of vocabulary; against every word
   literal in the grammar's source (:func:`grammar_vocabulary`, a superset of anything it
   can say, German and Spanish included), 78% and 91%. The shared words are mostly
   function words (``the``, ``and``, ``of``...).
2. Voices. Every variant the benchmark speaks with is in ``voices.FEMALE``, ``voices.MALE``
   or ``voices.KLATT`` (train or test, depending on the seed's hold-out), so a variant
   outside those three is heard in no split. :data:`VARIANTS` are eight such eSpeak NG
   variants, picked among the unused ones for being plain voices: not whispering
   (``whisper``), robotic (``robosoft*``, ``UniRobot``), echoing (``announcer``,
   ``RicishayMax*``) or one that clips (``Marco``, ``antonio``, ``Jacky``); ``klatt5`` keeps
   one voice of the Klatt family, as each benchmark split has some. The accent is one of the
   benchmark's seven (``voices.ACCENTS``), and the prosody is drawn as the benchmark draws
   it (a ``voices.STYLES`` preset, ``voices.jitter``), so what is new about each voice is its
   variant and nothing else: the set shifts speaker, not accent or speaking style.
3. Instructions. :data:`INSTRUCTIONS` are six ASR prompts worded unlike the fifteen seen
   and held-out templates of ``speechllm/data/instructions/asr.yaml``; each line carries
   one in its ``instruction`` field, which replaces the task's templates.

Sentence ``i`` gets variant ``VARIANTS[i % 8]`` and instruction ``INSTRUCTIONS[i % 6]``;
accent and style are drawn from ``random.Random(seed)``, so a seed gives identical bytes.

This set is for evaluation only: it is used for no training, no checkpoint selection and no
hyperparameter or prompt choice. A score on it is a report, never a target.
"""

from __future__ import annotations

import argparse
import ast
import random
import re
from collections.abc import Iterable
from pathlib import Path

from speechllm.data.manifest import write_manifest
from speechllm.synth import grammar, lexicon, opinions
from speechllm.synth.grammar import Sentence
from speechllm.synth.plan import Item, Turn
from speechllm.synth.render import write_item
from speechllm.synth.voices import ACCENTS, STYLES, Voice, jitter

HERE = Path(__file__).resolve().parent
SENTENCES = HERE / "open_vocab_sentences.txt"
MANIFEST = "open_vocab.jsonl"

VARIANTS = ("Alex", "Gene", "Michael", "max", "quincy", "shelby", "grandpa", "klatt5")
"""eSpeak NG variants (``espeak-ng-data/voices/!v``) the benchmark never uses."""

INSTRUCTIONS = (
    "Jot down each word this voice utters, in the order it comes.",
    "What did that person just say? Reply with only their words.",
    "Pretend you are taking minutes and note precisely what was uttered.",
    "Help someone who is hard of hearing: tell them exactly what was said here.",
    "Imagine you are subtitling a film; give the subtitle for this line.",
    "Repeat back whatever this voice is saying, and add nothing of your own.",
)
"""ASR prompts unlike any of the templates in ``asr.yaml``."""

_WORD = re.compile(r"[a-z]+")


def load_sentences(path: Path = SENTENCES) -> list[tuple[str, bool]]:
    """The hand-written sentences as ``(target, is_question)``, in file order."""
    sentences = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            text = line.strip()
            sentences.append((text.rstrip("?"), text.endswith("?")))
    return sentences


def grammar_vocabulary() -> frozenset[str]:
    """Every word in a string literal of the benchmark's grammar, lexicon and opinions, plus
    the spelt ordinals (``twentieth`` is built from ``twenty``, so no literal holds it).

    Docstrings are skipped; template syntax, slot names and the German and Spanish
    translations are kept, so this is a superset of the words the grammar can produce and
    an out-of-vocabulary share measured against it is a lower bound.
    """
    words = {word for n in range(1, 32) for word in lexicon.ordinal_words(n).split()}
    for module in (grammar, lexicon, opinions):
        tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
        docstrings = {
            node.value for node in ast.walk(tree) if isinstance(node, ast.Expr)
        }  # docstrings, and any other bare string statement
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node not in docstrings
            ):
                words.update(_WORD.findall(node.value.lower()))
    return frozenset(words)


def oov_share(texts: Iterable[str], vocabulary: Iterable[str]) -> tuple[float, float]:
    """Shares of ``texts``' word tokens and distinct words that are not in ``vocabulary``."""
    vocab = set(vocabulary)
    tokens = [word for text in texts for word in text.split()]
    types = set(tokens)
    return (
        sum(word not in vocab for word in tokens) / len(tokens),
        len(types - vocab) / len(types),
    )


def build(out: Path, seed: int = 0) -> Path:
    """Render the check set into ``out`` (about a second); finished audio files are reused.

    Args:
        out: Output folder; gets ``open_vocab.jsonl`` and ``wavs/``.
        seed: Draws each sentence's accent and speaking style.

    Returns:
        The manifest's path.
    """
    rng = random.Random(seed)
    records = []
    for i, (text, question) in enumerate(load_sentences()):
        voice = Voice(rng.choice(sorted(ACCENTS)), VARIANTS[i % len(VARIANTS)])
        style = rng.choice(sorted(STYLES))
        sentence = Sentence(text, "question" if question else "statement")
        item = Item(f"openvocab-{i:02d}", (Turn(sentence, voice, style, jitter(style, rng)),), ())
        duration, _ = write_item(item, str(out), seed)
        records.append(
            {
                "id": item.id,
                "audio": item.audio,
                "duration": round(duration, 3),
                "task": "asr",
                "target": text,
                "instruction": INSTRUCTIONS[i % len(INSTRUCTIONS)],
                "lang": "en",
                "meta": {"voice": voice.name, "style": style, "set": "open_vocab"},
            }
        )
    path = Path(out) / MANIFEST
    write_manifest(records, path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/open_vocab"), help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="draws accents and styles")
    args = parser.parse_args()
    path = build(args.out, args.seed)
    texts = [text for text, _ in load_sentences()]
    tokens, types = oov_share(texts, grammar_vocabulary())
    print(
        f"wrote {path}: {len(texts)} lines; OOV vs the grammar {tokens:.0%} of words, "
        f"{types:.0%} of distinct words"
    )


if __name__ == "__main__":
    main()
