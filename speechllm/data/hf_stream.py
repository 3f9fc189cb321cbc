"""Hugging Face datasets streamed straight into training: each data file is one shard.

``load_dataset(path, name, split=..., data_files=..., streaming=True)`` returns an
``IterableDataset`` whose shards (``n_shards``) are its data files (parquet or arrow files on the
Hub or on disk). Each file plays the part of one Shar shard in
:class:`speechllm.data.streaming.ShardStream`: its rows come in a fixed order, so the stream's
lanes, task mixture and exact resume hold unchanged, without writing shards first::

    task ─► HFSource (dataset, config, split, data_files, column mapping)
        ─► load_dataset(..., streaming=True), audio cast to Audio(decode=False)
        ─► file i: rows.shard(n_shards, i) ─► HFShard.read() ─► row ─► cuts.hf_cut ─► cut

The audio stays encoded until the stream decodes it per item (``datasets`` 5 would need
torchcodec to decode it); a cut's duration comes from the audio's header. A row with an empty
target or unreadable audio becomes a :class:`DataError` that the stream locates by file and row
(1-based) and skips and counts under ``skip_bad``, or raises.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from lhotse.audio.utils import AudioLoadingError
from lhotse.cut import Cut
from torch.utils.data import get_worker_info

from speechllm.data.cuts import hf_cut
from speechllm.data.errors import DataError, unreadable
from speechllm.tasks import get_task

ROWS_PER_READ = 64
"""Rows fetched from a file at a time (encoded audio, so a few MB)."""
_ROW_FIELDS = ("lang", "tgt_lang", "instruction", "labels", "meta")  # a cut's manifest fields


@dataclass(frozen=True)
class HFSource:
    """One task's Hugging Face dataset and how its columns map to manifest fields (the names
    ``speechllm-data shard hf`` and :mod:`speechllm.importers.hf_datasets` use)."""

    path: str
    """A Hub dataset (``mozilla-foundation/common_voice_17_0``), a local dataset folder, or a
    file format (``parquet``, ``arrow``) with ``data_files``."""
    name: str | None = None
    """The dataset's config name (``en``)."""
    split: str = "train"
    data_files: str | list[str] | dict[str, Any] | None = None
    """Files or globs, as ``load_dataset`` takes them."""
    revision: str | None = None
    """A Hub commit: pin it, since exact resume needs the same files."""
    audio_column: str = "audio"
    target_column: str = "text"
    id_column: str | None = None
    """Utterance ids; ``None``: ``<file>:<row>``."""
    lang_column: str | None = None
    """Each row's language; else ``fields["lang"]``."""
    fields: dict[str, Any] = field(default_factory=dict)
    """Manifest fields of every row: ``lang``, ``tgt_lang``, ``instruction``, ``labels``,
    ``meta``."""

    def __post_init__(self) -> None:
        unknown = set(self.fields) - set(_ROW_FIELDS)
        if unknown:
            raise ValueError(f"fields: unknown {sorted(unknown)}; known: {list(_ROW_FIELDS)}")

    @classmethod
    def from_config(cls, task: str, spec: Mapping[str, Any]) -> HFSource:
        """The source of ``task`` from a config entry (plain or OmegaConf), checked key by key.

        Raises:
            ValueError: Unknown task or key (named, with the closest known key).
        """
        get_task(task)
        known = [f.name for f in fields(cls)]
        for key in spec:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"train_datasets.{task}: unknown key {key!r}{hint}")
        return cls(**{str(k): _plain(v) for k, v in spec.items()})


class HFShard:
    """One data file of a streamed dataset, read as a shard of ``task`` (a
    :class:`speechllm.data.streaming.StreamShard`)."""

    seconds = None
    """Unknown without reading the file."""

    def __init__(
        self, task: str, spec: HFSource, rows: Any, index: int, count: int, file: str
    ) -> None:
        self.task, self.spec, self.rows = task, spec, rows
        self.index, self.count, self.file = index, count, file

    @property
    def source(self) -> str:
        """Names the dataset and the file in errors."""
        return f"{self.spec.path} {self.file}"

    def durations(self) -> list[float]:
        """Every row's duration: the file is read, but only the audio headers are parsed."""
        return [0.0 if isinstance(c, DataError) else c.duration for c in self.read()]

    def read(self) -> Iterator[Cut | DataError]:
        """The file's rows in order, as cuts with encoded audio or the error of a bad row."""
        if get_worker_info() is not None:
            import fsspec.asyn

            fsspec.asyn.reset_lock()  # a lock the forked worker inherited held would hang it
        # .iter(), not iter(): inside a DataLoader worker iter() hands each worker its own
        # share of the files, and this lane must read the whole of its one file
        batches = self.rows.shard(self.count, self.index).iter(batch_size=ROWS_PER_READ)
        number = 0
        for batch in batches:
            for values in zip(*batch.values(), strict=True):
                number += 1
                yield self._cut(dict(zip(batch, values, strict=True)), number)

    def _cut(self, row: dict[str, Any], number: int) -> Cut | DataError:
        spec = self.spec
        utt = str(row[spec.id_column]) if spec.id_column else f"{self.file}:{number}"
        fields = dict(spec.fields)
        if spec.lang_column:
            fields["lang"] = row[spec.lang_column]
        try:
            return hf_cut(row, utt, self.task, spec.audio_column, spec.target_column, fields)
        except (AudioLoadingError, RuntimeError, ValueError, OSError) as error:
            return unreadable(error, utt)


def hf_shards(sources: Mapping[str, HFSource]) -> dict[str, list[HFShard]]:
    """Every task's data files as shards, in the dataset's file order.

    ``load_dataset(..., streaming=True)`` is ``load_dataset_builder(...)`` then
    ``as_streaming_dataset(split)``; calling the two here keeps the builder, whose config lists
    the files that name the shards.

    Raises:
        ValueError: A mapped column is missing from the dataset.
    """
    import datasets  # heavy; only this source needs it

    found = {}
    for task, spec in sorted(sources.items()):
        builder = datasets.load_dataset_builder(
            spec.path, spec.name, data_files=spec.data_files, revision=spec.revision
        )
        rows = builder.as_streaming_dataset(split=spec.split)
        columns = [spec.audio_column, spec.target_column, spec.id_column, spec.lang_column]
        missing = [c for c in columns if c and rows.features and c not in rows.features]
        if missing:
            raise ValueError(
                f"train_datasets.{task}: {spec.path} has no column(s) {missing}; "
                f"it has {sorted(rows.features)}"
            )
        rows = rows.cast_column(spec.audio_column, datasets.Audio(decode=False))
        count = rows.n_shards
        files = [str(f) for f in (builder.config.data_files or {}).get(spec.split, ())]
        if len(files) != count:  # a format whose shards are not whole files
            files = [f"shard {i + 1} of {count}" for i in range(count)]
        found[task] = [HFShard(task, spec, rows, i, count, f) for i, f in enumerate(files)]
    return found


def _plain(value: Any) -> Any:
    """Plain dicts and lists from OmegaConf containers (``datasets`` checks for them)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    return value
