"""Text-only instruction data for the keep-the-LLM arms: questions answered by the base LLM itself.

Mixing text items into training (``data.text_manifests``) is meant to keep the LLM answering
text as it did before its adapters were trained, so the answers are the base SmolLM2's own
greedy ones (a self-distillation set, as Ultravox builds its continuation data from the text
model's answers). The questions are general knowledge of the kind the text-skills check asks,
none of them one of its questions (``tests/recipes/test_keep_llm.py`` checks that)::

    python recipes/synthetic_real/text_instruct.py   # -> recipes/synthetic_real/text_instruct.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "text_instruct.jsonl"

CAPITALS = ("Italy", "Spain", "Germany", "Japan", "Egypt", "Canada", "Greece", "Portugal")
COLOURS = ("grass", "snow", "a ripe banana", "coal", "a tomato", "milk", "an orange", "the sea")
LEGS = ("dog", "bird", "cat", "ant", "horse", "duck", "cow", "beetle")
OPPOSITES = ("hot", "big", "fast", "happy", "up", "old", "light", "open", "early", "wet")
NUMBERS = ((3, 4), (5, 2), (6, 3), (1, 8), (7, 2), (4, 5), (9, 1), (2, 6))
TOPICS = ("the sun", "rain", "a library", "trains", "breakfast", "the moon", "music", "winter")


def questions() -> list[str]:
    """The fixed question set, in a stable order."""
    return [
        *(f"What is the capital of {c}?" for c in CAPITALS),
        *(f"What colour is {thing}?" for thing in COLOURS),
        *(f"How many legs does a {animal} have?" for animal in LEGS),
        *(f"What is the opposite of {word}?" for word in OPPOSITES),
        *(f"What is {a} plus {b}?" for a, b in NUMBERS),
        *(f"Write one short sentence about {topic}." for topic in TOPICS),
        *(f"Give me a word that rhymes with {word}." for word in ("cat", "tree", "ring", "day")),
        *(f"How many hours are in {span}?" for span in ("a day", "two days", "half a day")),
        *(f"Spell the word {word} backwards." for word in ("cat", "dog", "sun")),
        "Name three fruits.",
        "Name a musical instrument.",
        "What do cows drink?",
        "What is the largest ocean?",
        "What season comes after winter?",
        "Which animal is known as the king of the jungle?",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--llm", default=None, help="LLM folder or .gguf (default: SmolLM2)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    args = parser.parse_args(argv)

    import torch
    from tqdm import tqdm

    from speechllm.models.fetch import checkpoint_path
    from speechllm.models.layout import RowLayout
    from speechllm.models.llm import LLM
    from speechllm.models.prompt import PromptTemplate

    llm = LLM.from_pretrained(args.llm or str(checkpoint_path("smollm2")))
    template = PromptTemplate.from_chat(llm.tokenizer, "{audio}{instruction}")
    layout = RowLayout(llm, template)
    lines = []
    with torch.inference_mode():
        for i, question in enumerate(tqdm(questions(), desc="base answers")):
            rows = layout.batch([layout.text_row(question)])
            out = llm.generate(
                rows.embeds, rows.mask, max_new_tokens=args.max_new_tokens, do_sample=False
            )
            answer = llm.tokenizer.decode(out[0], skip_special_tokens=True).strip()
            lines.append({"id": f"text-{i:03d}", "instruction": question, "target": answer})
    args.out.write_text("".join(json.dumps(line) + "\n" for line in lines))
    print(f"{len(lines)} questions and the base LLM's answers -> {args.out}")


if __name__ == "__main__":
    main()
