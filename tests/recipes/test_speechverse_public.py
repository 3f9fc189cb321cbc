"""The public SpeechVerse recipe's build on a few fake corpora laid out as documented: each
present source writes both splits, the derived tasks follow LibriSpeech, missing ones are named.
(The experiment config itself runs at tiny size in tests/test_recipes.py, like every other.)"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from speechllm.config import compose
from speechllm.data.manifest import read_manifest

SCRIPT = Path(__file__).resolve().parents[2] / "recipes" / "speechverse_public" / "build.py"


def _build_module():
    spec = importlib.util.spec_from_file_location("speechverse_public_build", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def _wav(path: Path, seconds: float = 0.5, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(seed).normal(0, 0.1, int(16000 * seconds))
    sf.write(path, noise.astype(np.float32), 16000)


def _librispeech(root: Path) -> None:
    for split in ("train-clean-100", "dev-clean"):
        for speaker in ("19", "26", "32", "40"):
            chapter = root / "LibriSpeech" / split / speaker / "198"
            utts = [f"{speaker}-198-000{i}" for i in range(2)]
            for i, utt in enumerate(utts):
                _wav(chapter / f"{utt}.flac", seed=int(speaker) + i)
            text = "".join(f"{u} NORTHANGER ABBEY CHAPTER {n}\n" for n, u in enumerate(utts))
            (chapter / f"{speaker}-198.trans.txt").write_text(text)


def test_build_writes_every_present_source_and_names_the_missing(tmp_path: Path, capsys) -> None:
    corpora, out = tmp_path / "corpora", tmp_path / "out"
    _librispeech(corpora)
    for actor in (1, 2, 21):
        _wav(corpora / "ravdess" / f"Actor_{actor:02d}" / f"03-01-05-01-01-01-{actor:02d}.wav")
    for kind, source in (("speech", "librivox"), ("music", "fma"), ("noise", "free-sound")):
        for i in range(12):
            _wav(corpora / "musan" / kind / source / f"{kind}-{source}-{i:04d}.wav", seconds=1.0)
    annotations = "".join(f"music-fma-{i:04d} Classical N Chris_Zabriskie\n" for i in range(12))
    (corpora / "musan/music/fma/ANNOTATIONS").write_text(annotations)  # lhotse's recipe reads it
    build = _build_module()
    counts = build.main(["--corpora", str(corpora), "--out", str(out), "--mixtures", "20"])
    printed = capsys.readouterr()
    assert counts["train"]["asr"] == 8 and counts["dev"]["asr"] == 8
    assert counts["train"]["er"] == 2 and counts["dev"]["er"] == 1  # actors 21-24 are dev
    assert counts["train"]["sns"] + counts["dev"]["sns"] == 36
    assert counts["train"]["kwe"] == 8 and counts["train"]["sc"] == 20
    assert counts["dev"]["sc"] == 1
    for task in ("st", "ic", "sf", "kws", "asc", "ac"):
        assert not counts["train"][task]
    assert "missing" in printed.err + printed.out
    assert "no training lines yet for: st, ic, sf, kws, asc, ac" in printed.out
    train = read_manifest(out / "train.jsonl")  # every path resolves from the merged manifest
    assert all(Path(entry.audio).is_file() for entry in train)
    assert len({e.id for e in train}) == len(train)


def test_the_experiment_reads_the_built_manifests() -> None:
    cfg = compose(["experiment=speechverse_public"])
    assert list(cfg.data.train_manifests) == ["data/speechverse_public/train.jsonl"]
    assert set(cfg.curriculum.stages.multitask.tasks) == set(_build_module().PAPER_TASKS)
