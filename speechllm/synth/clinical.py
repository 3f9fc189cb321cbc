"""The ``clinical`` domain: short dictations with medical vocabulary, for two-step PEFT.

A dictation names a patient, one to three symptoms and a plan (a procedure and a drug)::

    "sixty two year old woman with chest pain and a dry cough for three days
     plan echocardiogram and start metoprolol"

Each one yields ``asr`` (the text), ``symptoms`` (the symptom classes it mentions: a
multi-label target such as ``"cardiac, respiratory"``) and ``department`` (the specialty the
plan's procedure and drug belong to; its symptoms lean the same way but need not). The
domain text corpus for step one (causal-LM domain adaptation without audio) is made of the
same grammar plus note-style lines, from the train split's share of the sentence space only.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speechllm.synth import lexicon as lx
from speechllm.synth.grammar import Sentence
from speechllm.synth.plan import Item, Planner, SplitSpec, Turn, _line, sentence_split

SYMPTOMS: dict[str, tuple[str, ...]] = {
    "cardiac": ("chest pain", "palpitations", "ankle swelling", "shortness of breath on exertion"),
    "respiratory": ("a dry cough", "wheezing", "a productive cough", "a sore throat"),
    "gastrointestinal": ("abdominal pain", "nausea", "vomiting", "diarrhoea", "heartburn"),
    "neurological": ("headaches", "dizziness", "numbness in the hands", "blurred vision"),
    "musculoskeletal": ("back pain", "a swollen knee", "a stiff neck", "joint pain"),
    "dermatological": ("a rash", "itching", "a painful blister", "dry skin"),
}
SYMPTOM_CLASSES = tuple(SYMPTOMS)
DEPARTMENTS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    # department: (the symptom class it leans to, procedures, drugs)
    "cardiology": (
        "cardiac",
        ("echocardiogram", "an ecg", "a stress test"),
        ("metoprolol", "aspirin", "ramipril"),
    ),
    "pulmonology": (
        "respiratory",
        ("spirometry", "a chest x ray"),
        ("salbutamol", "an inhaled steroid"),
    ),
    "gastroenterology": (
        "gastrointestinal",
        ("endoscopy", "an abdominal ultrasound"),
        ("omeprazole", "ondansetron"),
    ),
    "neurology": ("neurological", ("an mri of the brain", "an eeg"), ("gabapentin", "sumatriptan")),
    "orthopedics": (
        "musculoskeletal",
        ("an x ray of the knee", "physiotherapy"),
        ("ibuprofen", "naproxen"),
    ),
    "dermatology": (
        "dermatological",
        ("a skin biopsy", "patch testing"),
        ("hydrocortisone cream", "cetirizine"),
    ),
}
LEAN = 0.6
"""Chance that the first symptom comes from the department's own class."""
_DURATIONS = ("for two days", "for three days", "for a week", "since yesterday", "for a month", "")
_NOTES = (
    "no known drug allergies",
    "history of {symptom} treated with {drug}",
    "patient tolerated {procedure} well",
    "discharged on {drug} twice daily",
    "review in {department} clinic in {weeks} weeks",
    "{symptom} has improved since starting {drug}",
    "referred to {department} for {procedure}",
)


@dataclass(frozen=True)
class Dictation:
    """One dictation and its labels."""

    text: str
    symptom_classes: tuple[str, ...]
    """In :data:`SYMPTOM_CLASSES` order, so the target string is canonical."""
    department: str

    @property
    def symptoms_target(self) -> str:
        return ", ".join(self.symptom_classes)


def sample_dictation(rng: random.Random) -> Dictation:
    """One dictation: patient, one to three symptoms, duration, procedure and drug."""
    department = rng.choice(sorted(DEPARTMENTS))
    lean, procedures, drugs = DEPARTMENTS[department]
    n = rng.choice((1, 1, 2, 2, 3))
    first = lean if rng.random() < LEAN else rng.choice(SYMPTOM_CLASSES)
    classes = [first] + rng.sample([c for c in SYMPTOM_CLASSES if c != first], n - 1)
    symptoms = [rng.choice(SYMPTOMS[c]) for c in classes]
    patient = f"{lx.number_words(rng.randint(18, 90))} year old {rng.choice(('man', 'woman'))}"
    text = (
        f"{patient} with {' and '.join(symptoms)} {rng.choice(_DURATIONS)} "
        f"plan {rng.choice(procedures)} and start {rng.choice(drugs)}"
    )
    ordered = tuple(c for c in SYMPTOM_CLASSES if c in classes)
    return Dictation(" ".join(text.split()), ordered, department)


def sample_note(rng: random.Random) -> str:
    """A dictation or a note-style line: the domain text corpus's sentences."""
    if rng.random() < 0.5:
        return sample_dictation(rng).text
    department = rng.choice(sorted(DEPARTMENTS))
    _, procedures, drugs = DEPARTMENTS[department]
    return rng.choice(_NOTES).format(
        symptom=rng.choice(rng.choice(list(SYMPTOMS.values()))),
        drug=rng.choice(drugs),
        procedure=rng.choice(procedures),
        department=department,
        weeks=lx.number_words(rng.randint(2, 12)),
    )


class ClinicalPlanner(Planner):
    """The general planner with dictations for sentences and clinical tasks for lines; every
    item is one speaker (no two-turn or non-speech clips)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._dictations: dict[str, Dictation] = {}

    def sentence(self, kind: str | None = None) -> Sentence:
        while True:  # rejection keeps each split's sentences disjoint
            dictation = sample_dictation(self.rng)
            if self._belongs(dictation.text):
                self._dictations[dictation.text] = dictation
                return Sentence(dictation.text, "statement")

    def items(self) -> list[Item]:
        return [self.single(f"{self.spec.name}-{i:06d}") for i in range(self.spec.size)]

    def _speech_lines(self, item: Item, turn: Turn) -> list[dict[str, Any]]:
        dictation = self._dictations[turn.sentence.text]
        meta = {"voice": turn.voice.name, "style": turn.style, "snr_db": item.snr_db}
        return [
            _line(item, "asr", dictation.text, meta=meta),
            _line(
                item,
                "symptoms",
                dictation.symptoms_target,
                labels=list(SYMPTOM_CLASSES),
                meta=meta,
            ),
            _line(item, "department", dictation.department, labels=sorted(DEPARTMENTS), meta=meta),
        ]


def plan_clinical_split(
    spec: SplitSpec, seed: int, dev_frac: float, test_frac: float
) -> list[Item]:
    """All items of one clinical split, reproducible from ``seed`` alone."""
    return ClinicalPlanner(spec, seed, dev_frac, test_frac).items()


def write_corpus(path: Path, n_lines: int, seed: int, dev_frac: float, test_frac: float) -> int:
    """Write ``n_lines`` domain sentences of the train split, one per line; returns the count."""
    rng = random.Random(f"{seed}:clinical-text")
    lines = []
    while len(lines) < n_lines:
        text = sample_note(rng)
        if sentence_split(text, seed, dev_frac, test_frac) == "train":
            lines.append(text)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)
