"""Pretrain the demo's tiny audio encoder on the TRAINING audio, save it in Hugging Face format
(a ``WhisperEncoder`` + ``WhisperFeatureExtractor``; ``AudioEncoder.from_pretrained`` loads it).

Log-mel input, 20 ms frames. Losses, all on training labels only::

    log-mel ─► WhisperEncoder ─┬─ layer L (top) ──────► linear ─► character CTC (transcripts)
                               └─ layer --aux-layer ─► masked mean ─► linear heads:
                                                        accent, gender, style, speakers, speech

The utterance-level heads make paralinguistic information linearly present in a middle layer,
where the speech LLM's learned layer mix can pick it up.

    python recipes/synthetic_tiny/bootstrap_encoder.py --out runs/demo/encoder
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from common import CTC_CHARS, Utterance, bootstrap_parser, label_sets, pretrain, utterances
from torch import nn
from tqdm import tqdm

from speechllm.data.audio import SpecAugment, load_audio
from speechllm.data.features import Featurizer
from speechllm.evaluation.metrics import cer
from speechllm.models.encoder import AudioEncoder
from speechllm.models.tiny import tiny_whisper_encoder

HEADS = "pretraining_heads.pt"
"""CTC and utterance heads, saved beside the encoder so ``--init`` can continue training."""

SPEC_AUGMENT = SpecAugment(freq_masks=2, freq_width=10, time_masks=1, time_width=10)
"""Two frequency bands and one short time span masked per clip (``--spec-augment``)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = bootstrap_parser(
        __doc__, "HF encoder + feature extractor", steps=2500, hidden_size=96, lr=5e-3
    )
    p.add_argument("--window-seconds", type=int, default=1, help="encoder window (Whisper chunk)")
    p.add_argument("--aux-layer", type=int, default=2, help="hidden state for utterance heads")
    p.add_argument("--aux-weight", type=float, default=0.1)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--spec-augment", action="store_true", help="mask frequency bands and times")
    return p.parse_args(argv)


@dataclass
class Item:
    """One utterance's log-mels and training labels."""

    features: torch.Tensor
    """``(mels, frames)``, padded to whole encoder windows."""
    length: int
    """Real (unpadded) frames."""
    chars: list[int] | None
    """CTC targets (CTC_CHARS indices + 1); empty for non-speech, None when unknown."""
    labels: dict[str, int]
    """Label index per paralinguistic task."""


def featurize(
    groups: list[Utterance], featurizer: Featurizer, labels: dict[str, list[str]]
) -> list[Item]:
    items = []
    for utt in tqdm(groups, desc="log-mel features", unit="utt", mininterval=5):
        features, length = featurizer(load_audio(utt.audio, featurizer.sampling_rate))
        known = utt.transcript is not None or utt.labels.get("sns") == "non-speech"
        chars = [CTC_CHARS.index(c) + 1 for c in (utt.transcript or "") if c in CTC_CHARS]
        targets = {t: labels[t].index(v) for t, v in utt.labels.items() if t in labels}
        items.append(Item(features, length, chars if known else None, targets))
    return items


class Pretrainer(nn.Module):
    """The encoder plus its pretraining heads (only the encoder is saved)."""

    def __init__(self, encoder: AudioEncoder, labels: dict[str, list[str]], aux_layer: int):
        super().__init__()
        d = encoder.hidden_size
        self.encoder, self.aux_layer = encoder, aux_layer
        # frozen under the speech LLM, learning here (but for Whisper's fixed sinusoids)
        encoder.model.requires_grad_(True).embed_positions.requires_grad_(False)
        self.ctc = nn.Linear(d, len(CTC_CHARS) + 1)
        self.heads = nn.ModuleDict({t: nn.Linear(d, len(ls)) for t, ls in labels.items()})

    def train(self, mode: bool = True) -> Pretrainer:
        super().train(mode)
        self.encoder.model.train(mode)  # AudioEncoder pins it to eval; --dropout needs train
        return self

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Top and ``aux_layer`` hidden states ``(B, T, D)`` (windows stitched by the
        encoder, with gradients) and each item's number of frames ``(B,)``."""
        # AudioEncoder.forward runs this under no_grad (its model is frozen there)
        hidden = self.encoder.hidden_states(features, lengths)
        return hidden[-1], hidden[self.aux_layer], self.encoder.output_lengths(lengths)

    def loss(self, items: list[Item], features: torch.Tensor, aux_weight: float) -> torch.Tensor:
        """Character CTC on the top layer plus ``aux_weight`` x each utterance head's
        cross-entropy on the masked mean of the aux layer (items without a label skip it)."""
        top, aux, frames = self(features, torch.tensor([item.length for item in items]))
        loss = top.new_zeros(())
        ctc_rows = [b for b, item in enumerate(items) if item.chars is not None]
        if ctc_rows:
            targets = [torch.tensor(items[b].chars, dtype=torch.long) for b in ctc_rows]
            loss = loss + nn.functional.ctc_loss(
                self.ctc(top[ctc_rows]).log_softmax(-1).transpose(0, 1),
                torch.cat(targets),
                frames[ctc_rows],
                torch.tensor([len(t) for t in targets]),
                zero_infinity=True,
            )
        mask = torch.arange(aux.shape[1])[None, :] < frames[:, None]
        pooled = (aux * mask[..., None]).sum(1) / frames[:, None]
        for task, head in self.heads.items():
            rows = [b for b, item in enumerate(items) if task in item.labels]
            if rows:
                y = torch.tensor([items[b].labels[task] for b in rows])
                loss = loss + aux_weight * nn.functional.cross_entropy(head(pooled[rows]), y)
        return loss


def batches(
    items: list[Item], batch_size: int, window: int, rng: random.Random
) -> Iterator[list[Item]]:
    """Endless batches of items with equal window counts, reshuffled each epoch."""
    by_windows: dict[int, list[int]] = {}
    for i, item in enumerate(items):
        by_windows.setdefault(item.features.shape[-1] // window, []).append(i)
    while True:
        chunks = []
        for idx in by_windows.values():
            idx = idx[:]
            rng.shuffle(idx)
            chunks += [idx[k : k + batch_size] for k in range(0, len(idx), batch_size)]
        rng.shuffle(chunks)
        yield from ([items[i] for i in chunk] for chunk in chunks)


def stacked(items: list[Item], augment_seed: int | None) -> torch.Tensor:
    """The batch's log-mels, each masked by SpecAugment (seeded by batch and position, so a run
    is reproducible) unless ``augment_seed`` is None."""
    if augment_seed is None:
        return torch.stack([item.features for item in items])
    return torch.stack(
        [
            SPEC_AUGMENT(item.features, item.length, augment_seed * 1_000_003 + b)
            for b, item in enumerate(items)
        ]
    )


def greedy_ctc(logits: torch.Tensor) -> str:
    """Best path, repeats merged, blanks dropped."""
    chars, prev = [], 0
    for i in logits.argmax(-1).tolist():
        if i not in (prev, 0):
            chars.append(CTC_CHARS[i - 1])
        prev = i
    return "".join(chars)


@torch.no_grad()
def dev_cer(model: Pretrainer, featurizer: Featurizer, manifest: Path) -> float:
    """Character error rate of greedy CTC on the dev split's first 100 transcripts: whether the
    encoder hears words (the speech LLM cannot read what the encoder never learned)."""
    model.eval()
    dev = [u for u in utterances(manifest).values() if u.transcript][:100]
    hyps = []
    for utt in dev:
        features, length = featurizer(load_audio(utt.audio, featurizer.sampling_rate))
        top, _, frames = model(features[None], torch.tensor([length]))
        hyps.append(greedy_ctc(model.ctc(top[0, : frames[0]])))
    return cer(hyps, [u.transcript for u in dev])


def build_encoder(args: argparse.Namespace) -> AudioEncoder:
    """The tiny Whisper encoder at this run's size, or the one ``--init`` names.

    Pretrained on whole (padded) windows, as the demo's recorded figures were measured; the
    demo's config keeps ``encoder.real_length: false`` to match (docs/encoder.md).
    """
    if args.init:
        return AudioEncoder.from_pretrained(args.init, last_layer_only=True, real_length=False)
    h = args.hidden_size
    return tiny_whisper_encoder(
        args.window_seconds,
        last_layer_only=True,
        d_model=h,
        encoder_layers=args.layers,
        encoder_attention_heads=args.heads,
        encoder_ffn_dim=4 * h,
        dropout=args.dropout,
    )


def main(argv: list[str] | None = None) -> Path:
    # setup
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    groups = list(utterances(Path(args.data) / "train.jsonl").values())
    labels = label_sets(groups)
    encoder = build_encoder(args)
    featurizer = Featurizer.for_encoder(encoder)
    items = featurize(groups, featurizer, labels)
    model = Pretrainer(encoder, labels, args.aux_layer)
    if args.init and (Path(args.init) / HEADS).is_file():
        model.load_state_dict(torch.load(Path(args.init) / HEADS, weights_only=True), strict=False)
    n_params = sum(p.numel() for p in encoder.parameters())
    print(
        f"bootstrap encoder: {n_params / 1e6:.2f}M parameters, {len(items)} utterances, "
        f"heads {sorted(labels)}, {args.steps} steps",
        flush=True,
    )

    # train
    stream = enumerate(batches(items, args.batch_size, encoder.window_frames, rng))

    def batch_loss(progress: float) -> torch.Tensor:
        k, chosen = next(stream)
        seed = args.seed * 1_000_003 + k if args.spec_augment else None
        return model.loss(chosen, stacked(chosen, seed), args.aux_weight)

    model.train()
    pretrain("encoder", list(model.parameters()), batch_loss, args, 50, smoothing=0.95)

    # probe
    dev = Path(args.data) / "dev.jsonl"
    if dev.is_file():
        print(f"encoder: dev CER {dev_cer(model, featurizer, dev):.1f}% (greedy CTC)")

    # save
    out = Path(args.out)
    encoder.save_pretrained(out)
    heads = {k: v for k, v in model.state_dict().items() if not k.startswith("encoder.")}
    torch.save(heads, out / HEADS)  # for --init; the speech LLM never reads it
    print(f"encoder: saved -> {out}", flush=True)
    return out


if __name__ == "__main__":
    main()
