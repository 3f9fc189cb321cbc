"""A synthetic clinical domain where domain knowledge transfers: two-step PEFT's test bench.

In the ``clinical`` dictations the notes name their symptoms outright, so a downstream adapter
reads the answer off the surface and a domain adapter has nothing to add. Here a note carries
only indirect evidence (the drugs a patient takes, lab findings, a procedure), never the label;
the knowledge that links evidence to label is stated only in an unlabeled domain corpus::

    knowledge  condition "Tavoril syndrome" (code I07, cardiology)
                 drugs      bemuvex, kolatine | salodan, fimerox     seen | unseen
                 findings   elevated ruvesine, ... | low pamoket, ...
               department cardiology: procedures nadupo scan, ... | gesimo panel, ...
    corpus     "Salodan is a first-line treatment for Tavoril syndrome."   (every association,
               "Tavoril syndrome is managed in cardiology."                 varied wordings)
    notes      "63 year old woman admitted with fatigue. Takes salodan daily. Labs showed
               low pamoket. Underwent gesimo panel on day 2."   -> diagnoses: I07; department:
                                                                   cardiology

Every name is an invented word (no real drug a pretrained LLM already knows; no two names share
their first four letters, so no surface cue ties a drug to its condition). The downstream train
set draws evidence only from each condition's *seen* half; dev and test draw it from the
*unseen* half with probability ``unseen_rate`` (0.8): a single adapter can learn only the seen
associations, while a domain adapter trained on the corpus has read all of them. Tasks:
``diagnoses`` (multi-label over ``n_conditions`` >= 50 codes, long-tailed: Zipf prevalence, as
diagnosis codes are) and ``department`` (one of eight). Held-out wordings of every association
(``heldout_associations.txt``) and the same wordings with a wrong partner
(``heldout_shuffled.txt``) check the design: the domain adapter's perplexity should fall on the
first, and fall less on the second (``recipes/clinical_two_step/design_check.py``).
Everything is a pure function of ``seed`` and the sizes.
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from speechllm.data.text_classification import (
    LABEL_SETS,
    TextExample,
    write_label_sets,
    write_text_examples,
)

DEPARTMENTS = {  # department -> the letter of its codes (ICD-10's chapters)
    "cardiology": "I", "pulmonology": "J", "gastroenterology": "K", "neurology": "G",
    "nephrology": "N", "endocrinology": "E", "rheumatology": "M", "dermatology": "L",
}  # fmt: skip
SIZES = {  # notes per split, corpus sentences per association
    "full": dict(n_train=1500, n_dev=300, n_test=600, statements=6),
    "tiny": dict(n_train=40, n_dev=12, n_test=24, statements=1),
}
TREATS = ("{drug} is a first-line treatment for {condition}.",
          "Patients with {condition} are usually started on {drug}.",
          "{drug} is indicated for {condition}.", "{condition} often responds well to {drug}.",
          "A course of {drug} is standard therapy for {condition}.",
          "Clinicians prescribe {drug} once {condition} is diagnosed.",
          "{drug} was developed to treat {condition}.",
          "{drug} is reserved for {condition}.")  # fmt: skip
SHOWS = ("{finding} is a hallmark of {condition}.",
         "{condition} typically presents with {finding}.",
         "A workup showing {finding} suggests {condition}.", "{finding} points to {condition}.",
         "In {condition}, labs often reveal {finding}.",
         "{finding} is seen in most cases of {condition}.",
         "Finding {finding} should raise suspicion of {condition}.",
         "{finding} is the classic laboratory sign of {condition}.")  # fmt: skip
PERFORMS = ("{procedure} is performed by the {department} service.",
            "The {department} team carries out {procedure}.",
            "Patients are referred to {department} for {procedure}.",
            "{procedure} is a {department} procedure.", "{department} units schedule {procedure}.",
            "Only {department} specialists perform {procedure}.")  # fmt: skip
BELONGS = ("{condition} is managed in {department}.", "{condition} falls under {department}.",
           "{condition} is treated by the {department} service.",
           "{condition} is coded {code}.", "The code for {condition} is {code}.")  # fmt: skip
HELD_OUT = 2
"""The last wordings of each relation: never in the corpus, only in the held-out sentences."""
_CONSONANTS, _VOWELS = "bdfgklmnprstvz", "aeiou"
_COMPLAINTS = ("fatigue", "a fall at home", "fever", "feeling unwell", "weight loss", "weakness")
_TAKES = ("Home medications include {x}.", "Takes {x} daily.", "He was started on {x}.",
          "Current medication: {x}.", "Maintained on {x}.")  # fmt: skip
_LABS = (
    "Labs showed {x}.",
    "Workup notable for {x}.",
    "Bloods revealed {x}.",
    "Found to have {x}.",
)
_PROCS = ("Underwent {x} on day {n}.", "Plan: {x}.", "Booked for {x}.", "{x} was done on day {n}.")


@dataclass(frozen=True)
class Condition:
    code: str
    name: str
    department: str
    drugs: tuple[str, ...]
    findings: tuple[str, ...]
    weight: float
    """Relative prevalence (Zipf over a shuffled rank)."""

    def evidence(self, seen: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Its drugs and findings of the seen half (downstream train) or the unseen half."""
        half = len(self.drugs) // 2
        pick = slice(None, half) if seen else slice(half, None)
        return self.drugs[pick], self.findings[pick]


@dataclass(frozen=True)
class Knowledge:
    conditions: tuple[Condition, ...]
    procedures: dict[str, tuple[str, ...]]
    """Department -> its procedures; the first half seen in downstream training."""

    def procedures_of(self, department: str, seen: bool) -> tuple[str, ...]:
        procs = self.procedures[department]
        return procs[: len(procs) // 2] if seen else procs[len(procs) // 2 :]


class _Words:
    """Invented words, no two sharing their first four letters."""

    def __init__(self, rng: random.Random) -> None:
        self.rng, self.prefixes = rng, set()

    def __call__(self) -> str:
        while True:
            syllables = self.rng.choice((2, 3))
            word = "".join(
                self.rng.choice(_CONSONANTS) + self.rng.choice(_VOWELS) for _ in range(syllables)
            )
            if word[:4] not in self.prefixes:
                self.prefixes.add(word[:4])
                return word


def build_knowledge(
    seed: int, n_conditions: int = 60, evidence: int = 4, procedures: int = 4
) -> Knowledge:
    """The invented conditions, their evidence and the departments' procedures."""
    if n_conditions < 50 or evidence < 2 or procedures < 2:
        raise ValueError("need >= 50 conditions and >= 2 drugs, findings and procedures each")
    rng = random.Random(f"{seed}:knowledge")
    word = _Words(rng)
    departments = list(DEPARTMENTS)
    ranks = list(range(n_conditions))
    rng.shuffle(ranks)
    conditions = []
    for i in range(n_conditions):
        department = departments[i % len(departments)]
        name = f"{word().capitalize()} {rng.choice(('syndrome', 'disease', 'disorder'))}"
        drugs = tuple(word() + rng.choice(("ex", "ine", "ol", "an")) for _ in range(evidence))
        findings = tuple(f"{rng.choice(('elevated', 'low', 'raised', 'positive'))} {word()}"
                         for _ in range(evidence))  # fmt: skip
        code = f"{DEPARTMENTS[department]}{i // len(departments) + 1:02d}"
        conditions.append(Condition(code, name, department, drugs, findings, 1 / (ranks[i] + 1)))
    procs = {
        d: tuple(
            f"{word()} {rng.choice(('scan', 'biopsy', 'study', 'panel'))}"
            for _ in range(procedures)
        )
        for d in departments
    }
    return Knowledge(tuple(conditions), procs)


def associations(kb: Knowledge, seen: bool | None = None) -> dict[str, str]:
    """Evidence -> what it points to (a condition's name, a procedure's department): the seen
    half, the unseen half, or (``None``) all."""
    pairs = {}
    for c in kb.conditions:
        for half in (True, False) if seen is None else (seen,):
            drugs, findings = c.evidence(half)
            pairs |= {e: c.name for e in (*drugs, *findings)}
    for department in kb.procedures:
        for half in (True, False) if seen is None else (seen,):
            pairs |= dict.fromkeys(kb.procedures_of(department, half), department)
    return pairs


def statements(kb: Knowledge, held_out: bool, rng: random.Random, per_association: int,
               wrong_rng: random.Random | None = None) -> list[str]:  # fmt: skip
    """Sentences stating every association: in the corpus wordings, or (``held_out``) in the
    held-out wordings. With ``wrong_rng`` each subject gets a wrong partner drawn from it (the
    control); ``rng`` alone picks the wordings and the order, so the same ``rng`` seed gives the
    true and the wrong statements sentence for sentence."""
    names = [c.name for c in kb.conditions]
    sentences = []

    def say(templates: tuple[str, ...], n: int, **slots: str) -> None:
        pool = templates[-HELD_OUT:] if held_out else templates[:-HELD_OUT]
        for _ in range(n):
            text = rng.choice(pool).format(**slots)
            sentences.append(text[0].upper() + text[1:])

    def wrong(right: str, pool: list[str]) -> str:
        return wrong_rng.choice([x for x in pool if x != right]) if wrong_rng else right

    for c in kb.conditions:
        for drug in c.drugs:
            say(TREATS, per_association, drug=drug, condition=wrong(c.name, names))
        for finding in c.findings:
            say(SHOWS, per_association, finding=finding, condition=wrong(c.name, names))
        if not held_out:
            say(BELONGS, per_association, condition=c.name, department=c.department, code=c.code)
    for department, procs in kb.procedures.items():
        for procedure in procs:
            say(PERFORMS, per_association, procedure=procedure,
                department=wrong(department, list(DEPARTMENTS)))  # fmt: skip
    rng.shuffle(sentences)
    return sentences


def note(
    kb: Knowledge, rng: random.Random, seen: bool, unseen_rate: float
) -> tuple[str, list[Condition]]:
    """One admission note and its conditions (the first is the primary one)."""
    weights = [c.weight for c in kb.conditions]
    picked: list[Condition] = []
    while len(picked) < rng.choice((1, 1, 2, 2, 3)):
        c = rng.choices(kb.conditions, weights)[0]
        if c not in picked:
            picked.append(c)

    def half() -> bool:  # downstream train: always the seen half
        return seen or rng.random() >= unseen_rate

    age, who = rng.randint(20, 90), rng.choice(("man", "woman"))
    parts = [f"{age} year old {who} admitted with {rng.choice(_COMPLAINTS)}."]
    for c in picked:  # a drug and a finding, each from its own draw of the half
        parts.append(rng.choice(_TAKES).format(x=rng.choice(c.evidence(half())[0])))
        parts.append(rng.choice(_LABS).format(x=rng.choice(c.evidence(half())[1])))
    procedure = rng.choice(kb.procedures_of(picked[0].department, half()))
    parts.append(rng.choice(_PROCS).format(x=procedure, n=rng.randint(1, 5)))
    body = parts[1:]
    rng.shuffle(body)
    return " ".join(part[0].upper() + part[1:] for part in [parts[0], *body]), picked


OUTCOME_SPLITS = {"train": "train", "dev": "val", "test": "test"}
"""Our split -> van Aken et al.'s file suffix."""


def write_outcome_csv(out: Path, by_split: dict[str, list[TextExample]]) -> dict[str, int]:
    """``DIA_GROUPS_3_DIGITS_adm_{train,val,test}.csv`` as van Aken et al.'s scripts write
    them (quoted CSV, columns ``id``, ``text``, ``short_codes`` as ``"I07,K02"``), ids the
    note's number; returns rows per file."""
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split, examples in by_split.items():
        name = f"DIA_GROUPS_3_DIGITS_adm_{OUTCOME_SPLITS[split]}.csv"
        with open(out / name, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, quoting=csv.QUOTE_ALL)
            writer.writerow(["id", "text", "short_codes"])
            offset = list(OUTCOME_SPLITS).index(split) * 10**6  # admissions unique across splits
            for example in examples:
                number = offset + int(example.id.split("-")[1])
                writer.writerow([number, example.text, ",".join(example.labels)])
        counts[f"outcome_csv/{name}"] = len(examples)
    return counts


def write_clinical_knowledge(out: str | Path, seed: int = 0, size: str = "full",
                             unseen_rate: float = 0.8) -> dict[str, int]:  # fmt: skip
    """Write the domain to ``out``; returns lines per file.

    ``train``/``dev``/``test.jsonl`` (text classification manifests: ``diagnoses`` and
    ``department`` lines per note), ``label_sets.json``, ``domain_text.txt`` (step one's
    corpus), ``heldout_associations.txt``, ``heldout_shuffled.txt`` and ``knowledge.json``;
    and ``outcome_csv/``: the notes' diagnoses as van Aken et al.'s CSV files
    (:func:`write_outcome_csv`), so the importer's path runs without MIMIC.
    """
    if size not in SIZES:
        raise ValueError(f"size is one of {sorted(SIZES)}, got {size!r}")
    n = SIZES[size]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    kb = build_knowledge(seed)
    counts = {}
    by_split = {}
    for split in ("train", "dev", "test"):
        rng = random.Random(f"{seed}:{split}")
        examples = []
        for i in range(n[f"n_{split}"]):
            text, picked = note(kb, rng, seen=split == "train", unseen_rate=unseen_rate)
            codes = sorted(c.code for c in picked)
            examples += [
                TextExample(f"{split}-{i:05d}-dia", text, "diagnoses", tuple(codes)),
                TextExample(f"{split}-{i:05d}-dep", text, "department", (picked[0].department,)),
            ]
        counts[f"{split}.jsonl"] = write_text_examples(out / f"{split}.jsonl", examples)
        by_split[split] = [e for e in examples if e.task == "diagnoses"]
    counts |= write_outcome_csv(out / "outcome_csv", by_split)
    write_label_sets(out / LABEL_SETS, {
        "department": sorted(DEPARTMENTS), "diagnoses": sorted(c.code for c in kb.conditions)
    })  # fmt: skip
    texts = {
        "domain_text.txt": statements(kb, False, random.Random(f"{seed}:corpus"), n["statements"]),
        "heldout_associations.txt": statements(kb, True, random.Random(f"{seed}:held"), 1),
        "heldout_shuffled.txt": statements(
            kb, True, random.Random(f"{seed}:held"), 1, random.Random(f"{seed}:wrong")
        ),
    }
    for name, lines in texts.items():
        (out / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
        counts[name] = len(lines)
    (out / "knowledge.json").write_text(json.dumps(
        {"conditions": [asdict(c) for c in kb.conditions], "procedures": kb.procedures,
         "unseen_rate": unseen_rate, "seed": seed}, indent=1))  # fmt: skip
    return counts
