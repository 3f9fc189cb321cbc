"""L2-ARCTIC (non-native English read speech): ``ac`` lines labelled with the speaker's first
language, and ``asr`` lines from its transcripts.

Layout of the unzipped corpus: ``<SPEAKER>/wav/arctic_a0001.wav`` and
``<SPEAKER>/transcript/arctic_a0001.txt`` for the 24 speakers of :data:`SPEAKERS`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import soundfile as sf

from speechllm.data.manifest import write_manifest

SPEAKERS = {
    **dict.fromkeys(("ABA", "SKA", "YBAA", "ZHAA"), "arabic"),
    **dict.fromkeys(("BWC", "LXC", "NCC", "TXHC"), "mandarin"),
    **dict.fromkeys(("ASI", "RRBI", "SVBI", "TNI"), "hindi"),
    **dict.fromkeys(("HJK", "HKK", "YDCK", "YKWK"), "korean"),
    **dict.fromkeys(("EBVS", "ERMS", "MBMPS", "NJS"), "spanish"),
    **dict.fromkeys(("HQTV", "PNV", "THV", "TLV"), "vietnamese"),
}
"""Speaker -> first language (the accent label), as in the corpus's README."""


def to_manifest(
    root: str | os.PathLike,
    out: str | os.PathLike,
    speakers: Sequence[str] | None = None,
    tasks: Sequence[str] = ("ac", "asr"),
) -> int:
    """Write an L2-ARCTIC manifest.

    Args:
        root: Folder holding the speaker folders.
        out: Output JSONL path.
        speakers: Speakers to include (e.g. held-out speakers for dev); ``None``: all present.
        tasks: Subset of ``ac`` and ``asr``.

    Returns:
        The number of lines written.
    """
    if unknown := set(tasks) - {"ac", "asr"}:
        raise ValueError(f"L2-ARCTIC provides ac and asr, not {sorted(unknown)}")
    if speakers is not None and (unknown := set(speakers) - set(SPEAKERS)):
        raise ValueError(f"unknown L2-ARCTIC speakers {sorted(unknown)}; known: {sorted(SPEAKERS)}")
    chosen = [s for s in (speakers or SPEAKERS) if (Path(root) / s / "wav").is_dir()]
    if not chosen:
        raise FileNotFoundError(f"no <SPEAKER>/wav folders of L2-ARCTIC under {root}")
    return write_manifest(_records(Path(root), chosen, tasks), out)


def _records(root: Path, speakers: list[str], tasks: Sequence[str]) -> Iterator[dict[str, Any]]:
    labels = sorted(set(SPEAKERS.values()))
    for speaker in speakers:
        for wav in sorted((root / speaker / "wav").glob("*.wav")):
            script = root / speaker / "transcript" / f"{wav.stem}.txt"
            if not script.exists():
                continue  # a few recordings have no transcript
            transcript = " ".join(script.read_text(encoding="utf-8").lower().split())
            targets = {"ac": SPEAKERS[speaker], "asr": transcript}
            duration = round(sf.info(str(wav)).duration, 3)
            for task in tasks:
                yield {
                    "id": f"l2arctic-{speaker}-{wav.stem}-{task}",
                    "audio": str(wav.resolve()),
                    "duration": duration,
                    "task": task,
                    "target": targets[task],
                    "lang": "en",
                    **({"labels": labels} if task == "ac" else {}),
                    "meta": {"speaker": speaker, "transcript": transcript},
                }
