"""The closed vocabulary the benchmark speaks: slot fillers, number words and a small
English/Spanish/German lexicon whose pieces translate the same way every time.

Each bilingual entry carries exactly the inflected forms its templates need (German case and
preposition contractions, Spanish articles), so filling a template cannot produce an
ungrammatical translation.
"""

from __future__ import annotations

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ORDINAL_ONES = [
    "_",
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "eleventh",
    "twelfth",
    "thirteenth",
    "fourteenth",
    "fifteenth",
    "sixteenth",
    "seventeenth",
    "eighteenth",
    "nineteenth",
]


def number_words(n: int) -> str:
    """Spell 0..9999 the way eSpeak should say it: ``112`` -> ``one hundred and twelve``."""
    if not 0 <= n <= 9999:
        raise ValueError(f"number_words covers 0..9999, got {n}")
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f" {_ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_ONES[hundreds]} hundred" + (f" and {number_words(rest)}" if rest else "")
    thousands, rest = divmod(n, 1000)
    tail = (
        "" if not rest else f" and {number_words(rest)}" if rest < 100 else f" {number_words(rest)}"
    )
    return f"{_ONES[thousands]} thousand{tail}"


def ordinal_words(n: int) -> str:
    """Spell an ordinal day of the month, 1..31: ``23`` -> ``twenty third``."""
    if not 1 <= n <= 31:
        raise ValueError(f"ordinal_words covers 1..31, got {n}")
    if n < 20:
        return _ORDINAL_ONES[n]
    tens, ones = divmod(n, 10)
    if ones == 0:
        return _TENS[tens][:-1] + "ieth"
    return f"{_TENS[tens]} {_ORDINAL_ONES[ones]}"


def year_words(year: int) -> str:
    """Spell a year as spoken: ``1984`` -> ``nineteen eighty four``."""
    century, rest = divmod(year, 100)
    if 2000 <= year < 2010:
        return number_words(year)
    return f"{number_words(century)} " + (
        f"oh {_ONES[rest]}" if 0 < rest < 10 else "hundred" if rest == 0 else number_words(rest)
    )


MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]

# Slot fillers for spoken commands and questions (English only).
CITIES = [
    "london",
    "paris",
    "berlin",
    "madrid",
    "boston",
    "dublin",
    "tokyo",
    "chicago",
    "rome",
    "vienna",
    "lisbon",
    "oslo",
    "toronto",
    "sydney",
    "denver",
    "seattle",
]
PEOPLE = [
    "anna",
    "david",
    "maria",
    "james",
    "sophie",
    "peter",
    "laura",
    "michael",
    "emma",
    "tom",
    "lucy",
    "daniel",
    "grace",
    "oliver",
    "my mother",
    "my father",
    "my boss",
    "my sister",
]
DEVICES = [
    "tv",
    "radio",
    "heater",
    "fan",
    "coffee machine",
    "dishwasher",
    "washing machine",
    "speaker",
    "oven",
    "air conditioner",
    "vacuum cleaner",
    "printer",
]
ROOMS = ["kitchen", "living room", "bedroom", "bathroom", "office", "garage", "hallway"]
GENRES = ["jazz", "rock", "classical music", "pop", "hip hop", "reggae", "blues", "folk music"]
EVENTS = [
    "meeting",
    "dentist appointment",
    "dinner",
    "football practice",
    "yoga class",
    "birthday party",
    "job interview",
    "piano lesson",
    "team lunch",
]
GROCERIES = ["milk", "eggs", "bread", "apples", "coffee", "rice", "cheese", "tomatoes", "butter"]
SHOPS = ["bakery", "pharmacy", "post office", "supermarket", "library", "bank", "gym", "museum"]
THINGS = ["keys", "glasses", "wallet", "phone", "umbrella", "jacket", "headphones", "notebook"]
TRANSPORT = ["train", "bus", "car", "bike", "plane", "ferry"]

# Bilingual pieces: every English piece maps to fixed Spanish and German pieces.
SUBJECTS = [
    {"en": "my brother", "es": "mi hermano", "de": "mein Bruder"},
    {"en": "my sister", "es": "mi hermana", "de": "meine Schwester"},
    {"en": "the teacher", "es": "el profesor", "de": "der Lehrer"},
    {"en": "the doctor", "es": "la doctora", "de": "die Ärztin"},
    {"en": "my friend", "es": "mi amigo", "de": "mein Freund"},
    {"en": "our neighbour", "es": "nuestra vecina", "de": "unsere Nachbarin"},
    {"en": "my father", "es": "mi padre", "de": "mein Vater"},
    {"en": "my mother", "es": "mi madre", "de": "meine Mutter"},
    {"en": "the driver", "es": "el conductor", "de": "der Fahrer"},
    {"en": "anna", "es": "Anna", "de": "Anna"},
    {"en": "david", "es": "David", "de": "David"},
    {"en": "maria", "es": "María", "de": "Maria"},
    {"en": "peter", "es": "Peter", "de": "Peter"},
]
WHEN = [
    {"en": "today", "es": "hoy", "de": "heute"},
    {"en": "tomorrow", "es": "mañana", "de": "morgen"},
    {"en": "on monday", "es": "el lunes", "de": "am Montag"},
    {"en": "on friday", "es": "el viernes", "de": "am Freitag"},
    {"en": "on saturday", "es": "el sábado", "de": "am Samstag"},
    {"en": "tonight", "es": "esta noche", "de": "heute Abend"},
    {"en": "every morning", "es": "cada mañana", "de": "jeden Morgen"},
    {"en": "next week", "es": "la próxima semana", "de": "nächste Woche"},
]
PLACES = [  # de_to: direction ("to the ..."), de_at: location ("at the ...")
    {"en": "the station", "es": "la estación", "de_to": "zum Bahnhof", "de_at": "am Bahnhof"},
    {"en": "the school", "es": "la escuela", "de_to": "zur Schule", "de_at": "in der Schule"},
    {"en": "the office", "es": "la oficina", "de_to": "ins Büro", "de_at": "im Büro"},
    {"en": "the market", "es": "el mercado", "de_to": "zum Markt", "de_at": "auf dem Markt"},
    {
        "en": "the hospital",
        "es": "el hospital",
        "de_to": "ins Krankenhaus",
        "de_at": "im Krankenhaus",
    },
    {"en": "the park", "es": "el parque", "de_to": "in den Park", "de_at": "im Park"},
    {
        "en": "the library",
        "es": "la biblioteca",
        "de_to": "in die Bibliothek",
        "de_at": "in der Bibliothek",
    },
    {"en": "the airport", "es": "el aeropuerto", "de_to": "zum Flughafen", "de_at": "am Flughafen"},
    {"en": "the beach", "es": "la playa", "de_to": "an den Strand", "de_at": "am Strand"},
    {"en": "the museum", "es": "el museo", "de_to": "ins Museum", "de_at": "im Museum"},
    {"en": "the bank", "es": "el banco", "de_to": "zur Bank", "de_at": "in der Bank"},
    {"en": "the bakery", "es": "la panadería", "de_to": "zur Bäckerei", "de_at": "in der Bäckerei"},
]
OBJECTS = [  # de: nominative, de_acc: accusative
    {"en": "the key", "es": "la llave", "de": "der Schlüssel", "de_acc": "den Schlüssel"},
    {"en": "the book", "es": "el libro", "de": "das Buch", "de_acc": "das Buch"},
    {"en": "the lamp", "es": "la lámpara", "de": "die Lampe", "de_acc": "die Lampe"},
    {"en": "the phone", "es": "el teléfono", "de": "das Telefon", "de_acc": "das Telefon"},
    {"en": "the bag", "es": "la bolsa", "de": "die Tasche", "de_acc": "die Tasche"},
    {"en": "the chair", "es": "la silla", "de": "der Stuhl", "de_acc": "den Stuhl"},
    {"en": "the cup", "es": "la taza", "de": "die Tasse", "de_acc": "die Tasse"},
    {"en": "the computer", "es": "el ordenador", "de": "der Computer", "de_acc": "den Computer"},
    {
        "en": "the umbrella",
        "es": "el paraguas",
        "de": "der Regenschirm",
        "de_acc": "den Regenschirm",
    },
    {"en": "the ticket", "es": "el billete", "de": "die Fahrkarte", "de_acc": "die Fahrkarte"},
    {"en": "the letter", "es": "la carta", "de": "der Brief", "de_acc": "den Brief"},
]
HOME_ROOMS = [  # de: "in the ..." with the contraction German requires
    {"en": "the kitchen", "es": "la cocina", "de": "in der Küche"},
    {"en": "the bedroom", "es": "el dormitorio", "de": "im Schlafzimmer"},
    {"en": "the living room", "es": "el salón", "de": "im Wohnzimmer"},
    {"en": "the garden", "es": "el jardín", "de": "im Garten"},
    {"en": "the garage", "es": "el garaje", "de": "in der Garage"},
    {"en": "the bathroom", "es": "el baño", "de": "im Badezimmer"},
]
QUALITIES = [  # Spanish adjectives that do not inflect for gender
    {"en": "big", "es": "grande", "de": "groß"},
    {"en": "green", "es": "verde", "de": "grün"},
    {"en": "blue", "es": "azul", "de": "blau"},
    {"en": "grey", "es": "gris", "de": "grau"},
    {"en": "very important", "es": "muy importante", "de": "sehr wichtig"},
    {"en": "too big", "es": "demasiado grande", "de": "zu groß"},
    {"en": "easy to find", "es": "fácil de encontrar", "de": "leicht zu finden"},
]
FOODS = [  # es: with the article "gustar" needs, es_bare: without it
    {"en": "coffee", "es": "el café", "es_bare": "café", "de": "Kaffee"},
    {"en": "tea", "es": "el té", "es_bare": "té", "de": "Tee"},
    {"en": "bread", "es": "el pan", "es_bare": "pan", "de": "Brot"},
    {"en": "soup", "es": "la sopa", "es_bare": "sopa", "de": "Suppe"},
    {"en": "chocolate", "es": "el chocolate", "es_bare": "chocolate", "de": "Schokolade"},
    {"en": "fish", "es": "el pescado", "es_bare": "pescado", "de": "Fisch"},
    {"en": "cheese", "es": "el queso", "es_bare": "queso", "de": "Käse"},
    {"en": "rice", "es": "el arroz", "es_bare": "arroz", "de": "Reis"},
    {"en": "fruit", "es": "la fruta", "es_bare": "fruta", "de": "Obst"},
]
CLOCK = [
    {"en": f"at {_ONES[h]}", "es": ("a la una" if h == 1 else f"a las {es}"), "de": f"um {de} Uhr"}
    for h, es, de in zip(
        range(1, 13),
        [
            "una",
            "dos",
            "tres",
            "cuatro",
            "cinco",
            "seis",
            "siete",
            "ocho",
            "nueve",
            "diez",
            "once",
            "doce",
        ],
        [
            "ein",
            "zwei",
            "drei",
            "vier",
            "fünf",
            "sechs",
            "sieben",
            "acht",
            "neun",
            "zehn",
            "elf",
            "zwölf",
        ],
        strict=True,
    )
]
