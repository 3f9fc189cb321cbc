"""ASR training lines on sentences outside the benchmark's grammar, written by SmolLM2 itself.

The synthetic benchmark's sentences come from a closed grammar of a few hundred words, so a
speech LLM trained on them learns to answer with grammar sentences whatever it hears: every
run scores above 90 WER on the open-vocabulary check (``open_vocab.py``). This builds ASR
training lines whose sentences are open English, spoken by the benchmark's training voices::

    python recipes/synthetic_real/varied_asr.py --out data/varied_asr            # ~1 min
    python recipes/synthetic_real/varied_asr.py --generate N                     # rewrite the text

and a run adds them beside the benchmark's training manifest
(``data.train_manifests=[data/synthetic_small/train.jsonl,data/varied_asr/varied_asr.jsonl]``):
they are ``asr`` lines, so the mixture's ``asr`` weight draws them with the benchmark's. The
README ("Catching up, with open English" and "Open English from the first step") says what they
did to a continued run and to the demo's recipe: both transcribed worse.

Where the sentences come from: no text corpus can be downloaded here, so
``varied_asr_sentences.txt`` was written by the base LLM, SmolLM2-135M-Instruct
(``--generate``): asked for "one short, simple sentence that uses the word X", X drawn from
whole English words of its own tokenizer's vocabulary, sampled (temperature 0.8, top-p 0.95,
seeded), kept when the first sentence of the reply is 5-16 words of plain letters, does not
talk about itself or the request, and is not already kept. The open-vocabulary check's
sentences were never read to choose any of this; a generated sentence equal to one of them
would be dropped (none was), so the check stays unheard.

Voices are the benchmark's training voices (``split_variants`` with the benchmark's seed),
drawn as the benchmark draws them (:func:`~speechllm.synth.voices.sample_voice`), so these lines
add words, not speakers: the test split's voices and the open-vocabulary check's stay unheard.
Lines carry no ``instruction``, so the data module prompts them with the seen ASR wordings.
"""

from __future__ import annotations

import argparse
import random
import re
from pathlib import Path

from speechllm.data.manifest import write_manifest
from speechllm.synth.grammar import Sentence
from speechllm.synth.plan import Item, Turn
from speechllm.synth.render import write_item
from speechllm.synth.voices import STYLES, jitter, sample_voice, split_variants

HERE = Path(__file__).resolve().parent
SENTENCES = HERE / "varied_asr_sentences.txt"
MANIFEST = "varied_asr.jsonl"
BENCHMARK_SEED = 0  # data/synthetic_small's seed: its training voices
HELDOUT_VARIANTS = 2  # ... and its held-out variants per group

REQUEST = (
    'Write one short, simple sentence that uses the word "{word}". Reply with the sentence only.'
)
_PLAIN = re.compile(r"[A-Z][A-Za-z ,']*[a-z][.!?]")
_ABOUT_ITSELF = re.compile(
    r"\b(sentence|word|words|example|assist|help you|AI|I'm here|here's|here is)\b", re.IGNORECASE
)


def target(sentence: str) -> str:
    """The ``asr`` target: lower case, words only, as the benchmark's transcripts are."""
    return " ".join(re.findall(r"[a-z']+", sentence.lower())).replace(" '", " ").strip("'")


def keep(reply: str) -> str | None:
    """The reply's first sentence if it is plain English of 5-16 words about something else
    than the request, else None."""
    first = re.split(r"(?<=[.!?])\s", reply.strip().strip('"').strip())[0].strip().strip('"')
    if not _PLAIN.fullmatch(first) or _ABOUT_ITSELF.search(first):
        return None
    return first if 5 <= len(first.split()) <= 16 else None


def seed_words(vocab: dict[str, int]) -> list[str]:
    """Whole lower-case English words (5-10 letters) of a byte-level BPE vocabulary: a
    space-prefixed token whose capitalised form is a token too (fragments rarely are)."""
    return sorted(
        t[1:]
        for t in vocab
        if t.startswith("Ġ")
        and re.fullmatch(r"[a-z]{5,10}", t[1:])
        and f"Ġ{t[1:].title()}" in vocab
    )


def generate(n: int, seed: int = 0, batch: int = 48, exclude: set[str] | None = None) -> list[str]:
    """``n`` sentences written by SmolLM2-135M-Instruct (see the module docstring)."""
    import torch
    from hydra.utils import instantiate
    from tqdm import tqdm

    from speechllm._warnings import quiet_known_warnings
    from speechllm.config import compose

    quiet_known_warnings()
    torch.manual_seed(seed)
    rng = random.Random(seed)
    llm = instantiate(compose(["experiment=synthetic_real"]).llm, _convert_="all")
    tok = llm.tokenizer
    tok.padding_side = "left"
    words = seed_words(tok.get_vocab())
    exclude = {target(s) for s in exclude or ()}
    kept: dict[str, str] = {}
    with tqdm(total=n, desc="sentences by SmolLM2") as bar, torch.no_grad():
        while len(kept) < n:
            chats = [
                [{"role": "user", "content": REQUEST.format(word=rng.choice(words))}]
                for _ in range(batch)
            ]
            prompts = [
                tok.apply_chat_template(c, add_generation_prompt=True, tokenize=False)
                for c in chats
            ]
            enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
            out = llm.base_model.generate(
                **enc,
                max_new_tokens=32,
                do_sample=True,
                temperature=0.8,
                top_p=0.95,
                pad_token_id=tok.eos_token_id,
            )
            replies = tok.batch_decode(out[:, enc.input_ids.shape[1] :], skip_special_tokens=True)
            for reply in replies:
                sentence = keep(reply)
                key = sentence and target(sentence)
                if key and key not in kept and key not in exclude and len(kept) < n:
                    kept[key] = sentence
                    bar.update()
    return list(kept.values())


def build(out: Path, seed: int = 0, path: Path = SENTENCES) -> Path:
    """Render each sentence of ``path`` with a training voice into ``out`` (finished audio
    files are reused, about a second per hundred new ones) and write the manifest; returns its
    path."""
    rng = random.Random(seed)
    variants = split_variants(BENCHMARK_SEED, HELDOUT_VARIANTS)["train"]
    records = []
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for i, text in enumerate(lines):
        voice = sample_voice(variants, rng)
        style = rng.choice(sorted(STYLES))
        kind = "question" if text.endswith("?") else "statement"
        turn = Turn(Sentence(target(text), kind), voice, style, jitter(style, rng))
        item = Item(f"varied-{i:05d}", (turn,), ())
        duration, _ = write_item(item, str(out), seed)
        records.append(
            {
                "id": f"{item.id}-asr",
                "audio": item.audio,
                "duration": round(duration, 3),
                "task": "asr",
                "target": target(text),
                "lang": "en",
                "meta": {"voice": voice.name, "style": style, "set": "varied_asr"},
            }
        )
    manifest = Path(out) / MANIFEST
    write_manifest(records, manifest)
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/varied_asr"), help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="draws voices, styles and seed words")
    parser.add_argument(
        "--generate", type=int, metavar="N", help=f"rewrite {SENTENCES.name} with N new sentences"
    )
    args = parser.parse_args(argv)
    if args.generate:
        from open_vocab import load_sentences

        sentences = generate(args.generate, args.seed, exclude={t for t, _ in load_sentences()})
        SENTENCES.write_text("\n".join(sentences) + "\n", encoding="utf-8")
        print(f"wrote {SENTENCES}: {len(sentences)} sentences")
    manifest = build(args.out, args.seed)
    print(f"wrote {manifest}")


if __name__ == "__main__":
    main()
