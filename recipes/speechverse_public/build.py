"""Build SpeechVerse's eleven tasks from public corpora: train.jsonl, dev.jsonl and test.jsonl.

Each task has one source (README.md: licences, downloads, the layout under --corpora); a source
whose folder is missing is skipped and named, so the mixture can be built in parts. Test sets
are the corpora's official test partitions where they have one; RAVDESS, L2-ARCTIC and MUSAN
have none and are split here by held-out actors, speakers and files (fixed lists and a salted
hash: the same split on every machine); the derived ``kwe`` and ``sc`` sets of a split are made
from that split's LibriSpeech recordings only.

    python recipes/speechverse_public/build.py --corpora corpora --out data/speechverse_public
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from speechllm.importers import (
    covost2,
    derived,
    hf_labels,
    l2arctic,
    librispeech,
    musan,
    ravdess,
    slurp,
)

SPLITS = ("train", "dev", "test")
PAPER_TASKS = ("asr", "st", "ic", "sf", "kws", "kwe", "er", "asc", "ac", "sc", "sns")
LIBRISPEECH = {
    "train": ("train-clean-100",),
    "dev": ("dev-clean",),
    "test": ("test-clean", "test-other"),
}
"""LibriSpeech subsets of each split; the test subsets are also written one file each."""
HF_SPLITS = {"train": "train", "dev": "validation", "test": "test"}
"""Our split -> the Hugging Face split (Speech Commands, SLUE-VoxCeleb)."""
RAVDESS_ACTORS = {"train": range(1, 19), "dev": range(19, 21), "test": range(21, 25)}
"""Actors of each split (RAVDESS has no official split; odd actors are male, even female, so
each split holds both)."""
L2ARCTIC_HELDOUT = {
    "dev": ("ZHAA", "TXHC", "TNI", "YKWK", "NJS", "TLV"),
    "test": ("YBAA", "NCC", "RRBI", "YDCK", "ERMS", "THV"),
}
"""One speaker per first language heard only in dev, one only in test; train has the other 12."""
MUSAN_SHARES, MUSAN_SALT = {"dev": 0.1, "test": 0.1}, "speechverse-public-0"
"""Share of MUSAN's files in dev and test, drawn by a hash of each file's path inside ``musan/``
salted with ``MUSAN_SALT`` (a file's segments stay together)."""


@dataclass(frozen=True)
class Source:
    """One corpus: the folder it needs under --corpora and how it writes one split."""

    name: str
    tasks: tuple[str, ...]
    folder: str
    write: Callable[[Path, str, Path, argparse.Namespace], int]
    """(corpus folder, split, output manifest, args) -> lines written."""


def _hf(path: Path):  # noqa: ANN202 (a datasets.Dataset; imported lazily, it is slow)
    from datasets import load_from_disk

    return load_from_disk(str(path))


def _librispeech(root: Path, split: str, out: Path, args: argparse.Namespace) -> int:
    subsets = LIBRISPEECH[split]
    if len(subsets) == 1:
        return librispeech.to_manifest(root, subsets[0], out)
    parts = [out.with_name(f"librispeech.{subset}.jsonl") for subset in subsets]
    for subset, part in zip(subsets, parts, strict=True):
        librispeech.to_manifest(root, subset, part)
    return _concatenate(parts, out)


def _slue(root: Path, split: str, out: Path, args: argparse.Namespace) -> int:
    lines = hf_labels.slue_voxceleb(
        _hf(root / HF_SPLITS[split]), out, out.parent / "audio", ("asc",)
    )
    if not lines:  # <mixed> is left out; a test copy saved before the labels has none to score
        raise ValueError(
            f"{root / HF_SPLITS[split]}: no line with a sentiment; SLUE released its test labels "
            "on 2024-01-08: save the split again from asapp/slue (README.md, Build)"
        )
    return lines


def _concatenate(parts: list[Path], out: Path) -> int:
    """``parts`` (manifests in ``out``'s folder, so their relative paths hold) into ``out``."""
    lines = [line for part in parts for line in part.read_text().splitlines()]
    out.write_text("".join(line + "\n" for line in lines))
    return len(lines)


SOURCES = (
    Source("librispeech", ("asr",), "LibriSpeech", _librispeech),
    Source(
        "covost2",
        ("st",),
        "covost2",
        lambda root, split, out, args: covost2.to_manifest(
            root / f"covost_v2.en_de.{split}.tsv", root / "clips", out, "en", "de"
        ),
    ),
    Source(
        "slurp",
        ("ic", "sf"),
        "slurp",
        lambda root, split, out, args: slurp.to_manifest(
            root / "dataset/slurp" / f"{'devel' if split == 'dev' else split}.jsonl",
            root / "slurp_real",
            out,
            tasks=("ic", "sf"),
        ),
    ),
    Source(
        "speech_commands",
        ("kws",),
        "speech_commands",
        lambda root, split, out, args: hf_labels.speech_commands(
            _hf(root / HF_SPLITS[split]), out, out.parent / "audio"
        ),
    ),
    Source("slue_voxceleb", ("asc",), "slue_voxceleb", _slue),
    Source(
        "ravdess",
        ("er",),
        "ravdess",
        lambda root, split, out, args: ravdess.to_manifest(root, out, actors=RAVDESS_ACTORS[split]),
    ),
    Source(
        "l2arctic",
        ("ac",),
        "l2arctic",
        lambda root, split, out, args: l2arctic.to_manifest(
            root,
            out,
            [s for s in l2arctic.SPEAKERS if _l2arctic_split(s) == split],
            tasks=("ac",),
        ),
    ),
    Source(
        "musan",
        ("sns",),
        "musan",
        lambda root, split, out, args: _keep_split(musan.to_manifest(root, out), root, out, split),
    ),
)
DERIVED = ("kwe", "sc")
"""Tasks derived from the LibriSpeech manifests (keywords, speaker mixtures)."""


def _l2arctic_split(speaker: str) -> str:
    return next((split for split, held in L2ARCTIC_HELDOUT.items() if speaker in held), "train")


def musan_split(relative: str) -> str:
    """The split of a MUSAN file, from its path inside ``musan/`` (``music/fma/x.wav``): a
    salted hash, so the split does not depend on where the corpus or the output lie."""
    digest = hashlib.sha1(f"{MUSAN_SALT}/{relative}".encode()).digest()
    draw = int.from_bytes(digest[:8], "big") / 2**64
    for split, share in MUSAN_SHARES.items():
        if draw < share:
            return split
        draw -= share
    return "train"


def _keep_split(_: int, root: Path, manifest: Path, split: str) -> int:
    """Keep the lines of ``split`` in ``manifest`` (MUSAN has no split: :func:`musan_split`)."""
    lines = manifest.read_text().splitlines()

    def split_of(line: str) -> str:
        audio = (manifest.parent / json.loads(line)["audio"]).resolve()
        return musan_split(audio.relative_to(root.resolve()).as_posix())

    kept = [line for line in lines if split_of(line) == split]
    manifest.write_text("".join(line + "\n" for line in kept))
    return len(kept)


def build(corpora: Path, out: Path, args: argparse.Namespace) -> dict[str, Counter[str]]:
    """Write every available source's manifests under ``out`` (``<source>.<split>.jsonl``), then
    ``train.jsonl``, ``dev.jsonl`` and ``test.jsonl`` (all lines of a split, in source order).
    Returns the lines per split and task."""
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[Path]] = {split: [] for split in SPLITS}
    for source in tqdm(SOURCES, desc="sources", unit="corpus"):
        root = corpora / source.folder
        if not root.is_dir():
            tqdm.write(f"missing {root}: no {'/'.join(source.tasks)} (see README.md)")
            continue
        for split in SPLITS:
            part = out / f"{source.name}.{split}.jsonl"
            lines = source.write(root, split, part, args)
            tqdm.write(f"{source.name} {split}: {lines} lines")
            written[split].append(part)
    for split in SPLITS:
        asr = out / f"librispeech.{split}.jsonl"
        if asr.is_file():
            kwe, sc = out / f"keywords.{split}.jsonl", out / f"mixtures.{split}.jsonl"
            derived.keyword_manifest(asr, kwe, k=args.keywords)
            n = args.mixtures if split == "train" else max(1, args.mixtures // 20)
            seed = SPLITS.index(split)
            derived.mixture_manifest(asr, sc, out / "mixtures", n, seed=seed, name=f"mix-{split}")
            written[split] += [kwe, sc]
    counts = {}
    for split, parts in written.items():
        _concatenate(parts, out / f"{split}.jsonl")
        lines = (out / f"{split}.jsonl").read_text().splitlines()
        counts[split] = Counter(json.loads(line)["task"] for line in lines)
    return counts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--corpora", required=True, help="folder holding the downloaded corpora")
    p.add_argument("--out", default="data/speechverse_public", help="manifests and copied audio")
    p.add_argument("--keywords", type=int, default=3, help="kwe keywords per utterance at most")
    p.add_argument(
        "--mixtures", type=int, default=20000, help="sc training mixtures (dev, test: 1/20 each)"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Counter[str]]:
    args = parse_args(argv)
    counts = build(Path(args.corpora), Path(args.out), args)
    print(f"\n{'task':<6}" + "".join(f" {split:>8}" for split in SPLITS) + "  source")
    for task in PAPER_TASKS:
        origin = (
            "librispeech (derived)"
            if task in DERIVED
            else next(s.name for s in SOURCES if task in s.tasks)
        )
        print(f"{task:<6}" + "".join(f" {counts[s][task]:>8}" for s in SPLITS) + f"  {origin}")
    if missing := [t for t in PAPER_TASKS if not counts["train"][t]]:
        print(f"no training lines yet for: {', '.join(missing)}")
    if missing := [t for t in PAPER_TASKS if not counts["test"][t]]:
        print(f"no test lines yet for: {', '.join(missing)}")
    return counts


if __name__ == "__main__":
    main()
