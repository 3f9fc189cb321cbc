"""Build SpeechVerse's eleven-task mixture from public corpora: train.jsonl and dev.jsonl.

Each task has one source (README.md: licences, downloads, the layout under --corpora); a source
whose folder is missing is skipped and named, so the mixture can be built in parts.

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

SPLITS = ("train", "dev")
PAPER_TASKS = ("asr", "st", "ic", "sf", "kws", "kwe", "er", "asc", "ac", "sc", "sns")
L2ARCTIC_DEV = ("ZHAA", "TXHC", "TNI", "YKWK", "NJS", "TLV")
"""One speaker per first language, heard only in dev."""


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
    subset = {"train": "train-clean-100", "dev": "dev-clean"}[split]
    return librispeech.to_manifest(root, subset, out)


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
            root / "dataset/slurp" / f"{'devel' if split == 'dev' else 'train'}.jsonl",
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
            _hf(root / {"train": "train", "dev": "validation"}[split]), out, out.parent / "audio"
        ),
    ),
    Source(
        "slue_voxceleb",
        ("asc",),
        "slue_voxceleb",
        lambda root, split, out, args: hf_labels.slue_voxceleb(
            _hf(root / {"train": "train", "dev": "validation"}[split]),
            out,
            out.parent / "audio",
            tasks=("asc",),
        ),
    ),
    Source(
        "ravdess",
        ("er",),
        "ravdess",
        lambda root, split, out, args: ravdess.to_manifest(
            root, out, actors=range(1, 21) if split == "train" else range(21, 25)
        ),
    ),
    Source(
        "l2arctic",
        ("ac",),
        "l2arctic",
        lambda root, split, out, args: l2arctic.to_manifest(
            root,
            out,
            [s for s in l2arctic.SPEAKERS if (s in L2ARCTIC_DEV) == (split == "dev")],
            tasks=("ac",),
        ),
    ),
    Source(
        "musan",
        ("sns",),
        "musan",
        lambda root, split, out, args: _keep_split(musan.to_manifest(root, out), out, split),
    ),
)
DERIVED = ("kwe", "sc")
"""Tasks derived from the LibriSpeech manifests (keywords, speaker mixtures)."""


def _keep_split(_: int, manifest: Path, split: str, dev_share: float = 0.1) -> int:
    """Keep the lines of ``split``, recordings assigned by a hash of their file (MUSAN has no
    split; a file's segments stay together)."""
    lines = manifest.read_text().splitlines()

    def split_of(line: str) -> str:
        digest = hashlib.sha1(json.loads(line)["audio"].encode()).digest()
        return "dev" if digest[0] / 256 < dev_share else "train"

    kept = [line for line in lines if split_of(line) == split]
    manifest.write_text("".join(line + "\n" for line in kept))
    return len(kept)


def build(corpora: Path, out: Path, args: argparse.Namespace) -> dict[str, Counter[str]]:
    """Write every available source's manifests under ``out``, then ``train.jsonl`` and
    ``dev.jsonl`` (all lines of a split, in source order). Returns the lines per task."""
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
            derived.mixture_manifest(asr, sc, out / "mixtures", n, seed=SPLITS.index(split))
            written[split] += [kwe, sc]
    counts = {}
    for split, parts in written.items():
        lines = [line for part in parts for line in part.read_text().splitlines()]
        (out / f"{split}.jsonl").write_text("".join(line + "\n" for line in lines))
        counts[split] = Counter(json.loads(line)["task"] for line in lines)
    return counts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--corpora", required=True, help="folder holding the downloaded corpora")
    p.add_argument("--out", default="data/speechverse_public", help="manifests and copied audio")
    p.add_argument("--keywords", type=int, default=3, help="kwe keywords per utterance at most")
    p.add_argument("--mixtures", type=int, default=20000, help="sc training mixtures (dev: 1/20)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Counter[str]]:
    args = parse_args(argv)
    counts = build(Path(args.corpora), Path(args.out), args)
    print(f"\n{'task':<6} {'train':>8} {'dev':>8}  source")
    for task in PAPER_TASKS:
        origin = (
            "librispeech (derived)"
            if task in DERIVED
            else next(s.name for s in SOURCES if task in s.tasks)
        )
        print(f"{task:<6} {counts['train'][task]:>8} {counts['dev'][task]:>8}  {origin}")
    if missing := [t for t in PAPER_TASKS if not counts["train"][t]]:
        print(f"no training lines yet for: {', '.join(missing)}")
    return counts


if __name__ == "__main__":
    main()
