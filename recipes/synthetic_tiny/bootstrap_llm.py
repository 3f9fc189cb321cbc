"""Pretrain the demo's tiny Llama-style LLM on text forms of the TRAINING split, save it in
Hugging Face format (``LLM.from_pretrained`` loads it like any real checkpoint).

Each example is written exactly as stage 1 lays out a speech example, with the audio replaced
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
from collections.abc import Callable
from pathlib import Path

import torch
from common import Budget, bootstrap_parser, noisy, utterances
from tqdm import tqdm
from transformers import LlamaConfig, LlamaForCausalLM

from speechllm.data.instructions import instruction_for
from speechllm.evaluation.metrics import wer
from speechllm.models.tiny import tiny_tokenizer

PROMPT = "<audio>{audio}</audio> {instruction}: {summary}"
"""Must equal the experiment's ``prompt_template``."""


def text_prompt(context: str, instruction: str) -> str:
    """A speech prompt's text form: the transcript stands in for the frame embeddings, and the
    utterance embeddings (``{summary}``), which text has no counterpart for, are left out."""
    return PROMPT.format(audio=context, instruction=instruction, summary="")


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
    p.add_argument("--init", default=None, help="continue from a folder this script wrote")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


class TextForms:
    """An endless, seeded stream of text examples built from the training manifest."""

    def __init__(
        self,
        manifest: Path,
        seed: int,
        max_noise: float,
        plain_frac: float,
        asr_frac: Callable[[float], float],
    ) -> None:
        groups = list(utterances(manifest).values())
        self.sentences = [u.transcript for u in groups if u.transcript]
        self.lines = [(u, line) for u in groups for line in u.lines]
        self.asr_lines = [(u, line) for u, line in self.lines if line.task == "asr"]
        self.asr_frac = asr_frac
        self.progress = 0.0  # of the run, set by the training loop: drives ``asr_frac``
        self.rng = random.Random(seed)
        self.max_noise, self.plain_frac = max_noise, plain_frac

    def context(self, utt, task: str) -> str:
        rng = self.rng
        if task == "sns" and utt.transcript is None:  # non-speech: nothing to read, or junk
            return "" if rng.random() < 0.5 else noisy(" " * rng.randint(1, 6), rng, 0.5)
        if utt.transcript is None:  # two-turn clips (sc): the sentences are not in the manifest
            text = f"{rng.choice(self.sentences)} {rng.choice(self.sentences)}"
        else:
            text = utt.transcript
        return noisy(text, rng, rng.uniform(0.0, self.max_noise))

    def __iter__(self):
        rng = self.rng
        while True:
            if rng.random() < self.plain_frac:
                yield "", rng.choice(self.sentences)
                continue
            asr_frac = self.asr_frac(self.progress)
            pool = self.asr_lines if rng.random() < asr_frac else self.lines
            utt, line = rng.choice(pool)
            instruction = instruction_for(line, "seen", rng)
            yield text_prompt(self.context(utt, line.task), instruction), line.target


def encode(tokenizer, prompt: str, target: str) -> tuple[list[int], int]:
    """Token ids as ``SpeechLLM`` builds them (bos, prompt, target, eos) and the prompt's length
    (bos included), whose tokens are not scored."""
    prompt_ids = [tokenizer.bos_token_id] + tokenizer(prompt, add_special_tokens=False)["input_ids"]
    target_ids = tokenizer(target, add_special_tokens=False)["input_ids"]
    return prompt_ids + target_ids + [tokenizer.eos_token_id], len(prompt_ids)


def length_batches(stream, tokenizer, batch_size: int, pool: int = 16):
    """Batches of similar length (less padding): sort a pool of examples, cut, shuffle."""
    rng = random.Random(0)
    while True:
        rows = sorted(
            (encode(tokenizer, *next(stream)) for _ in range(batch_size * pool)),
            key=lambda row: len(row[0]),
        )
        chunks = [rows[k : k + batch_size] for k in range(0, len(rows), batch_size)]
        rng.shuffle(chunks)
        yield from chunks


def batch_tensors(rows: list[tuple[list[int], int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and labels; only target tokens (and eos) are scored: the noisy
    context and the instruction are given, the answer is what the LLM must learn to produce."""
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad)
    labels = torch.full((len(rows), width), -100)
    for b, (row, n_prompt) in enumerate(rows):
        ids[b, : len(row)] = torch.tensor(row)
        labels[b, n_prompt : len(row)] = ids[b, n_prompt : len(row)]
    return ids, labels


def asr_share(start: float, final: float, mix_from: float) -> Callable[[float], float]:
    """Share of transcription lines at a given progress: ``start`` until ``mix_from``, then
    linearly down to ``final``."""

    def share(progress: float) -> float:
        if progress <= mix_from:
            return start
        return start + (final - start) * (progress - mix_from) / max(1e-9, 1.0 - mix_from)

    return share


def answer(model, tokenizer, prompt: str, max_new_tokens: int) -> str:
    """Greedy answer to a text prompt laid out as :func:`encode` lays it out."""
    ids, n_prompt = encode(tokenizer, prompt, "")
    out = model.generate(
        torch.tensor([ids[:n_prompt]]),
        max_new_tokens=max_new_tokens,
        do_sample=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return tokenizer.decode(out[0, n_prompt:], skip_special_tokens=True).strip()


@torch.no_grad()
def copy_wer(model, tokenizer, manifest: Path, noise: float, n: int = 50) -> float:
    """WER of transcribing the dev split's first ``n`` sentences from a noisy text context: the
    copy skill stage 1 leans on (its ceiling, before any audio is involved)."""
    model.eval()
    rng = random.Random(0)
    dev = [u.transcript for u in utterances(manifest).values() if u.transcript][:n]
    hyps = []
    for sentence in dev:
        prompt = text_prompt(noisy(sentence, rng, noise), "Transcribe the audio.")
        hyps.append(answer(model, tokenizer, prompt, 2 * len(sentence) + 10))
    return wer(hyps, dev)


@torch.no_grad()
def task_match(model, tokenizer, manifest: Path, n: int = 10) -> dict[str, float]:
    """Exact-match rate per task of text-form answers (clean context, seen instructions) on the
    dev split's first ``n`` lines of each task: whether the frozen LLM answers what each
    instruction asks for (paralinguistic tasks can only hit chance from text)."""
    model.eval()
    forms = TextForms(manifest, 0, 0.0, 0.0, lambda _: 0.0)
    rng, by_task = random.Random(0), defaultdict(list)
    for utt, line in forms.lines:
        if len(by_task[line.task]) < n:
            by_task[line.task].append((utt, line))
    scores = {}
    for task, rows in sorted(by_task.items()):
        hits = 0
        for utt, line in rows:
            instruction = instruction_for(line, "seen", rng)
            prompt = text_prompt(forms.context(utt, task), instruction)
            hits += answer(model, tokenizer, prompt, 2 * len(line.target) + 10) == line.target
        scores[task] = 100.0 * hits / len(rows)
    return scores


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    tokenizer = tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=args.hidden_size,
        intermediate_size=args.intermediate_size,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.heads,
        max_position_embeddings=2048,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM.from_pretrained(args.init) if args.init else LlamaForCausalLM(config)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"bootstrap LLM: {n_params / 1e6:.2f}M parameters, {args.steps} steps", flush=True)
    share = asr_share(args.asr_frac, args.final_asr_frac, args.mix_from)
    forms = TextForms(
        Path(args.data) / "train.jsonl", args.seed, args.max_noise, args.plain_frac, share
    )
    batches = length_batches(iter(forms), tokenizer, args.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    budget = Budget(args.steps, args.max_minutes)
    model.train()
    smooth = None
    bar = tqdm(range(args.steps), desc="llm pretrain", unit="step", mininterval=5)
    for step in bar:
        ids, labels = batch_tensors(next(batches), tokenizer.pad_token_id)
        loss = model(
            input_ids=ids, attention_mask=(ids != tokenizer.pad_token_id).long(), labels=labels
        ).loss
        budget.set_lr(opt, args.lr, step)
        forms.progress = budget.progress(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        smooth = loss.item() if smooth is None else 0.98 * smooth + 0.02 * loss.item()
        bar.set_postfix(loss=f"{smooth:.3f}", refresh=False)
        if step % 100 == 0:
            print(f"llm step {step} loss {smooth:.4f} ({budget.elapsed:.0f} CPU s)", flush=True)
        if budget.exhausted(step):
            print(f"llm: stopping after {step + 1} steps", flush=True)
            break
    dev = Path(args.data) / "dev.jsonl"
    if dev.is_file():
        clean, rough = (copy_wer(model, tokenizer, dev, noise) for noise in (0.0, 0.1))
        print(f"llm: dev copy WER {clean:.1f}% (clean context), {rough:.1f}% (10% noise)")
        scores = " ".join(f"{t} {v:.0f}" for t, v in task_match(model, tokenizer, dev).items())
        print(f"llm: dev text-form exact match % per task: {scores}")
    out = Path(args.out)
    model.eval().save_pretrained(out)
    tokenizer.save_pretrained(out)
    print(f"llm: final loss {smooth:.4f}, {budget.elapsed:.0f} CPU s -> {out}", flush=True)
    return out


if __name__ == "__main__":
    main()
