"""Opinions for sentiment (``asc``): reviews, reactions and complaints whose words alone carry a
positive, negative or neutral sentiment, in the template notation of :mod:`.grammar`.

The sentiment is a property of the content, not of the voice: the planner speaks an opinion in
a matching style only part of the time (:data:`MATCHING_STYLES`), so a model must read the words
and cannot learn sentiment from prosody (emotion, ``er``) alone.
"""

from __future__ import annotations

SENTIMENTS = ("positive", "negative", "neutral")

REVIEWED = [
    "hotel room",
    "pizza",
    "new phone",
    "film",
    "concert",
    "laptop",
    "coffee",
    "haircut",
    "delivery",
    "headphones",
    "book",
    "meal",
    "train ride",
    "camera",
    "jacket",
    "tour",
]
VENUES = ["restaurant", "hotel", "shop", "cafe", "gym", "cinema", "garage", "clinic", "bakery"]

OPINIONS: dict[str, list[str]] = {
    "positive": [
        "i (really|absolutely) (love|loved) the {reviewed}",
        "the {reviewed} was (great|excellent|wonderful|fantastic|amazing)",
        "(what a|such a) (great|lovely|brilliant) {reviewed}",
        "the staff at the {venue} were (so|very) (friendly|helpful|kind)",
        "i would (definitely|happily) recommend the {venue} [to {person}]",
        "the {reviewed} works perfectly [and i am very happy]",
        "thank you so much the {reviewed} arrived early",
        "best {reviewed} i have had in years",
        "i am (really|so) (pleased|delighted) with the {reviewed}",
    ],
    "negative": [
        "i (really|absolutely) (hate|hated) the {reviewed}",
        "the {reviewed} was (terrible|awful|disappointing|horrible)",
        "(what a|such a) (bad|poor|dreadful) {reviewed}",
        "the staff at the {venue} were (so|very) (rude|unhelpful|careless)",
        "i would never recommend the {venue} [to anyone]",
        "the {reviewed} broke after {small} days",
        "i want a refund the {reviewed} is (useless|broken)",
        "worst {reviewed} i have had in years",
        "i am (really|so) (annoyed|disappointed) with the {reviewed}",
    ],
    "neutral": [
        "the {reviewed} arrived {date}",
        "the {venue} opens at {time}",
        "i bought the {reviewed} {date}",
        "the {reviewed} comes in (black|white|grey|blue)",
        "the {venue} is next to the {shop}",
        "i used the {reviewed} (once|twice) (this week|last week)",
        "the {reviewed} costs {number} (dollars|euros|pounds)",
        "the {venue} is (on|near) the (main|high|station) street",
        "we went to the {venue} {date}",
    ],
}
"""Sentiment -> templates; every neutral template states a fact without judging it."""

MATCHING_STYLES: dict[str, tuple[str, ...]] = {
    "positive": ("happy",),
    "negative": ("angry", "sad"),
    "neutral": ("neutral", "calm"),
}
"""Speaking styles (:data:`~speechllm.synth.voices.STYLES`) that match a sentiment."""
