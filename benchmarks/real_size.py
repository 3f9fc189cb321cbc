"""Where a training step's time goes at real sizes: random weights, real architectures.

Each setup (encoder + LLM + precision) runs in its own process, so peak RSS is its own: the
bases are built from the literal configs below (nothing is downloaded), LoRA (r=8, q/v) is
attached, and a few AdamW steps on the downsampler, layer weights and LoRA are timed per
component, then one greedy ``generate``::

    step = encoder (frozen, + layer mix) -> downsampler -> splice -> LLM forward -> backward
           -> optimizer          ("other": the loss, Python glue; step minus the parts)

Times are the process's CPU seconds (all threads) on CPU: the VM is shared, and CPU time is
what its load does not inflate (on an idle 2-vCPU VM wall time is roughly half); wall seconds
on a GPU. ``--encoder-lengths`` times Whisper-large-v3's encoder on a 5 s and a 30 s clip with
``real_length`` on and off, and reports how far real-length hidden states are from the
padded ones (tiny and real-size random models). ``--splice`` times ``SpeechLLM.lay_out`` at
batch 64 with long prompts against the LLM's forward per item. The input is speech-like
(voiced harmonics, syllable envelope, noise; no corpus is shipped). Runs on a GPU when one is
visible. ``--toy`` shrinks every setup (widths, depths) for the slow test.

Usage::

    nice -n 10 python benchmarks/real_size.py --setups whisper-small+qwen2.5-0.5b:fp32 \\
        whisper-small+qwen2.5-0.5b:bf16 whisper-large-v3+llama-3.2-1b:bf16 --steps 2
    nice -n 10 python benchmarks/real_size.py --encoder-lengths --splice --setups
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    Qwen2Config,
    Qwen2ForCausalLM,
    T5Config,
    T5ForConditionalGeneration,
    Wav2Vec2FeatureExtractor,
    WavLMConfig,
    WavLMModel,
    WhisperConfig,
    WhisperFeatureExtractor,
)
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from speechllm.data.features import Featurizer, collate_features
from speechllm.models.downsampler import ConvDownsampler
from speechllm.models.encoder import AudioEncoder
from speechllm.models.llm import LLM
from speechllm.models.speech_llm import AudioEmbeddings, SpeechLLM
from speechllm.models.tiny import tiny_tokenizer
from speechllm.provenance import provenance

RATE = 16000
TOY = dict(width=64, layers=2, heads=2, vocab=512)
COMPONENTS = ("encoder", "downsampler", "splice", "llm_forward", "backward", "optimizer")
DEFAULT_SETUPS = (
    "whisper-small+qwen2.5-0.5b:fp32",
    "whisper-small+qwen2.5-0.5b:bf16",
    "whisper-large-v3+llama-3.2-1b:bf16",
)


# ---------------------------------------------------------------- the real configs, as literals
def whisper_small(toy: bool = False) -> WhisperConfig:
    """openai/whisper-small's encoder: 12 x 768, 80 mel bins, 1,500 positions (30 s)."""
    return _whisper(80, 768, 12, 12, 3072, toy)


def whisper_large_v3(toy: bool = False) -> WhisperConfig:
    """openai/whisper-large-v3's encoder: 32 x 1280, 128 mel bins, 1,500 positions (30 s)."""
    return _whisper(128, 1280, 32, 20, 5120, toy)


def _whisper(mels: int, width: int, layers: int, heads: int, ffn: int, toy: bool) -> Any:
    if toy:
        width, layers, heads, ffn = TOY["width"], TOY["layers"], TOY["heads"], 2 * TOY["width"]
    return WhisperConfig(
        num_mel_bins=mels,
        d_model=width,
        encoder_layers=layers,
        encoder_attention_heads=heads,
        encoder_ffn_dim=ffn,
        max_source_positions=1500,
    )


def qwen2_5_0_5b(toy: bool = False) -> Qwen2Config:
    """Qwen/Qwen2.5-0.5B: 24 x 896, GQA 14/2 heads, SwiGLU 4864, 151,936 tokens, tied."""
    size = dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14)
    size.update(num_key_value_heads=2, intermediate_size=4864)
    return Qwen2Config(
        vocab_size=TOY["vocab"] if toy else 151936,
        tie_word_embeddings=True,
        rms_norm_eps=1e-6,
        **_shrunk(size, toy),
    )


def llama3_2_1b(toy: bool = False) -> LlamaConfig:
    """meta-llama/Llama-3.2-1B: 16 x 2048, GQA 32/8 heads of 64, SwiGLU 8192, 128,256 tokens."""
    size = dict(hidden_size=2048, num_hidden_layers=16, num_attention_heads=32)
    size.update(num_key_value_heads=8, intermediate_size=8192, head_dim=64)
    return LlamaConfig(
        vocab_size=TOY["vocab"] if toy else 128256,
        tie_word_embeddings=True,
        rms_norm_eps=1e-5,
        **_shrunk(size, toy),
    )


def flan_t5_large(toy: bool = False) -> T5Config:
    """google/flan-t5-large: 24 + 24 layers x 1024, 16 heads of 64, gated-GELU 2816."""
    size = dict(d_model=1024, num_layers=24, num_decoder_layers=24, num_heads=16, d_ff=2816)
    if toy:
        size = dict(d_model=64, num_layers=2, num_decoder_layers=2, num_heads=2, d_ff=128)
    return T5Config(
        vocab_size=TOY["vocab"] if toy else 32128,
        d_kv=64,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
        decoder_start_token_id=0,
        **size,
    )


def _shrunk(size: dict[str, int], toy: bool) -> dict[str, int]:
    if not toy:
        return size
    width, layers, heads = TOY["width"], TOY["layers"], TOY["heads"]
    return dict(
        hidden_size=width,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=1,
        intermediate_size=2 * width,
        head_dim=width // heads,
    )


def wavlm_large(toy: bool = False) -> WavLMConfig:
    """microsoft/wavlm-large: 24 x 1024, 16 heads, FFN 4096, the 7-layer conv front end (one
    frame per 20 ms of raw 16 kHz audio, no padding to a window)."""
    width, layers, heads = (TOY["width"], TOY["layers"], TOY["heads"]) if toy else (1024, 24, 16)
    return WavLMConfig(
        hidden_size=width,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * width,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        conv_bias=True,
    )


ENCODERS = {
    "whisper-small": whisper_small,
    "whisper-large-v3": whisper_large_v3,
    "wavlm-large": wavlm_large,
}
LLMS: dict[str, tuple[Callable[[bool], Any], type[PreTrainedModel], list[str]]] = {
    "qwen2.5-0.5b": (qwen2_5_0_5b, Qwen2ForCausalLM, ["q_proj", "v_proj"]),
    "llama-3.2-1b": (llama3_2_1b, LlamaForCausalLM, ["q_proj", "v_proj"]),
    "flan-t5-large": (flan_t5_large, T5ForConditionalGeneration, ["q", "v"]),
}


def build_encoder(name: str, toy: bool, real_length: bool = True) -> AudioEncoder:
    config = ENCODERS[name](toy)
    if isinstance(config, WavLMConfig):
        extractor = Wav2Vec2FeatureExtractor(return_attention_mask=True, do_normalize=True)
        return AudioEncoder(WavLMModel(config), extractor)
    extractor = WhisperFeatureExtractor(feature_size=config.num_mel_bins)
    return AudioEncoder(WhisperEncoder(config), extractor, real_length=real_length)


def build_model(encoder: str, llm: str, toy: bool) -> SpeechLLM:
    """Random weights in fp32 (bf16 runs under autocast) with LoRA r=8 on q/v."""
    config_fn, model_cls, targets = LLMS[llm]
    tokenizer = tiny_tokenizer()  # ids fit any vocabulary; real tokenizers cost the same here
    config = config_fn(toy)
    config.pad_token_id, config.eos_token_id = tokenizer.pad_token_id, tokenizer.eos_token_id
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=targets)
    base = LLM(model_cls(config).eval(), tokenizer, {"default": lora})
    model = SpeechLLM(build_encoder(encoder, toy), partial(ConvDownsampler), base)
    model.set_trainable(["downsampler", "layer_weights", "lora"])
    return model


# ---------------------------------------------------------------- inputs
def speech_like(seconds: float, seed: int) -> torch.Tensor:
    """Voiced harmonics on a gliding pitch under a ~4 Hz syllable envelope, plus noise."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * RATE)) / RATE
    f0 = 120 + 40 * torch.sin(2 * math.pi * 0.7 * t + seed)
    phase = 2 * math.pi * torch.cumsum(f0, 0) / RATE
    voiced = sum(torch.sin(k * phase) / k for k in range(1, 12))
    envelope = torch.sin(math.pi * 4.0 * t).abs() ** 2
    return 0.1 * voiced * envelope + 0.01 * torch.randn(t.shape, generator=gen)


def batch_of(model: SpeechLLM, seconds: list[float], device: torch.device) -> dict[str, Any]:
    featurizer = Featurizer.for_encoder(model.encoder)
    audio, lengths = collate_features(
        [featurizer(speech_like(s, i)) for i, s in enumerate(seconds)]
    )
    n = len(seconds)
    return {
        "audio": audio.to(device),
        "audio_lengths": lengths.to(device),
        "instructions": ["Transcribe the audio, then name the speaker's intent."] * n,
        "targets": ["turn the kitchen lights off at half past seven tonight please"] * n,
    }


# ---------------------------------------------------------------- timing
class Timers:
    """Seconds spent inside wrapped callables, by component name: this process's CPU seconds
    (all threads) on CPU, which a shared machine's load does not inflate as it does wall time;
    wall seconds on a GPU."""

    def __init__(self, sync: Callable[[], None], clock: Callable[[], float]) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.sync = sync
        self.clock = clock

    def wrap(self, owner: Any, attr: str, name: str) -> None:
        inner = getattr(owner, attr)

        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.timing(name):
                return inner(*args, **kwargs)

        setattr(owner, attr, timed)

    @contextlib.contextmanager
    def timing(self, name: str) -> Iterator[None]:
        self.sync()
        start = self.clock()
        yield
        self.sync()
        self.seconds[name] += self.clock() - start


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_setup(spec: str, steps: int, seconds: list[float], toy: bool) -> dict[str, Any]:
    """One setup ``encoder+llm:precision``: per-component seconds per step, generate, memory."""
    pair, precision = spec.split(":")
    encoder, llm = pair.split("+")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    clock = time.perf_counter if device.type == "cuda" else time.process_time
    torch.manual_seed(0)
    start = time.perf_counter()
    model = build_model(encoder, llm, toy).to(device)
    build_s = time.perf_counter() - start
    params = [p for p in model.parameters() if p.requires_grad]
    trainable = sum(p.numel() for p in params)
    frozen = sum(p.numel() for p in model.parameters()) - trainable
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    autocast = torch.autocast(device.type, torch.bfloat16, enabled=precision == "bf16")
    timers = Timers(sync, clock)
    timers.wrap(model.encoder, "forward", "encoder")
    timers.wrap(model.downsampler, "forward", "downsampler")
    timers.wrap(model.layout, "batch", "splice")
    timers.wrap(model.llm, "forward", "llm_forward")
    batch = batch_of(model, seconds, device)
    model.train()
    per_step = []
    for _ in range(steps):
        timers.seconds.clear()
        with timers.timing("step"):
            with autocast:
                loss = model(**batch).loss
            with timers.timing("backward"):
                loss.backward()
            with timers.timing("optimizer"):
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
        per_step.append(dict(timers.seconds))
    measured = per_step[1:] or per_step  # the first step pays one-off allocations
    mean = {k: statistics.mean(s[k] for s in measured) for k in (*COMPONENTS, "step")}
    mean["other"] = mean["step"] - sum(mean[k] for k in COMPONENTS)
    model.eval()
    timers.seconds.clear()
    with timers.timing("generate"), autocast:
        model.generate(batch["audio"], batch["audio_lengths"], batch["instructions"], 8)
    return {
        "setup": spec,
        "device": device.type,
        "clock": "wall" if device.type == "cuda" else "process CPU seconds",
        "batch": len(seconds),
        "audio_seconds": seconds,
        "steps_timed": len(measured),
        "seconds_per_step": mean,
        "share": {k: mean[k] / mean["step"] for k in (*COMPONENTS, "other")},
        "generate_8_tokens_s": timers.seconds["generate"],
        "generate_encoder_s": timers.seconds["encoder"],
        "build_s": build_s,
        "peak_rss_mb": peak_rss_mb(),
        "trainable_params": trainable,
        "frozen_params": frozen,
        "final_loss": float(loss),
    }


# ---------------------------------------------------------------- Whisper on real lengths
def encoder_lengths(
    toy: bool, clips: tuple[float, ...] = (5.0, 30.0), repeats: int = 2
) -> dict[str, Any]:
    """Whisper-large-v3's encoder time per clip with ``real_length`` on and off, and how far
    real-length hidden states are from the padded ones (on the real frames)."""
    torch.manual_seed(0)
    real = build_encoder("whisper-large-v3", toy, real_length=True).eval()
    padded = build_encoder("whisper-large-v3", toy, real_length=False).eval()
    padded.load_state_dict(real.state_dict())
    with torch.no_grad():  # warm up: the first pass pays one-off allocations
        real.hidden_states(torch.zeros(1, real.model.config.num_mel_bins, 200), torch.tensor([200]))
    times: dict[str, float] = {}
    difference: dict[str, dict[str, float]] = {}
    for seconds in clips:
        out = {}
        for name, encoder in (("real_length", real), ("padded", padded)):
            featurizer = Featurizer.for_encoder(encoder)
            audio, lengths = collate_features([featurizer(speech_like(seconds, 0))])
            runs = []
            with torch.no_grad():
                for _ in range(repeats):  # CPU seconds, the best of a few: the machine is shared
                    start = time.process_time()
                    hidden = torch.stack(encoder.hidden_states(audio, lengths))
                    runs.append(time.process_time() - start)
            times[f"{seconds:g}s_{name}"] = min(runs)
            n = int(encoder.output_lengths(lengths)[0])
            out[name] = hidden[:, 0, :n]
        difference[f"{seconds:g}s"] = _difference(out["real_length"], out["padded"])
    short, full = clips
    goal = times[f"{full:g}s_real_length"] * short / full
    return {
        "encoder": "whisper-large-v3" + (" (toy)" if toy else ""),
        "seconds": times,
        "short_over_proportional": times[f"{short:g}s_real_length"] / goal,
        "hidden_state_difference": difference,
    }


def _difference(real: torch.Tensor, padded: torch.Tensor) -> dict[str, float]:
    """Relative L2 error and mean cosine per frame, for the top layer and the layers' mean (the
    layer mix at initialisation)."""
    out = {}
    for name, a, b in (("top", real[-1], padded[-1]), ("mean", real.mean(0), padded.mean(0))):
        out[f"{name}_relative_l2"] = float((a - b).norm() / b.norm())
        out[f"{name}_cosine"] = float(torch.nn.functional.cosine_similarity(a, b, -1).mean())
    return out


# ---------------------------------------------------------------- the splice
def splice_cost(toy: bool, batch: int = 64, prompt_chars: int = 600) -> dict[str, Any]:
    """``lay_out`` per item at ``batch`` with long prompts, against the LLM forward per item
    (Qwen2.5-0.5B, measured at batch 2 on the same rows: its cost is linear in the batch)."""
    model = build_model("whisper-small", "qwen2.5-0.5b", toy).eval()
    gen = torch.Generator().manual_seed(0)
    audio = torch.randn(batch, 100, model.llm.hidden_size, generator=gen) * 0.02
    lengths = torch.full((batch,), 100)
    instructions = [
        f"item {b}: " + "describe the speaker and transcribe. " * 20 for b in range(batch)
    ]
    instructions = [text[:prompt_chars] for text in instructions]
    targets = [model.layout.target_ids("turn the kitchen lights off")] * batch
    with torch.no_grad():
        model.lay_out(
            AudioEmbeddings(audio[:2], lengths[:2]), instructions[:2], targets[:2]
        )  # warm up
        start = time.process_time()
        embeds, mask, _ = model.lay_out(AudioEmbeddings(audio, lengths), instructions, targets)
        splice_s = time.process_time() - start
        start = time.process_time()
        model.llm(embeds[:2], mask[:2], logits_to_keep=8)  # a short target's logits
        forward_s = (time.process_time() - start) / 2
    return {
        "batch": batch,
        "tokens_per_row": int(mask.sum(-1).max()),
        "splice_s_per_item": splice_s / batch,
        "llm_forward_s_per_item": forward_s,
        "splice_over_forward": splice_s / batch / forward_s,
    }


# ---------------------------------------------------------------- report
def table(results: list[dict[str, Any]]) -> str:
    head = ["setup", *COMPONENTS, "other", "step s", "gen s", "RSS GB", "train M", "frozen M"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        s, share = r["seconds_per_step"], r["share"]
        parts = [f"{s[k]:.2f} ({100 * share[k]:.0f}%)" for k in (*COMPONENTS, "other")]
        lines.append(
            f"| {r['setup']} | "
            + " | ".join(parts)
            + f" | {s['step']:.2f} | {r['generate_8_tokens_s']:.2f} | "
            f"{r['peak_rss_mb'] / 1024:.1f} | {r['trainable_params'] / 1e6:.1f} | "
            f"{r['frozen_params'] / 1e6:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--setups", nargs="*", default=list(DEFAULT_SETUPS), help="enc+llm:prec")
    parser.add_argument("--steps", type=int, default=2, help="training steps per setup")
    parser.add_argument("--seconds", type=float, nargs="+", default=[5.0, 5.0], help="clips")
    parser.add_argument("--encoder-lengths", action="store_true", help="5 s vs 30 s, on/off")
    parser.add_argument("--splice", action="store_true", help="splice vs LLM forward")
    parser.add_argument("--toy", action="store_true", help="shrunk widths and depths")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a child process runs one setup
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/real_size.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(torch.get_num_threads())
    if args.one:
        print(json.dumps(run_setup(args.one, args.steps, args.seconds, args.toy)))
        return {}
    results: dict[str, Any] = {
        **provenance("benchmarks/real_size.py", sys.argv[1:] if argv is None else argv),
        "threads": torch.get_num_threads(),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "torch": torch.__version__,
        "toy": args.toy,
        "setups": [],
    }
    for spec in args.setups:  # each in a fresh process: peak RSS is a process-lifetime peak
        command = [sys.executable, __file__, "--one", spec, "--steps", str(args.steps)]
        command += ["--seconds", *map(str, args.seconds)] + (["--toy"] if args.toy else [])
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        results["setups"].append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(table(results["setups"][-1:]), flush=True)
    if args.setups:
        print(table(results["setups"]))
    if args.encoder_lengths:
        results["encoder_lengths"] = [
            encoder_lengths(True),
            *([] if args.toy else [encoder_lengths(False, repeats=1)]),
        ]
        print(json.dumps(results["encoder_lengths"], indent=1))
    if args.splice:
        results["splice"] = splice_cost(args.toy)
        print(json.dumps(results["splice"], indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
