"""The task registry: what each task's target looks like, how it is answered and scored.

A task owns its scoring here and nowhere else: evaluation, the training callback, the data
check and the report all read it. Adding a task is one call, e.g. in user code before
training or evaluation::

    register_task(Task("lid", "spoken language identification", "label", labels=("en", "de")))

plus an instruction file ``speechllm/data/instructions/lid.yaml`` with ``seen:`` and
``heldout:`` template lists (see ``speechllm/data/instructions/__init__.py``).

How a task is answered follows from its scoring and the model::

    the model has a classification head for the task ─► read the head (probabilities)
    scoring "label" (one label per item)             ─► decoding constrained to the label set
    anything else                                    ─► free generation
"""

from __future__ import annotations

from dataclasses import dataclass

SCORING: dict[str, tuple[str, ...]] = {
    "transcript": ("wer", "cer", "wer_raw", "cer_raw"),
    "translation": ("bleu", "chrf"),
    "label": ("accuracy", "uar", "macro_f1", "auroc"),
    "labels": ("auroc", "micro_f1", "macro_f1"),
    "slots": ("slu_f1", "span_f1", "word_f1", "char_f1"),
    "keywords": ("f1",),
    "text": ("bleu", "chrf"),
    "none": (),
}
"""Scoring family -> the metrics it reports (``speechllm.evaluation.metrics`` computes them):

- ``transcript``: WER/CER after the chosen normaliser (Whisper's by default), and raw;
- ``translation``/``text``: corpus BLEU tokenised for the target language, and chrF;
- ``label``: one label per item (accuracy, unweighted average recall, macro F1; AUROC from
  label scores);
- ``labels``: a set of labels per item, written ``"a, b"`` (``none`` when empty): macro AUROC
  from head or label scores, micro/macro F1 of the predicted sets;
- ``slots``: SLURP's SLU-F1 over ``"slot=value; ..."``; ``keywords``: micro F1 over keyword
  sets; ``none``: not scored.
"""

TEXT_TASK = "text"
"""The task of text-only items (``data.text_manifests``): no audio, and each item carries its own
instruction (``""`` for a continuation), so the task has no templates and no manifest line
(which always has audio) may name it."""

ROUTES = ("head", "constrained", "free")
"""How an answer is produced: read from the task's classification head, generated within the
label set, or generated freely."""


@dataclass(frozen=True)
class Task:
    """One task the model can be trained and evaluated on."""

    name: str
    """Short identifier used in manifests, batches and metric names (``val/<name>/<metric>``)."""
    description: str
    """One line for humans (CLI summaries, docs)."""
    scoring: str
    """Scoring family, a key of :data:`SCORING`: what an answer is and how it is compared."""
    metric: str | None = None
    """The headline metric, one of the family's; ``None`` takes the family's first."""
    labels: tuple[str, ...] | None = None
    """Default label set of a ``label``/``labels`` task; a manifest ``labels`` field wins."""
    target_format: str = "free text"
    """How the target string is written, so importers and scorers agree."""

    def __post_init__(self) -> None:
        if not self.name or not self.name.isidentifier():
            raise ValueError(f"task name must be a non-empty identifier, got {self.name!r}")
        if self.scoring not in SCORING:
            raise ValueError(
                f"task {self.name!r}: unknown scoring {self.scoring!r}, use one of {list(SCORING)}"
            )
        if self.metric is None and SCORING[self.scoring]:
            object.__setattr__(self, "metric", SCORING[self.scoring][0])
        if self.metric is not None and self.metric not in SCORING[self.scoring]:
            raise ValueError(
                f"task {self.name!r}: metric {self.metric!r} is not reported by scoring "
                f"{self.scoring!r}, which reports {list(SCORING[self.scoring])}"
            )
        if self.labels is not None and len(self.labels) < 2:
            raise ValueError(f"task {self.name!r}: a label set needs at least two labels")

    @property
    def classifies(self) -> bool:
        """The answer is drawn from a label set (one label, or a set of them)."""
        return self.scoring in ("label", "labels")

    def route(self, has_head: bool, has_labels: bool, constrain: bool = True) -> str:
        """How this task's answers are produced, one of :data:`ROUTES`.

        Args:
            has_head: The model has a classification head for this task.
            has_labels: A label set is known (the task's or the manifest's).
            constrain: Constrained decoding is allowed (evaluation may switch it off).
        """
        if has_head:
            return "head"
        if self.scoring == "label" and has_labels and constrain:
            return "constrained"
        return "free"


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
    Task("asr", "speech recognition", "transcript", target_format="verbatim transcript"),
    Task("st", "speech translation", "translation", target_format="translation into tgt_lang"),
    Task(
        "ic", "intent classification", "label", "accuracy", target_format="intent, e.g. alarm_set"
    ),
    Task(
        "sf",
        "slot filling",
        "slots",
        target_format="`slot=value; slot=value`, values lower-case, in order of appearance",
    ),
    Task(
        "kws",
        "keyword spotting",
        "label",
        "accuracy",
        ("yes", "no"),
        "yes or no: is meta.keyword said",
    ),
    Task(
        "kwe", "keyword extraction", "keywords", target_format="`kw1, kw2` in order of appearance"
    ),
    Task("er", "emotion recognition", "label", "uar", target_format=_CLASS),
    Task("asc", "sentiment classification", "label", "uar", target_format=_CLASS),
    Task(
        "sc",
        "speaker counting",
        "label",
        "uar",
        target_format="number of speakers as a word (one, two, ...)",
    ),
    Task("ac", "accent classification", "label", "uar", target_format=_CLASS),
    Task("sns", "speech / non-speech", "label", "uar", ("speech", "non-speech"), _CLASS),
    Task("gr", "speaker gender", "label", "uar", ("female", "male"), _CLASS),
    Task(
        "symptoms",
        "symptom classes a clinical dictation mentions (multi-label)",
        "labels",
        "auroc",
        target_format="`label, label` from the label set, in label-set order; `none` if empty",
    ),
    Task(
        "department",
        "clinical department a dictation belongs to",
        "label",
        "uar",
        target_format=_CLASS,
    ),
    Task("instruct", "free-form instruction following", "text", target_format="free text"),
    Task(
        TEXT_TASK,
        "text-only instruction following or continuation, no audio",
        "text",
        target_format="the answer, or the continued text",
    ),
):
    register_task(_task)
