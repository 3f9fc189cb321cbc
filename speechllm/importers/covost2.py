"""CoVoST 2: a TSV (``path``, ``sentence``, ``translation``, ``client_id``) over Common Voice
clips, e.g. ``covost_v2.en_de.train.tsv`` with ``<cv>/clips/<path>``.

Parsed here: lhotse has no CoVoST 2 recipe, and its ``commonvoice`` recipe reads Common Voice's
own splits (``train.tsv``...), not CoVoST's, which live with the translations in these TSVs.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import soundfile as sf

from speechllm.data.manifest import write_manifest


def to_manifest(
    tsv: str | os.PathLike,
    clips_dir: str | os.PathLike,
    out: str | os.PathLike,
    src_lang: str,
    tgt_lang: str,
    tasks: Sequence[str] = ("st",),
) -> int:
    """Write a CoVoST 2 manifest: ``st`` lines (translation) and optionally ``asr`` lines.

    Args:
        tsv: The CoVoST 2 split TSV.
        clips_dir: Common Voice ``clips`` folder.
        out: Output JSONL path.
        src_lang: Source language code, e.g. ``en``.
        tgt_lang: Target language code, e.g. ``de``.
        tasks: Subset of ``st`` and ``asr``.

    Returns:
        The number of lines written.
    """
    unknown = set(tasks) - {"st", "asr"}
    if unknown:
        raise ValueError(f"CoVoST 2 provides st and asr, not {sorted(unknown)}")
    return write_manifest(_records(Path(tsv), Path(clips_dir), src_lang, tgt_lang, tasks), out)


def _records(
    tsv: Path, clips: Path, src_lang: str, tgt_lang: str, tasks: Sequence[str]
) -> Iterator[dict[str, Any]]:
    with open(tsv, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            audio = (clips / row["path"]).resolve()
            duration = round(sf.info(str(audio)).duration, 3)
            stem = Path(row["path"]).stem
            targets = {"st": row["translation"], "asr": row["sentence"]}
            for task in tasks:
                if not targets[task].strip():
                    continue
                yield {
                    "id": f"covost2-{src_lang}-{tgt_lang}-{stem}-{task}",
                    "audio": str(audio),
                    "duration": duration,
                    "task": task,
                    "target": targets[task],
                    "lang": src_lang,
                    **({"tgt_lang": tgt_lang} if task == "st" else {}),
                    "meta": {"speaker": row["client_id"]},
                }
