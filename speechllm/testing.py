"""Tiny data for tests and benchmarks: tone recordings whose words a tiny model can learn.

Each word is a tone of its own pitch, so a loss that falls proves the audio reaches the LLM.
The examples come as batches in the data contract (:func:`tiny_batches`) or as FLAC files and a
manifest written by the data layer's own writer (:func:`write_tiny_manifest`). The tiny models
themselves are in :mod:`speechllm.models.tiny`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import soundfile as sf
import torch

from speechllm.data.manifest import write_manifest

SAMPLING_RATE = 16000
WORDS = ("red", "green", "blue", "black", "white", "yellow")
PARITY = ("even", "odd")


def tiny_examples(
    n: int,
    tasks: tuple[str, ...] = ("asr",),
    words: tuple[str, ...] = WORDS,
    sampling_rate: int = SAMPLING_RATE,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Examples whose targets are learnable from the audio: each word is a tone of its own pitch.

    Durations vary (0.4-1.0 s) so batches are padded. ``asr`` targets are the word; other tasks
    get the word's index parity (``even``/``odd``) as a stand-in label.
    """
    gen = torch.Generator().manual_seed(seed)
    examples = []
    for i in range(n):
        w = int(torch.randint(len(words), (1,), generator=gen))
        samples = int((float(torch.rand(1, generator=gen)) * 0.6 + 0.4) * sampling_rate)
        t = torch.arange(samples) / sampling_rate
        audio = torch.sin(2 * math.pi * (150.0 + 120.0 * w) * t)
        audio = 0.5 * audio + 0.02 * torch.randn(samples, generator=gen)
        task = tasks[int(torch.randint(len(tasks), (1,), generator=gen))]
        examples.append(
            {
                "id": f"tiny-{seed}-{i:05d}",
                "audio": audio,
                "task": task,
                "target": words[w] if task == "asr" else PARITY[w % 2],
                "instruction": f"do {task}",
            }
        )
    return examples


def tiny_batches(
    num_batches: int = 4,
    batch_size: int = 4,
    tasks: tuple[str, ...] = ("asr",),
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Fixed batches of :func:`tiny_examples` in the data contract (raw 16 kHz waveforms).

    A loss that falls on them with only the downsampler training proves that gradients reach
    it through the splice.
    """
    examples = tiny_examples(num_batches * batch_size, tasks, seed=seed)
    batches = []
    for k in range(num_batches):
        items = examples[k * batch_size : (k + 1) * batch_size]
        lengths = torch.tensor([len(x["audio"]) for x in items])
        audio = torch.zeros(len(items), int(lengths.max()))
        for b, x in enumerate(items):
            audio[b, : len(x["audio"])] = x["audio"]
        batches.append(
            {
                "audio": audio,
                "audio_lengths": lengths,
                "instructions": [x["instruction"] for x in items],
                "targets": [x["target"] for x in items],
                "tasks": [x["task"] for x in items],
                "ids": [x["id"] for x in items],
            }
        )
    return batches


def write_tiny_manifest(
    out_dir: str | Path, n: int, tasks: tuple[str, ...] = ("asr", "ic"), seed: int = 0
) -> Path:
    """:func:`tiny_examples` as FLAC files plus a JSONL manifest (training runs in tests),
    written by the data layer's :func:`~speechllm.data.manifest.write_manifest`."""
    out_dir = Path(out_dir)
    (out_dir / "wavs").mkdir(parents=True, exist_ok=True)
    manifest = out_dir / "manifest.jsonl"
    write_manifest(
        (_manifest_line(x, out_dir) for x in tiny_examples(n, tasks, seed=seed)), manifest
    )
    return manifest


def _manifest_line(example: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """The example's audio written as FLAC, and its manifest line."""
    audio = f"wavs/{example['id']}.flac"
    sf.write(out_dir / audio, example["audio"].numpy(), SAMPLING_RATE)
    line = {
        "id": example["id"],
        "audio": audio,
        "task": example["task"],
        "target": example["target"],
        "duration": len(example["audio"]) / SAMPLING_RATE,
    }
    if example["task"] != "asr":
        line["labels"] = list(PARITY)
    # fields some instruction templates need
    line.update(
        {"st": {"tgt_lang": "de"}, "kws": {"meta": {"keyword": "red"}}}.get(example["task"], {})
    )
    return line
