"""Tiny training data for the toy reader, checker and reranker of the unit tests.

The session fixtures in tests/unit/conftest.py write these files and train each toy model once
per session; tests/unit/smallmodels (the models) and tests/unit/training (their training) share
them. Tests import the data from here to ask questions about it.
"""

from __future__ import annotations

import json
from pathlib import Path

# -- the reader: four made-up paragraphs, four questions each ----------------------------------
READER_PARAGRAPHS: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "The Zorblat Bridge was opened in 1931 by mayor Helen Crane. It spans the Quill River "
        "and is 420 metres long. Engineers painted it bright orange in 1975.",
        [
            ("When was the Zorblat Bridge opened?", "1931"),
            ("Who opened the Zorblat Bridge?", "Helen Crane"),
            ("Which river does the bridge span?", "Quill River"),
            ("What colour was the bridge painted?", "bright orange"),
        ],
    ),
    (
        "Marisol Dune grew up in the port town of Vello. She studied chemistry at Arden "
        "University and later discovered the enzyme lumicase. In 2004 she won the Tessel Prize.",
        [
            ("Where did Marisol Dune grow up?", "Vello"),
            ("What did Marisol Dune study?", "chemistry"),
            ("Which enzyme did she discover?", "lumicase"),
            ("Which prize did she win in 2004?", "the Tessel Prize"),
        ],
    ),
    (
        "The Gorran festival takes place every August in the hill village of Pettle. Visitors "
        "eat smoked trout and listen to brass bands. The festival was founded by Owen Marsh.",
        [
            ("When does the Gorran festival take place?", "every August"),
            ("Where does the Gorran festival take place?", "Pettle"),
            ("What do visitors eat at the festival?", "smoked trout"),
            ("Who founded the festival?", "Owen Marsh"),
        ],
    ),
    (
        "Kestrel Labs builds small satellites in Norrin. Its first satellite, Wren-1, launched "
        "in 2012 and weighed 9 kilograms. The company employs about 300 people.",
        [
            ("Where does Kestrel Labs build satellites?", "Norrin"),
            ("What was the name of the first satellite?", "Wren-1"),
            ("How much did Wren-1 weigh?", "9 kilograms"),
            ("How many people does the company employ?", "about 300"),
        ],
    ),
]


def reader_squad(paragraphs: list[tuple[str, list[tuple[str, str]]]]) -> dict[str, object]:
    """SQuAD 1.1 JSON: one article per paragraph."""
    data = []
    for i, (context, qas) in enumerate(paragraphs):
        data.append(
            {
                "title": f"article-{i}",
                "paragraphs": [
                    {
                        "context": context,
                        "qas": [
                            {
                                "id": f"{i}-{j}",
                                "question": q,
                                "answers": [{"text": a, "answer_start": context.index(a)}],
                            }
                            for j, (q, a) in enumerate(qas)
                        ],
                    }
                ],
            }
        )
    return {"version": "1.1", "data": data}


# -- the checker: twelve made-up towns (HaluEval rows; SQuAD questions on the first six) -------
CITIES = [
    ("Arlen", "Brevia", 1742, "salt"),
    ("Dunmore", "Cestia", 1815, "wool"),
    ("Fenwick", "Galdor", 1901, "copper"),
    ("Harrow", "Istria", 1688, "timber"),
    ("Jorvik", "Kemland", 1350, "amber"),
    ("Lindell", "Morvia", 1777, "glass"),
    ("Norcross", "Ostland", 1820, "tea"),
    ("Pellham", "Quarro", 1599, "silk"),
    ("Rosslyn", "Sarnia", 1933, "steel"),
    ("Tamsin", "Ulvard", 1466, "wine"),
    ("Varden", "Wexmoor", 1888, "coal"),
    ("Yarrow", "Zeland", 1710, "grain"),
]


def city_knowledge(city: str, country: str, year: int, good: str) -> str:
    """The passage about one of :data:`CITIES`."""
    return (
        f"{city} is a town in {country}. It was founded in {year} by merchants. "
        f"The town is known for its {good} trade."
    )


def halueval_rows() -> list[dict[str, str]]:
    rows = []
    for city, country, year, good in CITIES:
        rows.append(
            {
                "knowledge": city_knowledge(city, country, year, good),
                "question": f"When was {city} founded?",
                "right_answer": f"{city} was founded in {year}.",
                "hallucinated_answer": f"{city} was built by Zorblax aliens during a comet storm.",
            }
        )
    return rows


def checker_squad() -> dict[str, object]:
    """SQuAD 1.1 JSON: the first six cities, three questions each."""
    paragraphs = []
    for city, country, year, good in CITIES[:6]:
        context = city_knowledge(city, country, year, good)
        paragraphs.append(
            {
                "context": context,
                "qas": [
                    {
                        "id": f"{city}-year",
                        "question": f"When was {city} founded?",
                        "answers": [{"text": str(year), "answer_start": context.index(str(year))}],
                    },
                    {
                        "id": f"{city}-good",
                        "question": f"What is {city} known for?",
                        "answers": [{"text": f"{good} trade", "answer_start": context.index(good)}],
                    },
                    {
                        "id": f"{city}-country",
                        "question": f"Where is {city}?",
                        "answers": [{"text": country, "answer_start": context.index(country)}],
                    },
                ],
            }
        )
    return {"version": "1.1", "data": [{"title": "Towns", "paragraphs": paragraphs}]}


# -- the reranker: sixteen look-alike market towns ---------------------------------------------
TOWNS = [
    "Avalon",
    "Brindle",
    "Corvale",
    "Dunmore",
    "Elsworth",
    "Farrow",
    "Glenhaven",
    "Harlow",
    "Ivybridge",
    "Jasper",
    "Kestrel",
    "Lindon",
    "Marwick",
    "Northam",
    "Oakridge",
    "Pembury",
]


FOUNDERS = [
    "Alice Moreau",
    "Boris Lindqvist",
    "Carla Nunez",
    "Dmitri Volkov",
    "Eleanor Price",
    "Farid Haddad",
    "Greta Olsen",
    "Hugo Brandt",
]


GOODS = [
    "glass lanterns",
    "wool blankets",
    "copper kettles",
    "rye bread",
    "silk ribbons",
    "clay pipes",
    "oak barrels",
    "paper kites",
]


def town_paragraph(i: int) -> str:
    town, founder, goods = TOWNS[i], FOUNDERS[i % 8], GOODS[(i * 3) % 8]
    return (
        f"{town} is a market town on the northern coast. It was founded in {1500 + 13 * i} by "
        f"{founder}, a merchant from the south. Today {town} is best known for its {goods}, "
        f"which are sold at a weekly fair. The town hall of {town} was rebuilt after a fire."
    )


def write_town_squad(path: Path) -> Path:
    """A SQuAD-format file: 16 look-alike paragraphs, three questions each."""
    data = []
    for i, town in enumerate(TOWNS):
        ctx = town_paragraph(i)
        founder, goods, year = FOUNDERS[i % 8], GOODS[(i * 3) % 8], str(1500 + 13 * i)
        qas = [
            {
                "id": f"{i}a",
                "question": f"Who founded {town}?",
                "answers": [{"text": founder, "answer_start": ctx.index(founder)}],
            },
            {
                "id": f"{i}b",
                "question": f"What is {town} best known for?",
                "answers": [{"text": goods, "answer_start": ctx.index(goods)}],
            },
            {
                "id": f"{i}c",
                "question": f"In which year was {town} founded?",
                "answers": [{"text": year, "answer_start": ctx.index(year)}],
            },
        ]
        data.append({"title": town, "paragraphs": [{"context": ctx, "qas": qas}]})
    path.write_text(json.dumps({"version": "1.1", "data": data}), encoding="utf-8")
    return path
