"""Benchmark data: paraphrase queries that share no content word with their memory, and
generated memories for scale runs."""

from __future__ import annotations

import random
import re

#: (memory, a query that asks for it in other words). Each query shares no content word with
#: its memory (checked by :func:`shared_content_words`); the other memories are distractors.
PAIRS: list[tuple[str, str]] = [
    ("I am allergic to peanuts", "food I must avoid"),
    ("My sister Carol lives in Lisbon", "where is my sibling based"),
    ("The car insurance renewal is due in March", "when should the vehicle policy be extended"),
    ("I prefer green tea to coffee", "favourite hot beverage"),
    ("My passport expires next October", "travel document validity"),
    ("The dentist appointment is on Tuesday morning", "when do I see the doctor for my teeth"),
    ("Our wifi password is taped under the router", "how to get the internet login"),
    ("I parked on level three of the garage", "where did I leave the vehicle"),
    ("Tom's birthday is on the fourth of July", "when was my friend born"),
    ("The boiler service is booked for May", "heating maintenance date"),
    ("I run five kilometres every Saturday", "weekend exercise routine"),
    ("The spare house key is with the neighbour", "who holds a copy for the front door"),
    ("My blood type is O negative", "medical detail for a transfusion"),
    ("I am learning Spanish on Duolingo", "which language am I studying"),
    ("The landlord wants the rent by the first", "monthly apartment payment deadline"),
    ("I take ibuprofen for my back pain", "medicine for spine aches"),
    ("My daughter's school starts at eight fifteen", "when do classes begin for my kid"),
    ("We are flying to Tokyo in April", "upcoming trip to Japan"),
    ("The gym membership costs forty euros", "fitness club fee"),
    ("I left my umbrella at the office", "where is my rain gear"),
    ("My manager is called Priya", "who is my boss"),
    ("The cat needs her vaccine next week", "pet shots appointment"),
    ("I promised to call grandma on Sunday", "phone my grandmother at the weekend"),
    ("The electricity bill went up this winter", "power costs rose during the cold months"),
    ("My favourite band is Radiohead", "music group I love most"),
    ("The laptop warranty ends in December", "computer guarantee expiry"),
    ("I am vegetarian", "diet without meat"),
    ("Our anniversary dinner is at the Italian place", "celebration meal restaurant"),
    ("The plumber fixed the kitchen sink leak", "who repaired the dripping tap"),
    ("My bike was stolen last spring", "bicycle theft"),
    ("The mortgage rate is fixed until 2028", "home loan interest"),
    ("I sleep badly when I drink wine", "alcohol ruins my rest"),
    ("The book club meets on Thursdays", "reading group schedule"),
    ("My shoe size is forty three", "what footwear fits me"),
    ("Dad had knee surgery in June", "father's operation on his leg"),
    ("The garden hose is in the shed", "where to find watering equipment"),
    ("I owe Sam twenty pounds", "money I must repay to a friend"),
    ("The train to work leaves at seven", "morning commute departure"),
    ("My doctor said to lower my cholesterol", "physician advice about fat levels"),
    ("The printer ink is running low", "cartridge needs replacing soon"),
]

DISTRACTORS: list[str] = [
    "The quarterly report is due on Friday",
    "I need to buy oat milk",
    "The conference in Berlin was interesting",
    "Our team uses Python and PostgreSQL",
    "The neighbours have a new dog",
    "I watched a documentary about whales",
    "The project deadline moved to next month",
    "My phone screen cracked yesterday",
    "We repainted the living room blue",
    "The supermarket closes at nine",
    "I should clean the windows",
    "The meeting with marketing went well",
    "My cousin got married in Porto",
    "The lawn mower is broken",
    "I am reading a novel by Ishiguro",
    "The bus was late again",
    "We ordered pizza on Friday",
    "The kids love the playground",
    "My headphones need charging",
    "The river flooded the footpath",
]

#: Distractors that share a word with one of the queries (and nothing else): full-text search
#: finds them, so a fusion that trusts the text ranking too much puts them first.
TRAPS: list[str] = [
    "The food court closes at ten",
    "The app is based on open source",
    "It was a hot day at the beach",
    "Scan the document for the accountant",
    "The internet was slow at the hotel",
    "Leave the bins out on Wednesday",
    "A friend recommended a podcast",
    "Set a date for the team offsite",
    "The new routine at work is confusing",
    "She is studying architecture",
    "The grant deadline was extended",
    "The medicine cabinet needs tidying",
    "The upcoming election is in May",
    "The club organises a quiz night",
    "Heavy rain is forecast for Monday",
    "The boss level in the game is hard",
    "The pet shop has rabbits",
    "The music at the wedding was loud",
    "The computer lab is on the second floor",
    "The meat was overcooked at the barbecue",
    "Bicycle lanes were added downtown",
    "The library loan is due back",
    "The bus schedule changed in June",
    "Morning yoga helps me focus",
]

_STOP = set(
    [
        "a",
        "an",
        "the",
        "i",
        "me",
        "my",
        "we",
        "our",
        "you",
        "your",
        "he",
        "she",
        "his",
        "her",
        "it",
        "its",
        "they",
        "them",
        "their",
        "is",
        "am",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "to",
        "of",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "as",
        "and",
        "or",
        "but",
        "not",
        "no",
        "do",
        "does",
        "did",
        "have",
        "has",
        "had",
        "will",
        "would",
        "should",
        "can",
        "could",
        "must",
        "may",
        "might",
        "this",
        "that",
        "these",
        "those",
        "there",
        "here",
        "what",
        "when",
        "where",
        "who",
        "whom",
        "which",
        "how",
        "why",
        "so",
        "if",
        "than",
        "then",
        "too",
        "very",
        "just",
        "about",
        "into",
        "over",
        "under",
        "up",
        "down",
        "out",
        "off",
        "again",
        "next",
        "last",
        "each",
        "every",
        "some",
        "any",
        "all",
        "most",
        "more",
        "much",
        "many",
        "few",
        "own",
        "same",
        "other",
        "such",
        "only",
    ]
)


def _stem(word: str) -> str:
    for suffix in ("ings", "ing", "ies", "ied", "es", "ed", "s", "'s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    return {_stem(w) for w in re.findall(r"[a-z']+", text.lower()) if w not in _STOP}


def shared_content_words(memory: str, query: str) -> set[str]:
    return content_words(memory) & content_words(query)


_SUBJECTS = [
    "I",
    "My sister",
    "Tom",
    "Our team",
    "My manager",
    "Grandma",
    "The kids",
    "We",
    "Dad",
    "Priya",
]
_VERBS = [
    "booked",
    "cancelled",
    "moved",
    "paid for",
    "forgot",
    "planned",
    "finished",
    "started",
    "postponed",
    "confirmed",
]
_OBJECTS = [
    "the dentist visit",
    "the flight to Rome",
    "the gym class",
    "the car service",
    "the team lunch",
    "the piano lesson",
    "the tax return",
    "the birthday party",
    "the hotel room",
    "the boiler check",
    "the yoga retreat",
    "the school trip",
    "the vet appointment",
    "the concert tickets",
    "the kitchen repair",
    "the book club",
    "the train tickets",
    "the project review",
    "the garden work",
    "the language course",
]
_WHEN = [
    "on Monday",
    "on Tuesday",
    "on Friday",
    "next week",
    "in March",
    "in July",
    "tomorrow",
    "last night",
    "this weekend",
    "in the morning",
    "at noon",
    "after work",
    "before lunch",
    "in December",
    "at the end of the month",
]
_WHERE = [
    "in Lisbon",
    "in Berlin",
    "at home",
    "at the office",
    "downtown",
    "near the station",
    "online",
    "in Porto",
    "at the community centre",
    "by the river",
]


def synthetic_memories(n: int, seed: int = 0) -> list[str]:
    """``n`` generated memory-like sentences (10 x 10 x 20 x 15 x 10 = 300,000 combinations)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        out.append(
            f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} "
            f"{rng.choice(_WHEN)} {rng.choice(_WHERE)}"
        )
    return out
