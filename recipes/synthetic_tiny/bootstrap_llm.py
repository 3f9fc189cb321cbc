"""Pretrain the demo's tiny Llama-style LLM on text forms of the TRAINING split, save it in
Hugging Face format (``LLM.from_pretrained`` loads it like any real checkpoint).

Each example is written exactly as stage 1 lays out a speech example (the experiment's
``prompt_template``, left-padded rows as ``SpeechLLM`` builds them), with the audio replaced
by a noisy copy of the transcript (characters dropped, doubled, substituted)::

    <s><audio>{noisy transcript}</audio> {instruction}: {target}</s>

so the frozen LLM already knows the prompt format and how to copy from its context; plain
training sentences (``<s>{sentence}</s>``) are mixed in. Instructions are drawn from the seen
templates with ``instruction_for``, as the data module draws them.

    python recipes/synthetic_tiny/bootstrap_llm.py --out runs/demo/llm
"""

from __future__ import annotations

import argparse
import random
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from common import Utterance, bootstrap_parser, noisy, pretrain, utterances

from speechllm.config import compose
from speechllm.data.instructions import instruction_for
from speechllm.data.manifest import ManifestEntry
from speechllm.evaluation.metrics import wer
from speechllm.models.layout import Row, RowLayout, next_token_loss
from speechllm.models.llm import LLM
from speechllm.models.prompt import PromptTemplate
from speechllm.models.tiny import tiny_llm


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = bootstrap_parser(__doc__, "HF model + tokenizer", steps=5000, hidden_size=64, lr=3e-3)
    p.add_argument("--intermediate-size", type=int, default=192)
    p.add_argument("--max-noise", type=float, default=0.1, help="largest context noise rate")
    p.add_argument("--plain-frac", type=float, default=0.05, help="share of plain sentences")
    p.add_argument(
        "--asr-frac",
        type=float,
        default=0.9,
        help="share of transcription lines at first (the rest: any task's line); copying is\n"
        "the skill stage 1 needs most and the slowest to learn",
    )
    p.add_argument(
        "--final-asr-frac",
        type=float,
        default=0.3,
        help="share of transcription lines at the end: the other tasks' text forms teach the\n"
        "frozen LLM which answer each instruction asks for (without them it copies for all)",
    )
    p.add_argument(
        "--mix-from",
        type=float,
        default=0.4,
        help="progress (0-1) from which the share falls linearly to --final-asr-frac",
    )
    p.add_argument(
        "--experiment",
        default="synthetic_tiny",
        help="conf/experiment/<name>.yaml whose prompt_template the text forms follow",
    )
    return p.parse_args(argv)


def experiment_template(experiment: str) -> PromptTemplate:
    """The prompt layout the experiment trains with: the text forms are written in it."""
    return PromptTemplate(compose([f"experiment={experiment}"]).prompt_template)


class TextForms:
    """An endless, seeded stream of ``(prompt, target)`` text examples from the training
    manifest, laid out by ``template`` with a noisy transcript standing in for the audio (the
    utterance embeddings, which text has no counterpart for, are left out)."""

    def __init__(
        self,
        manifest: Path,
        template: PromptTemplate,
        seed: int,
        max_noise: float,
        plain_frac: float,
        asr_frac: Callable[[float], float],
    ) -> None:
        groups = list(utterances(manifest).values())
        self.template = template
        self.sentences = [u.transcript for u in groups if u.transcript]
        self.lines = [(u, line) for u in groups for line in u.lines]
        self.asr_lines = [(u, line) for u, line in self.lines if line.task == "asr"]
        self.asr_frac = asr_frac
        self.progress = 0.0  # of the run, set by the training loop: drives ``asr_frac``
        self.rng = random.Random(seed)
        self.max_noise, self.plain_frac = max_noise, plain_frac

    def context(self, utt: Utterance, task: str) -> str:
        rng = self.rng
        if task == "sns" and utt.transcript is None:  # non-speech: nothing to read, or junk
            return "" if rng.random() < 0.5 else noisy(" " * rng.randint(1, 6), rng, 0.5)
        if utt.transcript is None:  # two-turn clips (sc): the sentences are not in the manifest
            text = f"{rng.choice(self.sentences)} {rng.choice(self.sentences)}"
        else:
            text = utt.transcript
        return noisy(text, rng, rng.uniform(0.0, self.max_noise))

    def prompt(self, utt: Utterance, line: ManifestEntry, instruction: str) -> str:
        return self.template.text(instruction, audio=self.context(utt, line.task))

    def __iter__(self) -> Iterator[tuple[str, str]]:
        rng = self.rng
        while True:
            if rng.random() < self.plain_frac:
                yield "", rng.choice(self.sentences)
                continue
            pool = self.asr_lines if rng.random() < self.asr_frac(self.progress) else self.lines
            utt, line = rng.choice(pool)
            yield self.prompt(utt, line, instruction_for(line, "seen", rng)), line.target


def length_batches(
    stream: Iterator[tuple[str, str]], llm: LLM, batch_size: int, pool: int = 16
) -> Iterator[list[Row]]:
    """Batches of similar length (less padding): sort a pool of examples, cut, shuffle."""
    rng, layout = random.Random(0), RowLayout(llm)
    while True:
        rows = sorted(
            (layout.plain_row(*next(stream)) for _ in range(batch_size * pool)),
            key=len,
        )
        chunks = [rows[k : k + batch_size] for k in range(0, len(rows), batch_size)]
        rng.shuffle(chunks)
        yield from chunks


def asr_share(start: float, final: float, mix_from: float) -> Callable[[float], float]:
    """Share of transcription lines at a given progress: ``start`` until ``mix_from``, then
    linearly down to ``final``."""

    def share(progress: float) -> float:
        if progress <= mix_from:
            return start
        return start + (final - start) * (progress - mix_from) / max(1e-9, 1.0 - mix_from)

    return share


def answer(llm: LLM, prompt: str, max_new_tokens: int) -> str:
    """Greedy answer to a text prompt, laid out as in training."""
    rows = RowLayout(llm).batch([RowLayout(llm).plain_row(prompt, None)])
    out = llm.generate(rows.embeds, rows.mask, max_new_tokens=max_new_tokens, do_sample=False)
    return llm.tokenizer.decode(out[0], skip_special_tokens=True).strip()


@torch.no_grad()
def copy_wer(
    llm: LLM, template: PromptTemplate, manifest: Path, noise: float, n: int = 50
) -> float:
    """WER of transcribing the dev split's first ``n`` sentences from a noisy text context: the
    copy skill stage 1 leans on (its ceiling, before any audio is involved)."""
    llm.eval()
    rng = random.Random(0)
    dev = [u.transcript for u in utterances(manifest).values() if u.transcript][:n]
    hyps = []
    for sentence in dev:
        prompt = template.text("Transcribe the audio.", audio=noisy(sentence, rng, noise))
        hyps.append(answer(llm, prompt, 2 * len(sentence) + 10))
    return wer(hyps, dev)


@torch.no_grad()
def task_match(llm: LLM, template: PromptTemplate, manifest: Path, n: int = 10) -> dict[str, float]:
    """Exact-match rate per task of text-form answers (clean context, seen instructions) on the
    dev split's first ``n`` lines of each task: whether the frozen LLM answers what each
    instruction asks for (paralinguistic tasks can only hit chance from text)."""
    llm.eval()
    forms = TextForms(manifest, template, 0, 0.0, 0.0, lambda _: 0.0)
    rng, by_task = random.Random(0), defaultdict(list)
    for utt, line in forms.lines:
        if len(by_task[line.task]) < n:
            by_task[line.task].append((utt, line))
    scores = {}
    for task, rows in sorted(by_task.items()):
        hits = 0
        for utt, line in rows:
            prompt = forms.prompt(utt, line, instruction_for(line, "seen", rng))
            hits += answer(llm, prompt, 2 * len(line.target) + 10) == line.target
        scores[task] = 100.0 * hits / len(rows)
    return scores


def build_llm(args: argparse.Namespace) -> LLM:
    """The tiny Llama at this run's size (every base weight trains), or the one ``--init``
    names."""
    if args.init:
        llm = LLM.from_pretrained(args.init)
    else:
        llm = tiny_llm(
            "llama",
            hidden_size=args.hidden_size,
            intermediate_size=args.intermediate_size,
            num_hidden_layers=args.layers,
            num_attention_heads=args.heads,
            num_key_value_heads=args.heads,
            max_position_embeddings=2048,
        )
    llm.model.requires_grad_(True)  # frozen under the speech LLM, pretrained here
    return llm


def main(argv: list[str] | None = None) -> Path:
    # setup
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    llm = build_llm(args)
    template = experiment_template(args.experiment)
    n_params = sum(p.numel() for p in llm.parameters())
    print(f"bootstrap LLM: {n_params / 1e6:.2f}M parameters, {args.steps} steps", flush=True)
    share = asr_share(args.asr_frac, args.final_asr_frac, args.mix_from)
    train = Path(args.data) / "train.jsonl"
    forms = TextForms(train, template, args.seed, args.max_noise, args.plain_frac, share)
    batches = length_batches(iter(forms), llm, args.batch_size)

    # train
    def batch_loss(progress: float) -> torch.Tensor:
        rows = next(batches)
        forms.progress = progress  # for the examples drawn from now on
        return next_token_loss(llm, RowLayout(llm).batch(rows))

    llm.train()
    pretrain("llm", list(llm.parameters()), batch_loss, args, 100, smoothing=0.98)

    # probe
    dev = Path(args.data) / "dev.jsonl"
    if dev.is_file():
        clean, rough = (copy_wer(llm, template, dev, noise) for noise in (0.0, 0.1))
        print(f"llm: dev copy WER {clean:.1f}% (clean context), {rough:.1f}% (10% noise)")
        scores = task_match(llm, template, dev)
        print(
            "llm: dev text-form exact match % per task: "
            + " ".join(f"{t} {v:.0f}" for t, v in scores.items())
        )

    # save
    out = Path(args.out)
    llm.save_base(out)
    print(f"llm: saved -> {out}", flush=True)
    return out


if __name__ == "__main__":
    main()
