"""Is keyword spotting a listening problem or a reading problem? SmolLM2 on gold transcripts.

Every speech LLM run so far answers "is the word X spoken?" at chance, even where its ASR is
good. This takes the audio out: SmolLM2-135M-Instruct reads each KWS line's gold transcript
where the audio would be (the recipe's chat format and instructions), zero-shot and then with
the recipe's LoRA (``conf/lora/smollm2.yaml``) trained on the training split's KWS lines alone,
scored on the test split's lines (yes against no, by the answer's first-token logit, as the
evaluation scores labels) every ``--eval-every`` steps: how many steps the LLM needs to learn
the lookup, beside how many the speech LLM's mixtures gave KWS::

    python recipes/synthetic_real/kws_probe.py                # ~10 min on 2 cores
    python recipes/synthetic_real/kws_probe.py --record       # -> results/kws_probe.json

A training loop of its own (a few lines) rather than ``speechllm-train``: the point is to
leave out everything speech, so no speech curriculum applies.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

from speechllm.data.manifest import read_manifest

HERE = Path(__file__).resolve().parent
RESULTS = "recipes/synthetic_real/results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", default="data/synthetic_small", help="the benchmark folder")
    p.add_argument("--steps", type=int, default=300, help="LoRA steps on KWS lines")
    p.add_argument("--batch", type=int, default=8, help="lines per step (the demo's batch)")
    p.add_argument("--lr", type=float, default=2e-3, help="the multitask stage's learning rate")
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--test-lines", type=int, default=120)
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--record", action="store_true", help=f"write {RESULTS}/kws_probe.json")
    return p.parse_args(argv)


def kws_lines(manifest: Path, limit: int | None = None) -> list[tuple[str, str, str]]:
    """(gold transcript, keyword, yes/no) for each KWS line whose recording has an ASR line."""
    entries = list(read_manifest(manifest))
    transcript = {e.audio: e.target for e in entries if e.task == "asr"}
    lines = [
        (transcript[e.audio], e.meta["keyword"], e.target)
        for e in entries
        if e.task == "kws" and e.audio in transcript
    ]
    return lines[:limit]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    import torch
    from hydra.utils import instantiate
    from tqdm import tqdm

    from speechllm._warnings import quiet_known_warnings
    from speechllm.config import compose
    from speechllm.data.instructions import load_templates

    quiet_known_warnings()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    cfg = compose(["experiment=synthetic_real"])
    llm = instantiate(cfg.llm, _convert_="all")
    llm.attach_adapter("default")
    llm.set_adapters(["default"], ["default"])
    template = cfg.prompt_template
    wordings = load_templates("kws")
    data = Path(args.data)
    train, test = kws_lines(data / "train.jsonl"), kws_lines(data / "test.jsonl", args.test_lines)

    def prompt(text: str, keyword: str, wording: str) -> str:
        user = template.format(audio=text, instruction=wording.format(keyword=keyword), summary="")
        chat = [{"role": "user", "content": user.strip()}]
        return llm.tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)

    answer_ids = {a: llm.tokenize(a)[0] for a in ("yes", "no")}

    def accuracy(split: str) -> float:
        """Test lines with the ``split`` wordings, in turn; yes vs no by first-token logit."""
        llm.eval()
        right = 0
        with torch.no_grad():
            for i, (text, keyword, target) in enumerate(test):
                options = wordings[split]
                ids = torch.tensor([llm.tokenize(prompt(text, keyword, options[i % len(options)]))])
                logits = llm(llm.embed(ids), torch.ones_like(ids))[0, -1]
                guess = max(answer_ids, key=lambda a: logits[answer_ids[a]].item())
                right += guess == target
        llm.train()
        return 100 * right / len(test)

    params = llm.adapter_parameters("default")
    optimizer = torch.optim.AdamW(params, lr=args.lr)
    eos = llm.eos_token_id
    curve = [{"step": 0, "seen": accuracy("seen"), "heldout": accuracy("heldout")}]
    print(curve[-1], flush=True)
    start = time.perf_counter()
    for step in tqdm(range(1, args.steps + 1), desc="LoRA steps on KWS lines"):
        rows = []
        for text, keyword, target in rng.sample(train, args.batch):
            ids = llm.tokenize(prompt(text, keyword, rng.choice(wordings["seen"])))
            answer = llm.tokenize(target) + [eos]
            rows.append((ids + answer, [-100] * len(ids) + answer))
        width = max(len(ids) for ids, _ in rows)
        ids = torch.tensor([r + [eos] * (width - len(r)) for r, _ in rows])
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r, _ in rows])
        labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in rows])
        logits = llm(llm.embed(ids), mask)
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100
        )
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step % args.eval_every == 0:
            curve.append({"step": step, "seen": accuracy("seen"), "heldout": accuracy("heldout")})
            tqdm.write(str({**curve[-1], "loss": round(loss.item(), 3)}))
    result = {
        "train_lines": len(train),
        "test_lines": len(test),
        "batch": args.batch,
        "lr": args.lr,
        "seconds": round(time.perf_counter() - start, 1),
        "curve": curve,
    }
    if args.record:
        from speechllm.provenance import provenance

        path = HERE / "results" / "kws_probe.json"
        path.write_text(json.dumps({**provenance("recipes/synthetic_real/kws_probe.py"),
                                    **result}, indent=2) + "\n")  # fmt: skip
        print(f"recorded {path}")
    return result


def table(result: dict[str, Any]) -> str:
    """The README's table: test accuracy after each evaluated step, with its provenance."""
    rows = ["| LoRA steps on KWS lines | seen wordings | held-out wordings |", "|---|---|---|"]
    rows += [f"| {c['step']} | {c['seen']:.1f} | {c['heldout']:.1f} |" for c in result["curve"]]
    return "\n".join(rows) + (
        f"\n\nAccuracy (%) on {result['test_lines']} test lines, batch {result['batch']}, "
        f"{result['train_lines']} training lines; measured {result['date']} on "
        f"{result['machine']} at commit {result['commit'][:10]} (`{result['command']}`; "
        f"`{RESULTS}/kws_probe.json`)."
    )


if __name__ == "__main__":
    main()
