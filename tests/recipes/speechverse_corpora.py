"""A tiny stand-in for the public SpeechVerse recipe's eight corpora, laid out as each release is
(recipes/speechverse_public/README.md, Build): the same folders, file names, columns and label
names as tests/data/test_public_importers.py uses for each importer, every split present, and the
official partitions speaker-disjoint as the real ones are. Audio is a fraction of a second of
seeded noise per file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
from datasets import Audio, ClassLabel, Features, Value

from tests.importers.test_public_importers import COMMAND_NAMES, saved

SECONDS = 0.5
WORDS = ("lantern", "staircase", "captive", "harbour", "meadow", "violin", "thunder", "orchard")


def wav(path: Path, seconds: float = SECONDS, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(seed).normal(0, 0.1, int(16000 * seconds)).astype(np.float32)
    sf.write(path, noise, 16000)
    return path


def _sentence(seed: int) -> str:
    rng = np.random.default_rng(seed)
    return "the " + " ".join(rng.choice(WORDS, 3, replace=False)) + " again"


def librispeech(root: Path) -> None:
    """Three speakers per subset, none shared (as in the release), two utterances each."""
    subsets = ("train-clean-100", "dev-clean", "test-clean", "test-other")
    for k, subset in enumerate(subsets):
        for speaker in (100 * (k + 1) + s for s in range(3)):
            chapter = root / "LibriSpeech" / subset / str(speaker) / "198"
            utts = [f"{speaker}-198-{i:04d}" for i in range(2)]
            for i, utt in enumerate(utts):
                wav(chapter / f"{utt}.flac", seed=speaker + i)
            text = "".join(f"{u} {_sentence(speaker + i).upper()}\n" for i, u in enumerate(utts))
            (chapter / f"{speaker}-198.trans.txt").write_text(text)


def covost2(root: Path) -> None:
    """CoVoST 2's TSVs over Common Voice mp3 clips, one client per split."""
    for k, split in enumerate(("train", "dev", "test")):
        rows = ["path\tsentence\ttranslation\tclient_id"]
        for i in range(2):
            clip = f"common_voice_en_{10 * k + i}.mp3"
            wav(root / "covost2/clips" / clip, seed=300 + 10 * k + i)
            rows.append(f"{clip}\tThe harbour is open.\tDer Hafen ist offen.\tclient{k}")
        (root / f"covost2/covost_v2.en_de.{split}.tsv").write_text("\n".join(rows) + "\n")


def slurp(root: Path) -> None:
    """SLURP's annotation files (train, devel, test) and their flac recordings."""
    for k, split in enumerate(("train", "devel", "test")):
        lines = []
        for i, (intent, annotation) in enumerate(
            [("alarm_set", "wake me up at [time : eight am]"), ("iot_hue_lightoff", "lights off")]
        ):
            file = f"audio-{1490200000 + 10 * k + i}.flac"
            wav(root / "slurp/slurp_real" / file, seed=400 + 10 * k + i)
            sentence = annotation.replace("[time : ", "").replace("]", "")
            row = {"slurp_id": 10 * k + i, "sentence": sentence, "intent": intent,
                   "sentence_annotation": annotation, "recordings": [{"file": file}]}  # fmt: skip
            lines.append(row)
        path = root / f"slurp/dataset/slurp/{split}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def speech_commands(root: Path, scratch: Path) -> None:
    """google/speech_commands v0.02 saved per split; the test split is the release's test-set
    archive, other words under ``_unknown_/<word>_<speaker>_nohash_<n>.wav``, and silence."""
    features = Features(file=Value("string"), audio=Audio(sampling_rate=16000),
                        label=ClassLabel(names=COMMAND_NAMES), is_unknown=Value("bool"),
                        speaker_id=Value("string"), utterance_id=Value("int8"))  # fmt: skip
    for k, split in enumerate(("train", "validation", "test")):
        speaker = f"0a7c2a8{k}"
        files = [f"yes/{speaker}_nohash_0.wav", f"go/{speaker}_nohash_0.wav"]
        files.append(
            f"_unknown_/marvin_{speaker}_nohash_0.wav" if split == "test"
            else f"marvin/{speaker}_nohash_0.wav"
        )  # fmt: skip
        words = ["yes", "go", "marvin", "_silence_"]
        files.append("_silence_/running_tap.wav")
        columns = {
            "file": files,
            "audio": [
                str(wav(scratch / split / f, seconds=1.0, seed=500 + 10 * k + i))
                for i, f in enumerate(files)
            ],  # fmt: skip
            "label": [COMMAND_NAMES.index(w) for w in words],
            "is_unknown": [w == "marvin" for w in words],
            "speaker_id": [speaker, speaker, speaker, None],
            "utterance_id": [0, 0, 0, 0],
        }
        saved(scratch / split, columns, features).save_to_disk(root / "speech_commands" / split)


def slue_voxceleb(root: Path, scratch: Path) -> None:
    """asapp/slue voxceleb saved per split (test labels as released on 2024-01-08)."""
    features = Features(index=Value("int32"), id=Value("string"), audio=Audio(sampling_rate=16000),
                        speaker_id=Value("string"), normalized_text=Value("string"),
                        sentiment=Value("string"), start_second=Value("float64"),
                        end_second=Value("float64"))  # fmt: skip
    for k, split in enumerate(("train", "validation", "test")):
        ids = [f"id1005{k}_229vKIGbxrI_0000{i}" for i in range(3)]
        columns = {
            "index": [0, 1, 2],
            "id": ids,
            "audio": [
                str(wav(scratch / split / f"{i}.flac", seed=600 + 10 * k + n))
                for n, i in enumerate(ids)
            ],  # fmt: skip
            "speaker_id": [f"id1005{k}"] * 3,
            "normalized_text": ["i loved working with him", "it was fine", "well i do not know"],
            "sentiment": ["Positive", "Neutral", "Negative"],
            "start_second": [0.0, 3.0, 6.0],
            "end_second": [0.5, 3.5, 6.5],
        }
        saved(scratch / split, columns, features).save_to_disk(root / "slue_voxceleb" / split)


def ravdess(root: Path) -> None:
    """All 24 actors, two speech clips each (neutral and angry), and one song clip."""
    for actor in range(1, 25):
        for emotion in ("01", "05"):
            name = f"03-01-{emotion}-01-01-01-{actor:02d}.wav"
            wav(root / "ravdess" / f"Actor_{actor:02d}" / name, seed=700 + actor)
    wav(root / "ravdess/Actor_01/03-02-03-01-01-01-01.wav")  # song: left out


def l2arctic(root: Path) -> None:
    """All 24 speakers, one prompt each (wav, transcript, TextGrid), and the suitcase corpus."""
    from speechllm.importers.l2arctic import SPEAKERS

    for n, speaker in enumerate(SPEAKERS):
        wav(root / "l2arctic" / speaker / "wav/arctic_a0001.wav", seed=800 + n)
        for folder, text in (("transcript", "Author of the danger trail, Philip Steels,"),
                             ("textgrid", 'File type = "ooTextFile"')):  # fmt: skip
            suffix = "txt" if folder == "transcript" else "TextGrid"
            path = root / "l2arctic" / speaker / folder / f"arctic_a0001.{suffix}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    wav(root / "l2arctic/suitcase_corpus/wav/aba.wav")


def musan(root: Path, per_kind: int = 12) -> None:
    """Speech, music (with its ANNOTATIONS) and noise, ``per_kind`` one-second files each."""
    for kind, source in (("speech", "librivox"), ("music", "fma"), ("noise", "free-sound")):
        for i in range(per_kind):
            wav(root / "musan" / kind / source / f"{kind}-{source}-{i:04d}.wav", 1.0, 900 + i)
    annotations = "".join(
        f"music-fma-{i:04d} Classical N Chris_Zabriskie\n" for i in range(per_kind)
    )
    (root / "musan/music/fma/ANNOTATIONS").write_text(annotations)


def write_corpora(root: Path, scratch: Path) -> Path:
    """Every corpus under ``root`` (``--corpora`` of build.py); ``scratch`` for the HF copies."""
    librispeech(root)
    covost2(root)
    slurp(root)
    speech_commands(root, scratch / "speech_commands")
    slue_voxceleb(root, scratch / "slue_voxceleb")
    ravdess(root)
    l2arctic(root)
    musan(root)
    return root
