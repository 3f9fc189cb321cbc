"""speechllm-data: check manifests, import corpora, write shards.

examples:
  speechllm-data check train.jsonl dev.jsonl          # every problem with file:line, summary
  speechllm-data import librispeech ROOT train-clean-100 out/train.jsonl
  speechllm-data import hf my_saved_dataset/ out/train.jsonl --text-column sentence
  speechllm-data import nemo nemo_train.json out/train.jsonl --task asr
  speechllm-data import clinical-outcomes mimic_tasks/ data/clinical_outcomes
  speechllm-data synth clinical-knowledge data/clinical_knowledge
  speechllm-data shard jsonl data/synthetic_small/train.jsonl --out shards/train
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from tqdm import tqdm

from speechllm._warnings import quiet_known_warnings
from speechllm.data.audio import load_audio
from speechllm.data.errors import DataError, ManifestError, unreadable
from speechllm.data.manifest import (
    MAX_ITEM_SECONDS,
    MIN_ITEM_SECONDS,
    ManifestEntry,
    limit_durations,
    read_manifests,
)
from speechllm.data.text_items import read_text_items
from speechllm.importers import (
    clinical_outcomes,
    covost2,
    hf_datasets,
    lhotse,
    librispeech,
    nemo,
    slurp,
)
from speechllm.tasks import get_task

HISTOGRAM_EDGES = (1, 2, 5, 10, 20, 30)
"""Upper bounds (seconds) of the duration histogram bins; the last bin is open."""


def check(
    paths: Sequence[str],
    audio: bool,
    min_seconds: float = MIN_ITEM_SECONDS,
    max_seconds: float | None = MAX_ITEM_SECONDS,
    too_long: str = "refuse",
    text: Sequence[str] = (),
) -> int:
    """Validate manifests (and their audio) as training would, print problems and a summary.

    Every problem is reported at its file:line and the check goes on: a hostile manifest
    (absurd numbers, deep nesting, a FIFO for audio) is a list of bad lines, not a crash or a
    hang. Durations are bounded as the data module bounds them (``min_item_seconds``,
    ``max_item_seconds``, ``too_long``), so a line it passes is one training accepts.

    Args:
        paths: Manifest files.
        audio: Also decode every audio segment.
        min_seconds: Shorter lines are problems (``too_short``).
        max_seconds: Longer lines are problems (``too_long``) or cut; ``None``: no cap.
        too_long: ``refuse`` or ``cut``, as in training.
        text: Text-only manifests (``data.text_manifests``), read as training reads them
            (ids may not repeat the speech manifests').

    Returns:
        The number of problems found.
    """
    problems: list[DataError] = []
    readable = []
    for path in paths:
        if os.path.isfile(path):
            readable.append(path)
        else:
            what = "not found" if not os.path.exists(path) else "not a regular file"
            problems.append(
                ManifestError(f"manifest {what}", reason="missing_file", source=path, line=0)
            )
    entries = read_manifests(readable, problems.append)
    entries = limit_durations(entries, min_seconds, max_seconds, too_long, problems.append)
    if audio:
        good = []
        for entry in tqdm(entries, desc="decoding audio", unit="item", file=sys.stderr):
            try:
                load_audio(entry.audio, None, entry.offset, entry.duration, max_seconds)
            except Exception as error:  # one decoder failure must not end the whole check
                problems.append(unreadable(error, entry.audio).at(entry.source, entry.line))
            else:
                good.append(entry)
        entries = good
    taken = {entry.id: f"{entry.source}:{entry.line}" for entry in entries}
    for path in text:
        try:
            items = read_text_items([path], problems.append, taken)
        except (OSError, ValueError) as error:  # the file itself: its format, kind or size
            problems.append(ManifestError(str(error), reason="bad_file", source=path, line=0))
            continue
        taken |= {item.id: f"{item.source}:{item.line}" for item in items}
        entries += items
    for problem in sorted(problems, key=lambda p: (p.source or "", p.line or 0)):
        print(f"ERROR {problem}")
    print(summary(entries))
    reasons = Counter(p.reason for p in problems)
    print(
        f"{len(problems)} problem(s)" + (f": {dict(sorted(reasons.items()))}" if problems else "")
    )
    return len(problems)


def summary(entries: Sequence[ManifestEntry]) -> str:
    """Hours per task, a duration histogram and the label distribution of classification tasks."""
    lines = [f"{len(entries)} valid item(s)", "", "task       items      hours"]
    by_task: dict[str, list[ManifestEntry]] = {}
    for entry in entries:
        by_task.setdefault(entry.task, []).append(entry)
    for task, items in sorted(by_task.items()):
        lines.append(f"{task:<8} {len(items):>7} {sum(e.duration for e in items) / 3600:>10.3f}")
    lines += ["", "duration (s)   items"]
    bins = Counter(next((i for i, edge in enumerate(HISTOGRAM_EDGES) if e.duration < edge),
                        len(HISTOGRAM_EDGES)) for e in entries)  # fmt: skip
    bounds = (0, *HISTOGRAM_EDGES)
    for i, low in enumerate(bounds):
        label = f"{low}-{bounds[i + 1]}" if i + 1 < len(bounds) else f">={low}"
        lines.append(f"{label:<12} {bins[i]:>7}")
    for task, items in sorted(by_task.items()):
        if get_task(task).classifies:
            counts = Counter(e.target for e in items).most_common(20)
            lines += ["", f"labels of {task}: " + ", ".join(f"{t}={n}" for t, n in counts)]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="speechllm-data",
        description=__doc__.split("\n")[0].partition(": ")[2],
        epilog=__doc__.partition("\n\n")[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check_cmd = commands.add_parser("check", help="validate manifests and their audio")
    check_cmd.add_argument("manifests", nargs="+", help="JSONL manifest(s)")
    check_cmd.add_argument(
        "--audio", action=argparse.BooleanOptionalAction, default=True, help="decode all audio"
    )
    check_cmd.add_argument(
        "--min-item-seconds",
        type=float,
        default=MIN_ITEM_SECONDS,
        help="shorter lines are problems, as in training (data.min_item_seconds)",
    )
    check_cmd.add_argument(
        "--max-item-seconds",
        type=_seconds_or_none,
        default=MAX_ITEM_SECONDS,
        help="longer lines are problems or cut, as in training (data.max_item_seconds; none)",
    )
    check_cmd.add_argument("--too-long", choices=["refuse", "cut"], default="refuse")
    check_cmd.add_argument(
        "--text", nargs="+", default=[], help="text-only manifests (data.text_manifests) too"
    )
    check_cmd.set_defaults(
        run=lambda a: int(
            check(a.manifests, a.audio, a.min_item_seconds, a.max_item_seconds, a.too_long, a.text)
            > 0
        )
    )
    imports = commands.add_parser("import", help="write a manifest from a corpus").add_subparsers(
        dest="corpus", required=True
    )
    cmd = imports.add_parser("librispeech", help="LibriSpeech split -> asr")
    cmd.add_argument("root", help="folder holding the split folders")
    cmd.add_argument("split", help="e.g. train-clean-100")
    cmd.add_argument("out", help="output JSONL")
    cmd.set_defaults(importer=lambda a: librispeech.to_manifest(a.root, a.split, a.out))
    cmd = imports.add_parser("slurp", help="SLURP split -> asr, ic, sf")
    cmd.add_argument("annotations", help="slurp/dataset/slurp/<split>.jsonl")
    cmd.add_argument("audio_dir", help="slurp_real folder")
    cmd.add_argument("out", help="output JSONL")
    cmd.add_argument("--tasks", nargs="+", default=["asr", "ic", "sf"])
    cmd.set_defaults(
        importer=lambda a: slurp.to_manifest(a.annotations, a.audio_dir, a.out, a.tasks)
    )
    cmd = imports.add_parser("covost2", help="CoVoST 2 TSV -> st (and asr)")
    cmd.add_argument("tsv", help="CoVoST 2 split TSV")
    cmd.add_argument("clips_dir", help="Common Voice clips folder")
    cmd.add_argument("out", help="output JSONL")
    cmd.add_argument("--src-lang", required=True)
    cmd.add_argument("--tgt-lang", required=True)
    cmd.add_argument("--tasks", nargs="+", default=["st"])
    cmd.set_defaults(
        importer=lambda a: covost2.to_manifest(
            a.tsv, a.clips_dir, a.out, a.src_lang, a.tgt_lang, a.tasks
        )
    )
    cmd = imports.add_parser("lhotse", help="lhotse cuts.jsonl.gz -> one task")
    cmd.add_argument("cuts", help="cuts.jsonl.gz")
    cmd.add_argument("out", help="output JSONL")
    cmd.add_argument("--task", default="asr")
    cmd.add_argument("--lang", default=None)
    cmd.set_defaults(importer=lambda a: lhotse.to_manifest(a.cuts, a.out, a.task, a.lang))
    _hf_import_parser(imports)
    cmd = imports.add_parser(
        "nemo", help="NeMo manifest (audio_filepath, text, duration) -> one task"
    )
    cmd.add_argument("manifest", help="NeMo JSONL; relative audio paths resolve against its folder")
    cmd.add_argument("out", help="output JSONL")
    cmd.add_argument("--task", default="asr")
    cmd.add_argument("--text-field", default="text", help="NeMo field holding the target")
    cmd.set_defaults(
        importer=lambda a: nemo.to_manifest(a.manifest, a.out, a.task, text_field=a.text_field)
    )
    for corpus in imports.choices.values():
        corpus.set_defaults(run=_run_import)
    cmd = imports.add_parser(
        "clinical-outcomes",
        help="van Aken et al. (2021) outcome CSVs (diagnoses, procedures, mortality, length of "
        "stay) -> text classification manifests per task and split, label sets, note corpus",
    )
    cmd.add_argument("folder", help="the folder their task scripts saved the CSVs to")
    cmd.add_argument("out", help="output folder: <task>/{train,dev,test}.jsonl, label_sets.json")
    cmd.add_argument(
        "--discharge", action="store_true", help="the discharge-summary files (no _adm)"
    )
    cmd.set_defaults(
        run=lambda a: _print_counts(
            clinical_outcomes.to_manifests(a.folder, a.out, not a.discharge), a.out
        )
    )
    synth = commands.add_parser("synth", help="write a synthetic text dataset").add_subparsers(
        dest="dataset", required=True
    )
    cmd = synth.add_parser(
        "clinical-knowledge",
        help="clinical notes whose labels need domain knowledge, and the domain corpus stating "
        "it (speechllm/synth/clinical_knowledge.py)",
    )
    cmd.add_argument("out", help="output folder")
    cmd.add_argument("--seed", type=int, default=0)
    cmd.add_argument("--size", choices=["full", "tiny"], default="full")
    cmd.set_defaults(run=_synth_knowledge)
    _shard_parser(commands)
    return parser


def _print_counts(counts: dict[str, int], out: str) -> int:
    for name, count in counts.items():
        print(f"{out}/{name}: {count} line(s)")
    return 0


def _synth_knowledge(args: argparse.Namespace) -> int:
    # imported when run: the synth package loads its speech benchmark too (0.6 s)
    from speechllm.synth.clinical_knowledge import write_clinical_knowledge

    return _print_counts(write_clinical_knowledge(args.out, args.seed, args.size), args.out)


def _seconds_or_none(text: str) -> float | None:
    return None if text.lower() in ("none", "null") else float(text)


def _hf_import_parser(imports: argparse._SubParsersAction) -> None:
    cmd = imports.add_parser(
        "hf", help="Hugging Face dataset with an Audio column -> one task (audio as FLAC)"
    )
    cmd.add_argument("dataset", help="Dataset.save_to_disk folder, or a Hub id (streamed)")
    cmd.add_argument("out", help="output JSONL")
    cmd.add_argument("--config", default=None, help="Hub dataset configuration, e.g. a language")
    cmd.add_argument("--split", default="train")
    cmd.add_argument("--audio-column", default="audio")
    cmd.add_argument("--text-column", default="text", help="column holding the target")
    cmd.add_argument("--id-column", default=None, help="column of ids (default: numbered)")
    cmd.add_argument("--task", default="asr")
    cmd.add_argument("--lang", default=None, help="lang field of every line")
    cmd.add_argument("--limit", type=int, default=None, help="only the first N rows")
    cmd.add_argument(
        "--audio-dir", default=None, help="where the FLAC files go (default: OUT without .jsonl)"
    )
    cmd.set_defaults(importer=_import_hf)


def _import_hf(args: argparse.Namespace) -> int:
    out = Path(args.out)
    rows = hf_datasets.load_rows(args.dataset, args.split, args.config, args.audio_column)
    return hf_datasets.to_manifest(
        tqdm(rows, desc="importing", unit="row", file=sys.stderr, total=args.limit),
        out,
        args.audio_dir or out.with_suffix(""),
        task=args.task,
        target_column=args.text_column,
        audio_column=args.audio_column,
        id_column=args.id_column,
        id_prefix=out.stem,
        fields={"lang": args.lang} if args.lang else None,
        limit=args.limit,
    )


def _shards() -> ModuleType:
    """``speechllm.importers.shards``, imported when a shard command runs (it loads lhotse)."""
    from speechllm.importers import shards

    return shards


def _shard_parser(commands: argparse._SubParsersAction) -> None:
    sources = commands.add_parser(
        "shard", help="write lhotse Shar shards (one folder per task) for streaming training"
    ).add_subparsers(dest="source", required=True)
    cmd = sources.add_parser("jsonl", help="JSONL manifests (shuffled once with --seed)")
    cmd.add_argument("manifests", nargs="+", help="JSONL manifest(s)")
    cmd.add_argument("--seed", type=int, default=0)
    cmd.set_defaults(cuts=lambda a: (_shards().cuts_from_manifests(a.manifests, a.seed), None))
    cmd = sources.add_parser("cuts", help="a lhotse CutSet (e.g. from lhotse.recipes)")
    cmd.add_argument("cutset", help="cuts.jsonl.gz")
    cmd.add_argument("--task", default="asr")
    cmd.add_argument("--lang", default=None)
    cmd.set_defaults(cuts=lambda a: (_shards().cuts_from_cutset(a.cutset, a.task, a.lang), None))
    cmd = sources.add_parser("hf", help="a Hugging Face dataset with an Audio column")
    cmd.add_argument("dataset", help="save_to_disk folder, or a hub name (streamed)")
    cmd.add_argument("--split", default="train")
    cmd.add_argument("--task", default="asr")
    cmd.add_argument("--audio-column", default="audio")
    cmd.add_argument("--target-column", default="text")
    cmd.add_argument("--id-column", default=None)
    cmd.add_argument("--lang", default=None)
    cmd.set_defaults(cuts=_hf_cuts)
    for source in sources.choices.values():
        source.add_argument("--out", required=True, help="output folder (resumes a partial one)")
        source.add_argument("--shard-size", type=int, default=1000, help="items per shard")
        source.add_argument("--audio-format", default="flac", choices=["flac", "wav", "opus"])
        source.set_defaults(run=_run_shard)


def _hf_cuts(args: argparse.Namespace) -> tuple:
    shards = _shards()
    rows, total = shards.open_hf(args.dataset, args.split, args.audio_column)
    cuts = shards.cuts_from_hf(
        rows,
        args.task,
        audio_column=args.audio_column,
        target_column=args.target_column,
        id_column=args.id_column,
        lang=args.lang,
    )
    return cuts, total


def _run_shard(args: argparse.Namespace) -> int:
    cuts, total = args.cuts(args)
    counts = _shards().write_shards(
        cuts, args.out, shard_size=args.shard_size, audio_format=args.audio_format, total=total
    )
    for task, count in counts.items():
        print(f"{task}: {count} item(s) in {args.out}/{task}")
    return 0


def _run_import(args: argparse.Namespace) -> int:
    count = args.importer(args)
    print(f"wrote {count} line(s) to {args.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``speechllm-data``; returns the exit code (1 when problems were found)."""
    quiet_known_warnings()
    args = _parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
