"""The public SpeechVerse recipe's importers, each on a tiny corpus laid out (or saved with
``datasets``) as the real one: its columns, label names and file names."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import soundfile as sf
from datasets import Audio, ClassLabel, Dataset, Features, Value, load_from_disk

from speechllm.data.joint import transcripts
from speechllm.data.manifest import read_manifest
from speechllm.importers import derived, hf_labels, l2arctic, musan, ravdess

# google/speech_commands v0.02, in its ClassLabel order
COMMAND_NAMES = [
    *("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"),
    *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    *("bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow"),
    *("backward", "forward", "follow", "learn", "visual", "_silence_"),
]


def saved(tmp_path: Path, columns: dict, features: Features) -> Dataset:
    """``columns`` as a ``datasets`` split saved to disk (audio embedded) and loaded back, as a
    user would; the audio column is cast from file paths, since encoding needs torchcodec."""
    audio = [{"bytes": None, "path": path} for path in columns["audio"]]
    rows = {name: audio if name == "audio" else columns[name] for name in features}
    Dataset.from_dict(rows).cast(features).save_to_disk(tmp_path / "hf")
    return load_from_disk(str(tmp_path / "hf"))


def test_speech_commands_asks_balanced_keyword_questions(tmp_path: Path, write_audio) -> None:
    words = ["yes", "marvin", "_silence_", "go", "up"]
    files = [f"{w}/0a7c2a8d_nohash_{i}.wav" for i, w in enumerate(words)]
    columns = {
        "file": files,
        "audio": [str(write_audio(tmp_path / "sc" / f, seconds=1.0)) for f in files],
        "label": [COMMAND_NAMES.index(w) for w in words],
        "is_unknown": [w == "marvin" for w in words],
        "speaker_id": ["0a7c2a8d"] * 5,
        "utterance_id": list(range(5)),
    }
    features = Features(
        file=Value("string"),
        audio=Audio(sampling_rate=16000),
        label=ClassLabel(names=COMMAND_NAMES),
        is_unknown=Value("bool"),
        speaker_id=Value("string"),
        utterance_id=Value("int8"),
    )
    out = tmp_path / "kws.jsonl"
    assert hf_labels.speech_commands(saved(tmp_path, columns, features), out, tmp_path / "a") == 4
    entries = read_manifest(out)
    assert [e.target for e in entries] == ["yes", "no", "yes", "no"]  # silence left out
    assert [e.meta["transcript"] for e in entries] == ["yes", "marvin", "go", "up"]
    assert entries[0].meta["keyword"] == "yes" and entries[2].meta["keyword"] == "go"
    assert entries[1].meta["keyword"] not in ("marvin", "_silence_")
    assert entries[0].id == "speech_commands-yes-0a7c2a8d_nohash_0"
    assert entries[0].duration == 1.0 and Path(entries[0].audio).exists()


def test_slue_voxceleb_sentiment_and_transcripts(tmp_path: Path, write_audio) -> None:
    ids = ["id10059_229vKIGbxrI_00001", "id10059_229vKIGbxrI_00002", "id10060_xyz_00003"]
    columns = {
        "index": [0, 1, 2],
        "id": ids,
        "audio": [str(write_audio(tmp_path / f"{i}.flac", seconds=0.5)) for i in ids],
        "speaker_id": ["id10059", "id10059", "id10060"],
        "normalized_text": ["i loved working with him", "it was fine", "well i do not know"],
        "sentiment": ["Positive", "<mixed>", "Negative"],
        "start_second": [0.0, 3.0, 1.0],
        "end_second": [0.5, 3.5, 1.5],
    }
    features = Features(
        index=Value("int32"),
        id=Value("string"),
        audio=Audio(sampling_rate=16000),
        speaker_id=Value("string"),
        normalized_text=Value("string"),
        sentiment=Value("string"),
        start_second=Value("float64"),
        end_second=Value("float64"),
    )
    out = tmp_path / "asc.jsonl"
    assert hf_labels.slue_voxceleb(saved(tmp_path, columns, features), out, tmp_path / "a") == 4
    by_id = {e.id: e for e in read_manifest(out)}
    first = f"slue_voxceleb-{ids[0]}"
    assert by_id[f"{first}-asc"].target == "positive"
    assert by_id[f"{first}-asr"].target == "i loved working with him"
    assert by_id[f"slue_voxceleb-{ids[2]}-asc"].labels == ("negative", "neutral", "positive")
    assert not any(ids[1] in key for key in by_id)  # <mixed> is not scored by SLUE
    with pytest.raises(ValueError, match="asc and asr"):
        hf_labels.slue_voxceleb(Dataset.from_dict({}), out, tmp_path, tasks=("er",))


def test_ravdess_reads_labels_from_file_names(tmp_path: Path, write_audio) -> None:
    for name in ("03-01-06-01-02-01-12", "03-01-01-01-01-02-12", "03-02-03-01-01-01-12"):
        write_audio(tmp_path / "Actor_12" / f"{name}.wav")
    write_audio(tmp_path / "Actor_07" / "03-01-05-02-01-01-07.wav")
    out = tmp_path / "er.jsonl"
    assert ravdess.to_manifest(tmp_path, out, tasks=("er", "gr")) == 3 * 2  # song left out
    by_id = {e.id: e for e in read_manifest(out)}
    assert by_id["ravdess-03-01-06-01-02-01-12-er"].target == "fearful"
    assert by_id["ravdess-03-01-06-01-02-01-12-gr"].target == "female"
    assert by_id["ravdess-03-01-05-02-01-01-07-er"].target == "angry"
    assert by_id["ravdess-03-01-05-02-01-01-07-gr"].target == "male"
    assert by_id["ravdess-03-01-06-01-02-01-12-er"].meta["transcript"] == (
        "dogs are sitting by the door"
    )
    assert len(by_id["ravdess-03-01-01-01-01-02-12-er"].labels) == 8
    assert ravdess.to_manifest(tmp_path, out, actors=[7]) == 1
    with pytest.raises(FileNotFoundError, match="Actor_"):
        ravdess.to_manifest(tmp_path / "empty", out)


def test_l2arctic_accent_is_the_first_language(tmp_path: Path, write_audio) -> None:
    root = tmp_path / "l2arctic"  # the release's layout, as lhotse's prepare_l2_arctic reads it
    corpus = [
        ("ABA", "arctic_a0001", "Author of the danger trail, Philip Steels,"),
        ("HKK", "arctic_b0002", "He turned  sharply."),
        ("HKK", "arctic_b0003", None),  # no transcript: left out
    ]
    for speaker, utt, text in corpus:
        write_audio(root / speaker / "wav" / f"{utt}.wav")
        (root / speaker / "textgrid").mkdir(parents=True, exist_ok=True)
        (root / speaker / "textgrid" / f"{utt}.TextGrid").write_text('File type = "ooTextFile"')
        if text:
            (root / speaker / "transcript").mkdir(parents=True, exist_ok=True)
            (root / speaker / "transcript" / f"{utt}.txt").write_text(text)
    write_audio(root / "suitcase_corpus/wav/aba.wav")  # spontaneous speech: not read prompts
    (root / "suitcase_corpus/transcript").mkdir(parents=True)
    (root / "suitcase_corpus/transcript/aba.txt").write_text("well there is a man")
    out = tmp_path / "ac.jsonl"
    assert l2arctic.to_manifest(root, out) == 4
    by_id = {e.id: e for e in read_manifest(out)}
    assert by_id["l2arctic-ABA-arctic_a0001-ac"].target == "arabic"
    assert by_id["l2arctic-HKK-arctic_b0002-ac"].target == "korean"
    assert by_id["l2arctic-HKK-arctic_b0002-asr"].target == "he turned sharply."
    assert by_id["l2arctic-HKK-arctic_b0002-asr"].audio == str(root / "HKK/wav/arctic_b0002.wav")
    assert by_id["l2arctic-ABA-arctic_a0001-ac"].duration == 0.5
    assert l2arctic.to_manifest(root, out, speakers=["HKK"], tasks=("ac",)) == 1
    with pytest.raises(ValueError, match="unknown L2-ARCTIC speakers"):
        l2arctic.to_manifest(root, out, speakers=["XYZ"])
    (root / "ABA/transcript/arctic_a0002.txt").write_text("For the twentieth time that evening")
    with pytest.raises(FileNotFoundError, match=r"arctic_a0002\.txt: its recording .* missing"):
        l2arctic.to_manifest(root, out)


def test_musan_segments_speech_music_and_noise(tmp_path: Path, write_audio) -> None:
    root = tmp_path / "musan"  # the release's layout, as lhotse's prepare_musan reads it
    write_audio(root / "speech/librivox/speech-librivox-0000.wav", seconds=9.0)
    write_audio(root / "music/fma/music-fma-0000.wav", seconds=30.0)
    write_audio(root / "noise/free-sound/noise-free-sound-0000.wav", seconds=2.0)
    (root / "music/fma/ANNOTATIONS").write_text("music-fma-0000 Classical N Chris_Zabriskie\n")
    out = tmp_path / "sns.jsonl"
    assert musan.to_manifest(root, out, segment_s=4.0, max_segments=3) == 2 + 3 + 1
    entries = read_manifest(out)
    assert Counter(e.target for e in entries) == {"non-speech": 4, "speech": 2}
    speech = [e for e in entries if e.target == "speech"]
    assert [(e.offset, e.duration) for e in speech] == [(0.0, 4.0), (4.0, 4.0)]
    noise = next(e for e in entries if e.meta["kind"] == "noise")
    assert (noise.offset, noise.duration) == (0.0, 2.0)
    music = [e for e in entries if e.meta["kind"] == "music"]
    assert [e.id for e in music] == [f"musan-music-music-fma-0000-{k}" for k in range(3)]
    assert music[2].offset == 8.0 and music[2].audio == str(root / "music/fma/music-fma-0000.wav")
    with (root / "music/fma/ANNOTATIONS").open("a") as f:
        f.write("music-fma-0001 Pop Y Kevin_MacLeod\n")  # its wav is not there
    with pytest.raises(FileNotFoundError, match=r"ANNOTATIONS:2: no music-fma-0001\.wav"):
        musan.to_manifest(root, out)
    (root / "music/fma/ANNOTATIONS").unlink()
    with pytest.raises(FileNotFoundError, match="no ANNOTATIONS file under"):
        musan.to_manifest(root, out)


@pytest.fixture
def librispeech_like(tmp_path: Path, write_audio, write_lines, line) -> Path:
    texts = {
        "84-121123-0000": "go do you hear the lantern",
        "84-121123-0001": "but in less than five minutes the staircase groaned",
        "174-50561-0000": "forgotten too the name of gillian the lovely captive",
        "251-136532-0000": "the lantern shone on the staircase",
    }
    lines = []
    for utt, text in texts.items():
        write_audio(tmp_path / f"{utt}.flac", seconds=1.0)
        lines.append(line(utt, f"{utt}.flac", target=text, duration=1.0))
    return write_lines(tmp_path / "asr.jsonl", lines)


def test_keywords_are_the_rarest_content_words_in_order(
    librispeech_like: Path, tmp_path: Path
) -> None:
    out = tmp_path / "kwe.jsonl"
    assert derived.keyword_manifest(librispeech_like, out, k=2) == 4
    by_id = {e.id: e.target for e in read_manifest(out)}
    # "lantern" and "staircase" appear in two transcripts each: rarer words win
    assert by_id["84-121123-0000-kwe"] == "hear, lantern"
    assert by_id["84-121123-0001-kwe"] == "minutes, groaned"
    assert by_id["251-136532-0000-kwe"] == "lantern, shone"
    assert transcripts(read_manifest(out))["84-121123-0000-kwe"] == "go do you hear the lantern"


def test_speaker_mixtures_count_distinct_speakers(librispeech_like: Path, tmp_path: Path) -> None:
    out = tmp_path / "sc.jsonl"
    assert derived.mixture_manifest(librispeech_like, out, tmp_path / "mix", 30, 3, seed=1) == 30
    entries = read_manifest(out)
    assert {e.target for e in entries} == {"one", "two", "three"}
    for entry in entries:
        sources = entry.meta["sources"]
        assert len(sources) == ["one", "two", "three"].index(entry.target) + 1
        assert len({s.split("-")[0] for s in sources}) == len(sources)  # different speakers
        data, rate = sf.read(entry.audio)
        assert rate == 16000 and abs(len(data) / rate - entry.duration) < 1e-3
        # partial overlap: longer than one utterance, shorter than all end to end
        assert entry.duration == 1.0 if len(sources) == 1 else 1.0 < entry.duration < len(sources)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert all(x["labels"] == ["one", "two", "three"] for x in lines)
    with pytest.raises(ValueError, match="3 speakers, 4 needed"):
        derived.mixture_manifest(librispeech_like, out, tmp_path / "mix", 1, 4)
