"""The model card (an export's ``README.md``), written from the training config and eval outputs.

The front matter is ``huggingface_hub``'s ``ModelCardData``, so the Hub renders and indexes
it (license, both bases as ``base_model``, ``library_name``, ``pipeline_tag``, tags, datasets,
languages). The body says what a user of a speech LLM asks first: which bases it runs on and
whether they are referenced by id or copied into the repo, which tasks it learned in which
curriculum, how it scored (``speechllm-eval``'s own tables, quoted from its ``report.md``),
and how to run it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCardData

EVAL_SECTIONS = ("Per task", "Seen vs held-out instructions")
"""The ``report.md`` sections quoted in the card (its figures stay in the eval folder)."""


@dataclass
class CardInfo:
    """What the card says beyond the model itself: its provenance and Hub metadata."""

    repo_id: str | None = None
    """The repo the usage snippet loads (default: the export folder's path)."""
    training: dict[str, Any] | None = None
    """The run's resolved config (its ``hparams.yaml``): tasks, curriculum, data."""
    evaluation: Path | None = None
    """A ``speechllm-eval`` output folder; its ``report.md`` tables go into the card."""
    license: str = "other"
    language: list[str] = field(default_factory=lambda: ["en"])
    datasets: list[str] = field(default_factory=list)
    """Hub dataset ids it was trained on (local manifests are listed in the body)."""


@dataclass(frozen=True)
class Base:
    """One frozen base as the export holds it."""

    part: str
    """``encoder`` or ``llm``."""
    name: str
    """Its hub id or path, or the builder that made it."""
    copied: str | None
    """Why its weights are inside the export (``None``: referenced by ``name``)."""

    @property
    def hub_id(self) -> str | None:
        """``name`` if it is a Hub repo id (not a local path or a builder)."""
        looks_like_id = self.name.count("/") == 1 and not self.name.startswith((".", "/", "~"))
        return self.name if looks_like_id and not Path(self.name).exists() else None


def model_card(
    info: CardInfo,
    bases: list[Base],
    prompt_template: str,
    adapters: list[str],
    trainable_params: int,
    where: str,
    tasks: list[str] | None = None,
) -> str:
    """The card's text: YAML front matter, then the body.

    Args:
        info: provenance and metadata.
        bases: the encoder and the LLM.
        prompt_template: where the audio and the instruction go.
        adapters: the LoRA adapters shipped in ``adapters/`` (none when merged).
        trainable_params: parameters in ``trainable.safetensors``.
        where: what the usage snippet loads (a repo id or the export's path).
        tasks: the tasks it answers (default: those of the training run's curriculum).
    """
    speech = any(base.part == "encoder" for base in bases)
    training = info.training or {}
    stages = (training.get("curriculum") or {}).get("stages") or {}
    if tasks is None:
        tasks = sorted({task for stage in stages.values() for task in stage.get("tasks") or {}})
    referenced = all(base.copied is None for base in bases)
    data = ModelCardData(
        license=info.license,
        base_model=[base.hub_id for base in bases if base.hub_id] or None,
        base_model_relation="adapter" if referenced else None,
        library_name="speechllm",
        pipeline_tag="audio-text-to-text" if speech else "text-classification",
        tags=[
            "speechllm",
            *(["speech-llm", "audio"] if speech else ["text-classification"]),
            *(["lora"] if adapters else []),
        ],  # fmt: skip
        datasets=info.datasets or None,
        language=info.language,
    )
    sections = [
        f"# {info.repo_id or 'speechllm export'}",
        "A speech LLM trained with speechllm: a frozen audio encoder, a learned mix of its "
        "layers, a convolutional downsampler and a frozen LLM with LoRA adapters."
        if speech
        else "A text classifier trained with speechllm: classification heads on the pooled "
        "states of a frozen LLM with LoRA adapters.",
        "## Bases",
        _bases(bases),
        "## Weights in this repo",
        f"- `trainable.safetensors`: {'downsampler, layer weights and ' if speech else ''}heads, "
        f"{trainable_params:,} parameters\n"
        f"- LoRA adapters: {', '.join(f'`adapters/{a}`' for a in adapters) or 'none'}"
        + (f"\n- prompt template: `{json.dumps(prompt_template)}`" if speech else ""),
        "## Tasks",
        ", ".join(f"`{task}`" for task in tasks) or "not recorded (exported without its run)",
    ]
    if stages:
        sections += ["## Curriculum", _curriculum(stages, training)]
    manifests = (training.get("data") or {}).get("train_manifests")
    if manifests:
        listed = "\n".join(f"- `{Path(m).parent.name}/{Path(m).name}`" for m in manifests)
        sections += ["## Training data", listed]
    sections += ["## Evaluation", _evaluation(info.evaluation)]
    sections += ["## Usage", _usage(where) if speech else _text_usage(where)]
    return f"---\n{data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n"


def _bases(bases: list[Base]) -> str:
    rows = ["| part | base | in this repo |", "| --- | --- | --- |"]
    for base in bases:
        held = f"copied into `{base.part}/`: {base.copied}" if base.copied else "referenced"
        rows.append(f"| {base.part} | `{base.name}` | {held} |")
    note = (
        "Referenced bases are loaded by their own id when this model loads (their licenses "
        "and access terms apply); copied ones ship here."
    )
    return "\n".join(rows) + "\n\n" + note


def _curriculum(stages: dict[str, dict[str, Any]], training: dict[str, Any]) -> str:
    max_steps = (training.get("trainer") or {}).get("max_steps")
    rows = ["| stage | steps | trainable | tasks (weight) |", "| --- | --- | --- | --- |"]
    for name, stage in stages.items():
        steps = stage.get("steps") or f"to the end (max_steps={max_steps})"
        tasks = ", ".join(f"{t} ({w})" for t, w in (stage.get("tasks") or {}).items())
        rows.append(f"| {name} | {steps} | {', '.join(stage.get('trainable') or [])} | {tasks} |")
    return "\n".join(rows)


def _evaluation(folder: Path | None) -> str:
    report = Path(folder) / "report.md" if folder else None
    if report is None or not report.is_file():
        return "No evaluation report: run `speechllm-eval` and export again with `--eval DIR`."
    text = report.read_text()
    chunks = text.split("\n## ")
    kept = [f"From `speechllm-eval`. {chunks[0].partition(chr(10))[2].strip()}"]
    for chunk in chunks[1:]:
        title, _, body = chunk.partition("\n")
        if title.strip() in EVAL_SECTIONS:
            kept.append(f"### {title.strip()}\n\n{body.strip()}")
    return "\n\n".join(kept)


def _text_usage(where: str) -> str:
    return (
        "```python\n"
        "from speechllm.inference import classify_text, load_model\n\n"
        f'model = load_model("{where}")\n'
        'print(classify_text(model, "CHIEF COMPLAINT: ..."))  # task -> label -> probability\n'
        "```\n\n"
        f'or `speechllm-infer --model {where} --text "CHIEF COMPLAINT: ..."`.'
    )


def _usage(where: str) -> str:
    return (
        "```python\n"
        "# pip install speechllm\n"
        "from speechllm.inference import answer, load_model\n\n"
        f'model = load_model("{where}")\n'
        'print(answer(model, "clip.wav", "Transcribe the audio."))\n'
        "```\n\n"
        f'or `speechllm-infer clip.wav "Transcribe the audio." --model {where}`.'
    )
