"""Sentence grammars: spoken commands with intents and slots, questions, numbers and dates,
statements with Spanish and German translations, and opinions with a sentiment
(:mod:`.opinions`).

Templates use a small notation, expanded left to right:

* ``{slot}``: a filler drawn from :data:`FILLERS`; in commands it becomes an ``sf`` slot;
* ``(a|b|)``: one alternative, possibly empty;
* ``[words]``: optional words, kept half of the time;
* a leading ``~``: the command takes a politeness wrapper ("could you ... please").
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from speechllm.synth import lexicon as lx
from speechllm.synth.opinions import OPINIONS, REVIEWED, VENUES

SENTENCE_KINDS = ("command", "question", "number", "statement", "opinion")


@dataclass(frozen=True)
class Sentence:
    """One sentence and everything the tasks derive from it."""

    text: str
    """Lower-case words, numbers spelt out, no punctuation: the ``asr`` target."""
    kind: str
    """One of :data:`SENTENCE_KINDS`."""
    intent: str | None = None
    slots: tuple[tuple[str, str], ...] = ()
    """``(slot type, value)`` in order of appearance."""
    translations: dict[str, str] = field(default_factory=dict)
    """Target language code -> translation, for statements."""
    sentiment: str | None = None
    """``positive``, ``negative`` or ``neutral``, for opinions."""

    @property
    def spoken(self) -> str:
        """What eSpeak reads: the final mark sets its intonation (rising for questions)."""
        return self.text + ("?" if self.kind == "question" else ".")


def _time(rng: random.Random) -> str:
    hour = lx.number_words(rng.randint(1, 12))
    return rng.choice(
        [
            hour,
            f"{hour} thirty",
            f"{hour} fifteen",
            f"{hour} forty five",
            f"half past {hour}",
            f"quarter to {hour}",
            f"{hour} in the morning",
            f"{hour} in the evening",
            "noon",
        ]
    )


def _date(rng: random.Random) -> str:
    day = rng.choice(lx.DAYS)
    return rng.choice(
        [
            "today",
            "tomorrow",
            f"on {day}",
            f"next {day}",
            "this weekend",
            f"on the {lx.ordinal_words(rng.randint(1, 28))} of {rng.choice(lx.MONTHS)}",
        ]
    )


def _duration(rng: random.Random) -> str:
    return rng.choice(
        [
            f"{lx.number_words(rng.randint(2, 59))} minutes",
            f"{lx.number_words(rng.randint(10, 50))} seconds",
            f"{lx.number_words(rng.randint(2, 3))} hours",
            "one hour",
            "half an hour",
            "one minute",
        ]
    )


def _number(rng: random.Random) -> str:
    return lx.number_words(int(10 ** rng.uniform(0, 4)))


FILLERS: dict[str, Callable[[random.Random], str]] = {
    "time": _time,
    "date": _date,
    "duration": _duration,
    "temperature": lambda rng: f"{lx.number_words(rng.randint(16, 28))} degrees",
    "person": lambda rng: rng.choice(lx.PEOPLE),
    "place": lambda rng: rng.choice(lx.CITIES),
    "device": lambda rng: rng.choice(lx.DEVICES),
    "room": lambda rng: rng.choice(lx.ROOMS),
    "genre": lambda rng: rng.choice(lx.GENRES),
    "event": lambda rng: rng.choice(lx.EVENTS),
    "item": lambda rng: rng.choice(lx.GROCERIES),
    "shop": lambda rng: rng.choice(lx.SHOPS),
    "thing": lambda rng: rng.choice(lx.THINGS),
    "transport": lambda rng: rng.choice(lx.TRANSPORT),
    "number": _number,
    "small": lambda rng: lx.number_words(rng.randint(2, 12)),
    "digits": lambda rng: " ".join(lx.number_words(rng.randint(0, 9)) for _ in range(7)),
    "ordinal": lambda rng: lx.ordinal_words(rng.randint(1, 31)),
    "month": lambda rng: rng.choice(lx.MONTHS),
    "year": lambda rng: lx.year_words(rng.randint(1950, 2024)),
    "reviewed": lambda rng: rng.choice(REVIEWED),
    "venue": lambda rng: rng.choice(VENUES),
}

COMMANDS: dict[str, list[str]] = {
    "set_alarm": [
        "~set an alarm for {time} [{date}]",
        "~wake me up at {time} [{date}]",
        "i need an alarm at {time} [{date}]",
        "~(create|add) an alarm {date} at {time}",
    ],
    "set_timer": [
        "~set a timer for {duration}",
        "~start a {duration} timer",
        "~count down {duration} [for me]",
    ],
    "play_music": [
        "~play [some] {genre} [in the {room}]",
        "~put on [some] {genre}",
        "i want to listen to {genre} [in the {room}]",
    ],
    "lights_on": [
        "~turn on the lights [in the {room}]",
        "~switch on the {room} lights",
        "it is too dark in the {room}",
    ],
    "lights_off": [
        "~turn off the lights [in the {room}]",
        "~switch off the {room} lights",
        "it is too bright in the {room}",
    ],
    "device_on": ["~(turn|switch) on the {device} [in the {room}]", "~start the {device}"],
    "device_off": ["~(turn|switch) off the {device} [in the {room}]", "~stop the {device}"],
    "set_temperature": [
        "~set the (temperature|heating) [in the {room}] to {temperature}",
        "~make it {temperature} in the {room}",
    ],
    "weather_query": [
        "what is the weather [like] in {place} [{date}]",
        "will it rain in {place} {date}",
        "how warm will it be in {place} {date}",
        "do i need an umbrella [in {place}] {date}",
    ],
    "call_person": [
        "~call {person} [at {time}]",
        "~(phone|ring) {person}",
        "~give {person} a call [{date}]",
    ],
    "send_message": [
        "~send a message to {person} [saying i am late]",
        "~text {person} that i will be there at {time}",
        "~tell {person} (i am on my way|dinner is ready)",
    ],
    "calendar_add": [
        "~add a {event} with {person} [{date}] [at {time}]",
        "~put the {event} in my calendar for {date}",
        "~schedule a {event} {date} at {time}",
    ],
    "set_reminder": [
        "~remind me to (call|email) {person} {date}",
        "~remind me about the {event} at {time}",
        "~set a reminder for {time} to buy {item}",
    ],
    "book_taxi": [
        "~book a taxi to {place} [for {time}]",
        "i need a (taxi|cab) at {time} [{date}]",
        "~get me a (taxi|cab) to {place} [{date}]",
    ],
    "add_to_list": [
        "~add {item} to my shopping list",
        "~put {item} [and {item}] on the list",
        "we (need|are out of) {item}",
    ],
    "volume_up": [
        "~turn it up",
        "~(increase|raise) the volume [on the {device}]",
        "i can not hear the {device}",
    ],
    "volume_down": [
        "~turn it down",
        "~(decrease|lower) the volume [on the {device}]",
        "the {device} is too loud",
    ],
}
_POLITE = [
    ("", ""),
    ("please ", ""),
    ("", " please"),
    ("could you ", ""),
    ("can you ", " please"),
    ("hey computer ", ""),
    ("", " thanks"),
]

QUESTIONS = [
    "what time does the {shop} open [{date}]",
    "how long does it take to get to {place} by {transport}",
    "is {person} coming to the {event} [{date}]",
    "where did i leave my {thing}",
    "have you seen my {thing}",
    "do they sell {item} at the {shop}",
    "is the {shop} open {date}",
    "which {transport} goes to {place} [{date}]",
    "can i bring my {thing} to the {event}",
    "who is coming to the {event} with {person}",
    "when does the {event} start",
    "why is the {device} so loud",
    "what is the fastest way to {place}",
]
NUMBERS = [
    "the {event} is on the {ordinal} of {month}",
    "my phone number is {digits}",
    "the total comes to {number} (dollars|euros|pounds)",
    "there are {number} people in the {shop}",
    "the train to {place} leaves at {time} from platform {small}",
    "i was born in {year}",
    "~order {small} (tickets|boxes|bottles) for the {event}",
    "the temperature will reach {temperature} {date}",
    "(room|flight|bus) number {number}",
    "it is {time} in {place} right now",
    "we have sold {number} tickets so far",
    "the {event} lasts {duration}",
    "{person} was born on the {ordinal} of {month} {year}",
]
# (English, Spanish, German) templates over the bilingual lexicon; a letter names a category.
STATEMENTS = [
    (
        "{s[en]} goes to {p[en]} {w[en]}",
        "{s[es]} va a {p[es]} {w[es]}",
        "{s[de]} geht {w[de]} {p[de_to]}",
    ),
    ("{s[en]} works at {p[en]}", "{s[es]} trabaja en {p[es]}", "{s[de]} arbeitet {p[de_at]}"),
    (
        "we meet at {p[en]} {c[en]}",
        "nos vemos en {p[es]} {c[es]}",
        "wir treffen uns {c[de]} {p[de_at]}",
    ),
    ("{s[en]} is looking for {o[en]}", "{s[es]} busca {o[es]}", "{s[de]} sucht {o[de_acc]}"),
    ("i need {o[en]} {w[en]}", "necesito {o[es]} {w[es]}", "ich brauche {w[de]} {o[de_acc]}"),
    ("{o[en]} is in {r[en]}", "{o[es]} está en {r[es]}", "{o[de]} ist {r[de]}"),
    ("{o[en]} is {q[en]}", "{o[es]} es {q[es]}", "{o[de]} ist {q[de]}"),
    ("{s[en]} likes {f[en]}", "a {s[es]} le gusta {f[es]}", "{s[de]} mag {f[de]}"),
    ("{s[en]} is at home {w[en]}", "{s[es]} está en casa {w[es]}", "{s[de]} ist {w[de]} zu Hause"),
    (
        "{s[en]} buys {f[en]} at {p[en]}",
        "{s[es]} compra {f[es_bare]} en {p[es]}",
        "{s[de]} kauft {f[de]} {p[de_at]}",
    ),
]
_CATEGORIES = {
    "s": lx.SUBJECTS,
    "p": lx.PLACES,
    "w": lx.WHEN,
    "c": lx.CLOCK,
    "o": lx.OBJECTS,
    "r": lx.HOME_ROOMS,
    "q": lx.QUALITIES,
    "f": lx.FOODS,
}
_TOKEN = re.compile(r"\[([^\]]*)\]|\(([^)]*)\)|\{(\w+)\}")

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "to",
        "at",
        "for",
        "in",
        "on",
        "of",
        "is",
        "are",
        "be",
        "will",
        "i",
        "me",
        "my",
        "you",
        "we",
        "it",
        "and",
        "or",
        "that",
        "this",
        "with",
        "by",
        "from",
        "some",
        "so",
        "can",
        "could",
        "do",
        "does",
        "did",
        "what",
        "how",
        "who",
        "where",
        "which",
        "when",
        "why",
        "please",
        "thanks",
        "hey",
        "need",
        "want",
        "am",
        "have",
        "has",
        "was",
        "there",
        "they",
        "up",
        "down",
        "off",
        "not",
        "your",
        "our",
    ]
)


def expand(template: str, rng: random.Random) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Fill a template; returns the text and its ``(slot, value)`` pairs in order."""
    prefix, suffix = rng.choice(_POLITE) if template.startswith("~") else ("", "")
    parts: list[str] = []
    slots: list[tuple[str, str]] = []
    pos = 0
    body = template.lstrip("~")
    for match in _TOKEN.finditer(body):
        parts.append(body[pos : match.start()])
        pos = match.end()
        optional, choice, slot = match.groups()
        if optional is not None:
            if rng.random() < 0.5:
                text, inner = expand(optional, rng)
                parts.append(text)
                slots.extend(inner)
        elif choice is not None:
            parts.append(rng.choice(choice.split("|")))
        else:
            value = FILLERS[slot](rng)
            parts.append(value)
            slots.append((slot, value))
    parts.append(body[pos:])
    return " ".join((prefix + "".join(parts) + suffix).split()), tuple(slots)


def _polish(text: str, lang: str) -> str:
    """Sentence-case a translation, add its full stop and Spanish article contractions."""
    if lang == "es":
        text = re.sub(r"\ba el\b", "al", re.sub(r"\bde el\b", "del", text))
    return text[0].upper() + text[1:] + "."


def sample_sentence(kind: str, rng: random.Random) -> Sentence:
    """Draw one sentence of ``kind`` (see :data:`SENTENCE_KINDS`)."""
    if kind == "command":
        intent = rng.choice(sorted(COMMANDS))
        text, slots = expand(rng.choice(COMMANDS[intent]), rng)
        return Sentence(text, kind, intent=intent, slots=slots)
    if kind in ("question", "number"):
        text, _ = expand(rng.choice(QUESTIONS if kind == "question" else NUMBERS), rng)
        return Sentence(text, kind)
    if kind == "opinion":
        sentiment = rng.choice(sorted(OPINIONS))
        text, _ = expand(rng.choice(OPINIONS[sentiment]), rng)
        return Sentence(text, kind, sentiment=sentiment)
    if kind == "statement":
        en, es, de = rng.choice(STATEMENTS)
        words = {key: rng.choice(values) for key, values in _CATEGORIES.items()}
        return Sentence(
            en.format(**words),
            kind,
            translations={
                "es": _polish(es.format(**words), "es"),
                "de": _polish(de.format(**words), "de"),
            },
        )
    raise ValueError(f"unknown sentence kind {kind!r}; use one of {SENTENCE_KINDS}")


def content_words(text: str) -> list[str]:
    """The ``kwe`` keywords: words outside :data:`STOPWORDS`, first occurrence order."""
    return list(dict.fromkeys(w for w in text.split() if w not in STOPWORDS))
