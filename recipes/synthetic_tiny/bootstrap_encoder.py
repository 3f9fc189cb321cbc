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
from pathlib import Path

import torch
from common import CTC_CHARS, Budget, bootstrap_parser, label_sets, utterances
from torch import nn
from tqdm import tqdm
from transformers import WhisperConfig, WhisperFeatureExtractor
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from speechllm.data.audio import load_audio
from speechllm.data.features import Featurizer
from speechllm.evaluation.metrics import cer

HEADS = "pretraining_heads.pt"
"""CTC and utterance heads, saved beside the encoder so ``--init`` can continue training."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = bootstrap_parser(
        __doc__, "HF encoder + feature extractor", steps=2500, hidden_size=96, lr=5e-3
    )
    p.add_argument("--window-seconds", type=int, default=1, help="encoder window (Whisper chunk)")
    p.add_argument("--aux-layer", type=int, default=2, help="hidden state for utterance heads")
    p.add_argument("--aux-weight", type=float, default=0.1)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--spec-augment", action="store_true", help="mask frequency bands and times")
    p.add_argument("--init", default=None, help="continue from a folder this script wrote")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


class Pretrainer(nn.Module):
    """The encoder plus its pretraining heads (only the encoder is saved)."""

    def __init__(self, encoder: WhisperEncoder, labels: dict[str, list[str]], aux_layer: int):
        super().__init__()
        d = encoder.config.d_model
        self.encoder, self.aux_layer = encoder, aux_layer
        self.ctc = nn.Linear(d, len(CTC_CHARS) + 1)
        self.heads = nn.ModuleDict({t: nn.Linear(d, len(ls)) for t, ls in labels.items()})

    def forward(self, windows: torch.Tensor, n_win: int) -> tuple[torch.Tensor, ...]:
        """``windows`` ``(B * n_win, mels, W)`` -> top and aux hidden states ``(B, T, D)``."""
        out = self.encoder(windows, output_hidden_states=True)
        batch = windows.shape[0] // n_win

        def stitch(h: torch.Tensor) -> torch.Tensor:
            return h.reshape(batch, n_win * h.shape[1], h.shape[2])

        return stitch(out.last_hidden_state), stitch(out.hidden_states[self.aux_layer])


def spec_augment(x: torch.Tensor, rng: random.Random) -> torch.Tensor:
    """Two frequency masks and a few short time masks (in place on a copy)."""
    x = x.clone()
    mels, frames = x.shape
    for _ in range(2):
        f = rng.randint(0, 10)
        f0 = rng.randint(0, mels - f)
        x[f0 : f0 + f] = x.mean()
    for _ in range(max(1, frames // 200)):
        t = rng.randint(0, 10)
        t0 = rng.randint(0, max(0, frames - t))
        x[:, t0 : t0 + t] = x.mean()
    return x


def to_windows(x: torch.Tensor, window: int) -> tuple[torch.Tensor, int]:
    """``(B, mels, n_win * window)`` log-mels -> ``(B * n_win, mels, window)`` encoder inputs."""
    batch, mels, frames = x.shape
    n_win = frames // window
    return x.reshape(batch, mels, n_win, window).permute(0, 2, 1, 3).flatten(0, 1), n_win


def greedy_ctc(logits: torch.Tensor) -> str:
    """Best path, repeats merged, blanks dropped."""
    chars, prev = [], 0
    for i in logits.argmax(-1).tolist():
        if i not in (prev, 0):
            chars.append(CTC_CHARS[i - 1])
        prev = i
    return "".join(chars)


@torch.no_grad()
def dev_cer(model: Pretrainer, featurizer: Featurizer, manifest: Path, window: int) -> float:
    """Character error rate of greedy CTC on the dev split's first 100 transcripts: whether the
    encoder hears words (the speech LLM cannot read what the encoder never learned)."""
    model.eval()
    dev = [u for u in utterances(manifest).values() if u.transcript][:100]
    hyps = []
    for utt in dev:
        feats, length = featurizer(load_audio(utt.audio, featurizer.sampling_rate))
        top, _ = model(*to_windows(feats[None], window))
        hyps.append(greedy_ctc(model.ctc(top[0, : (length + 1) // 2])))
    return cer(hyps, [u.transcript for u in dev])


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    groups = list(utterances(Path(args.data) / "train.jsonl").values())
    labels = label_sets(groups)
    extractor = WhisperFeatureExtractor(feature_size=80, chunk_length=args.window_seconds)
    featurizer = Featurizer(extractor)
    window = extractor.nb_max_frames  # mel frames per encoder window (100 per second)

    items = []
    for utt in tqdm(groups, desc="log-mel features", unit="utt", mininterval=5):
        feats, length = featurizer(load_audio(utt.audio, featurizer.sampling_rate))
        chars = [CTC_CHARS.index(c) + 1 for c in (utt.transcript or "") if c in CTC_CHARS]
        has_ctc = utt.transcript is not None or utt.labels.get("sns") == "non-speech"
        targets = {t: labels[t].index(v) for t, v in utt.labels.items() if t in labels}
        items.append((feats, length, chars if has_ctc else None, targets))

    config = WhisperConfig(
        num_mel_bins=80,
        d_model=args.hidden_size,
        encoder_layers=args.layers,
        encoder_attention_heads=args.heads,
        encoder_ffn_dim=4 * args.hidden_size,
        decoder_layers=1,
        decoder_attention_heads=args.heads,
        decoder_ffn_dim=4 * args.hidden_size,
        max_source_positions=window // 2,
        dropout=args.dropout,
        vocab_size=len(CTC_CHARS) + 1,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
    )
    encoder = WhisperEncoder.from_pretrained(args.init) if args.init else WhisperEncoder(config)
    model = Pretrainer(encoder, labels, args.aux_layer)
    heads = Path(args.init or "") / HEADS
    if args.init and heads.is_file():
        state = torch.load(heads, weights_only=True)
        model.load_state_dict(state, strict=False)
    n_params = sum(p.numel() for p in encoder.parameters())
    print(
        f"bootstrap encoder: {n_params / 1e6:.2f}M parameters, {len(items)} utterances, "
        f"heads {sorted(labels)}, {args.steps} steps",
        flush=True,
    )

    # batches of similar window counts, reshuffled each epoch
    by_windows: dict[int, list[int]] = {}
    for i, (feats, *_) in enumerate(items):
        by_windows.setdefault(feats.shape[-1] // window, []).append(i)

    def batches():
        while True:
            chunks = []
            for idx in by_windows.values():
                idx = idx[:]
                rng.shuffle(idx)
                chunks += [
                    idx[k : k + args.batch_size] for k in range(0, len(idx), args.batch_size)
                ]
            rng.shuffle(chunks)
            yield from chunks

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    ctc_loss = nn.CTCLoss(blank=0, zero_infinity=True)
    model.train()
    budget, smooth = Budget(args.steps, args.max_minutes), None
    stream = batches()
    bar = tqdm(range(args.steps), desc="encoder pretrain", unit="step", mininterval=5)
    for step in bar:
        chosen = [items[i] for i in next(stream)]
        x = torch.stack([spec_augment(f, rng) if args.spec_augment else f for f, *_ in chosen])
        top, aux = model(*to_windows(x, window))
        frames = torch.tensor([(length + 1) // 2 for _, length, *_ in chosen])
        mask = torch.arange(top.shape[1])[None, :] < frames[:, None]
        loss = top.new_zeros(())
        ctc_rows = [b for b, item in enumerate(chosen) if item[2] is not None]
        if ctc_rows:
            logp = model.ctc(top[ctc_rows]).log_softmax(-1).transpose(0, 1)
            tgts = [torch.tensor(chosen[b][2], dtype=torch.long) for b in ctc_rows]
            loss = loss + ctc_loss(
                logp,
                torch.cat(tgts) if tgts else torch.zeros(0, dtype=torch.long),
                frames[ctc_rows],
                torch.tensor([len(t) for t in tgts]),
            )
        pooled = (aux * mask[..., None]).sum(1) / frames[:, None]
        for task, head in model.heads.items():
            rows = [b for b, item in enumerate(chosen) if task in item[3]]
            if rows:
                y = torch.tensor([chosen[b][3][task] for b in rows])
                loss = loss + args.aux_weight * nn.functional.cross_entropy(head(pooled[rows]), y)
        budget.set_lr(opt, args.lr, step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        smooth = loss.item() if smooth is None else 0.95 * smooth + 0.05 * loss.item()
        bar.set_postfix(loss=f"{smooth:.3f}", refresh=False)
        if step % 50 == 0:
            print(f"encoder step {step} loss {smooth:.4f} ({budget.elapsed:.0f} CPU s)", flush=True)
        if budget.exhausted(step):
            print(f"encoder: stopping after {step + 1} steps", flush=True)
            break
    dev = Path(args.data) / "dev.jsonl"
    if dev.is_file():
        print(f"encoder: dev CER {dev_cer(model, featurizer, dev, window):.1f}% (greedy CTC)")
    out = Path(args.out)
    encoder.eval().save_pretrained(out)
    extractor.save_pretrained(out)
    heads = {k: v for k, v in model.state_dict().items() if not k.startswith("encoder.")}
    torch.save(heads, out / HEADS)  # for --init; the speech LLM never reads it
    print(f"encoder: final loss {smooth:.4f}, {budget.elapsed:.0f} CPU s -> {out}", flush=True)
    return out


if __name__ == "__main__":
    main()
