"""The task registry: what each task's target looks like and how it is scored.

Adding a task is one call, e.g. in this file or in user code before training::

    register_task(Task("lid", "spoken language identification", metric="accuracy"))

plus an instruction file ``speechllm/data/instructions/lid.yaml`` with ``seen:`` and
``heldout:`` template lists (see ``speechllm/data/instructions/__init__.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

METRICS = ("wer", "bleu", "accuracy", "slu_f1", "f1", "uar", "auroc", "none")


@dataclass(frozen=True)
class Task:
    """One task the model can be trained and evaluated on."""

    name: str
    """Short identifier used in manifests, batches and metric names (``val/<name>/<metric>``)."""
    description: str
    """One line for humans (CLI summaries, docs)."""
    metric: str
    """Evaluation metric name, one of ``METRICS``."""
    labels: tuple[str, ...] | None = None
    """Default label set for classification targets; a manifest ``labels`` field overrides it."""
    target_format: str = "free text"
    """How the target string is written, so importers and scorers agree."""

    def __post_init__(self) -> None:
        if not self.name or not self.name.isidentifier():
            raise ValueError(f"task name must be a non-empty identifier, got {self.name!r}")
        if self.metric not in METRICS:
            raise ValueError(f"task {self.name!r}: unknown metric {self.metric!r}, use {METRICS}")
        if self.labels is not None and len(self.labels) < 2:
            raise ValueError(f"task {self.name!r}: a label set needs at least two labels")


TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Add a task to the registry.

    Args:
        task: The task; its name must not be registered yet.

    Returns:
        The task, so the call can be used as an expression.
    """
    if task.name in TASKS:
        raise ValueError(f"task {task.name!r} is already registered")
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    """Look up a registered task, with the known names in the error."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known tasks: {sorted(TASKS)}") from None


_CLASS = "one label from the label set"
for _task in (
    Task("asr", "speech recognition", "wer", target_format="verbatim transcript"),
    Task("st", "speech translation", "bleu", target_format="translation into tgt_lang"),
    Task("ic", "intent classification", "accuracy", target_format="intent label, e.g. alarm_set"),
    Task(
        "sf",
        "slot filling",
        "slu_f1",
        target_format="`slot=value; slot=value`, values lower-case, in order of appearance",
    ),
    Task("kws", "keyword spotting", "accuracy", ("yes", "no"), "yes or no: is meta.keyword said"),
    Task("kwe", "keyword extraction", "f1", target_format="`kw1, kw2` in order of appearance"),
    Task("er", "emotion recognition", "uar", target_format=_CLASS),
    Task("asc", "sentiment classification", "uar", target_format=_CLASS),
    Task(
        "sc",
        "speaker counting",
        "uar",
        target_format="number of speakers as a word (one, two, ...)",
    ),
    Task("ac", "accent classification", "uar", target_format=_CLASS),
    Task("sns", "speech / non-speech", "uar", ("speech", "non-speech"), _CLASS),
    Task("gr", "speaker gender", "uar", ("female", "male"), _CLASS),
    Task(
        "symptoms",
        "symptom classes a clinical dictation mentions (multi-label)",
        "auroc",
        target_format="`label, label` from the label set, in label-set order; `none` if empty",
    ),
    Task("department", "clinical department a dictation belongs to", "uar", target_format=_CLASS),
    Task("instruct", "free-form instruction following", "none", target_format="free text"),
):
    register_task(_task)
