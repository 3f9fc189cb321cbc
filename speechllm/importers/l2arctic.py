"""L2-ARCTIC (non-native English read speech): ``ac`` lines labelled with the speaker's first
language, and ``asr`` lines from its transcripts, read by lhotse's recipe
(``lhotse.recipes.prepare_l2_arctic``, its ``read`` part; the suitcase stories are left out).

Layout of the unzipped corpus: ``<SPEAKER>/wav/arctic_a0001.wav`` and
``<SPEAKER>/transcript/arctic_a0001.txt`` for the 24 speakers of :data:`SPEAKERS`, and
``suitcase_corpus/{wav,transcript}/``. A recording without a transcript is left out (lhotse logs
how many); a transcript without its recording stops the import, naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from speechllm.data.manifest import write_manifest
from speechllm.importers.lhotse import audio_fields, supervised

if TYPE_CHECKING:
    from lhotse import RecordingSet, SupervisionSet

SPEAKERS = {
    **dict.fromkeys(("ABA", "SKA", "YBAA", "ZHAA"), "arabic"),
    **dict.fromkeys(("BWC", "LXC", "NCC", "TXHC"), "mandarin"),
    **dict.fromkeys(("ASI", "RRBI", "SVBI", "TNI"), "hindi"),
    **dict.fromkeys(("HJK", "HKK", "YDCK", "YKWK"), "korean"),
    **dict.fromkeys(("EBVS", "ERMS", "MBMPS", "NJS"), "spanish"),
    **dict.fromkeys(("HQTV", "PNV", "THV", "TLV"), "vietnamese"),
}
"""Speaker -> first language (the accent label), as in the corpus's README (lhotse's
``custom["accent"]`` says ``Chinese`` where the README says Mandarin)."""


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
    root = Path(root)
    chosen = [s for s in (speakers or SPEAKERS) if (root / s / "wav").is_dir()]
    if not chosen:
        raise FileNotFoundError(f"no <SPEAKER>/wav folders of L2-ARCTIC under {root}")
    _check_recordings(root)
    from lhotse.recipes import prepare_l2_arctic  # loaded only when this importer runs

    read = prepare_l2_arctic(root)["read"]
    return write_manifest(_records(read["recordings"], read["supervisions"], chosen, tasks), out)


def _check_recordings(root: Path) -> None:
    """Every transcript has its wav: lhotse's recipe looks each one up and fails with a bare
    ``StopIteration`` when it is missing."""
    for script in sorted(root.glob("*/transcript/*.txt")):
        wav = script.parent.parent / "wav" / f"{script.stem}.wav"
        if not wav.is_file():
            raise FileNotFoundError(f"{script}: its recording {wav} is missing")


def _records(
    recordings: RecordingSet,
    supervisions: SupervisionSet,
    speakers: list[str],
    tasks: Sequence[str],
) -> Iterator[dict[str, Any]]:
    labels = sorted(set(SPEAKERS.values()))
    order = {speaker.lower(): rank for rank, speaker in enumerate(speakers)}  # lhotse: "aba"
    pairs = [(s, r) for s, r in supervised(recordings, supervisions) if s.speaker in order]
    for sup, recording in sorted(pairs, key=lambda pair: order[pair[0].speaker]):  # stable
        speaker, utt = sup.speaker.upper(), sup.id.removeprefix(f"{sup.speaker}-")
        transcript = " ".join(sup.text.lower().split())
        targets = {"ac": SPEAKERS[speaker], "asr": transcript}
        audio = audio_fields(recording)
        for task in tasks:
            yield {
                "id": f"l2arctic-{speaker}-{utt}-{task}",
                **audio,
                "task": task,
                "target": targets[task],
                "lang": "en",
                **({"labels": labels} if task == "ac" else {}),
                "meta": {"speaker": speaker, "transcript": transcript},
            }
