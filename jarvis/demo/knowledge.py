"""Demo knowledge: a knowledge graph with hubs and typed relations, and memories, per user.

Generated for ``jarvis demo seed`` (``UsageMaintenance.seed_knowledge`` writes the rows on the
owner connection). Each user gets about 300 entities (people, companies, cities, projects,
topics), about 900 relations with a few hubs ("Me", the employer, the home city, popular
topics), some job changes carrying ``valid_from`` / ``valid_to``, and 40 memories embedded with
the default embedder (wordllama).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jarvis.llm.embedders import Embedder

FIRST = [
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Margaret",
    "Dennis",
    "Barbara",
    "Ken",
    "Frances",
    "Edsger",
    "Radia",
    "Donald",
    "Hedy",
    "Tim",
    "Katherine",
    "John",
    "Sophie",
    "Yusuf",
    "Mei",
    "Ravi",
    "Olga",
    "Diego",
    "Amara",
    "Lars",
    "Chiara",
    "Kenji",
    "Zanele",
    "Noor",
]
LAST = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Ritchie",
    "Liskov",
    "Thompson",
    "Allen",
    "Dijkstra",
    "Perlman",
    "Knuth",
    "Lamarr",
    "Berners-Lee",
    "Johnson",
    "Backus",
    "Wilson",
    "Okafor",
    "Chen",
    "Iyer",
    "Petrova",
    "Alvarez",
    "Mensah",
    "Nilsson",
    "Rossi",
]
COMPANIES = [
    "Acme Corp",
    "Globex",
    "Initech",
    "Umbrella Labs",
    "Stark Industries",
    "Wayne Tech",
    "Hooli",
    "Pied Piper",
    "Vandelay Imports",
    "Soylent",
    "Tyrell",
    "Cyberdyne",
    "Wonka Industries",
    "Aperture Science",
    "Monarch Solutions",
    "Blue Sun",
    "Oscorp",
    "Nakatomi Trading",
    "Gringotts",
    "Dunder Mifflin",
    "Massive Dynamic",
    "Virtucon",
    "Prestige Worldwide",
    "Zorg Industries",
    "Bluth Company",
    "Genco Olive Oil",
    "Sirius Cybernetics",
    "Yoyodyne",
    "Weyland Corp",
    "Octan",
]
CITIES = [
    "Lisbon",
    "Porto",
    "Berlin",
    "Munich",
    "Paris",
    "Lyon",
    "Madrid",
    "Barcelona",
    "Rome",
    "Milan",
    "Amsterdam",
    "Rotterdam",
    "Vienna",
    "Zurich",
    "Geneva",
    "Oslo",
    "Stockholm",
    "Copenhagen",
    "Helsinki",
    "Dublin",
    "London",
    "Edinburgh",
    "Prague",
    "Warsaw",
    "Athens",
]
TOPICS = [
    "machine learning",
    "databases",
    "graph theory",
    "compilers",
    "distributed systems",
    "cryptography",
    "user research",
    "accessibility",
    "observability",
    "pricing",
    "marketing",
    "hiring",
    "budgeting",
    "climbing",
    "cooking",
    "photography",
    "jazz",
    "running",
    "gardening",
    "chess",
    "woodworking",
    "birdwatching",
    "travel",
    "sailing",
    "vector search",
    "postgres",
    "streamlit",
    "type systems",
    "security",
    "privacy",
]
PROJECTS = [
    "Project Apollo",
    "Project Gemini",
    "Project Mercury",
    "Nightingale",
    "Blue Harbor",
    "Orchid",
    "Kestrel",
    "Lighthouse",
    "Atlas",
    "Beacon",
    "Compass",
    "Driftwood",
    "Ember",
    "Falcon",
    "Glacier",
    "Harbor",
    "Iris",
    "Juniper",
    "Keystone",
    "Lantern",
    "Meridian",
    "Nimbus",
    "Oasis",
    "Pioneer",
    "Quartz",
    "Redwood",
    "Summit",
    "Tundra",
    "Umbra",
    "Vertex",
    "Willow",
    "Xenon",
    "Yarrow",
    "Zephyr",
    "Aurora",
    "Basalt",
    "Cobalt",
    "Delta",
    "Echo",
    "Fjord",
]
MEMORY_TEMPLATES = [
    "{p} prefers email over phone calls.",
    "{p} is allergic to peanuts; remember for the team dinner.",
    "Lunch with {p} next Thursday near {c}.",
    "{p} recommended a book about {t}.",
    "The {j} kickoff moved to the first Monday of next month.",
    "{p} works at {o} and knows a lot about {t}.",
    "Birthday of {p} is in {m}.",
    "I promised {p} feedback on the {j} design doc.",
    "Trip to {c} planned for {m}; book the hotel early.",
    "Remember to renew the {o} contract before {m}.",
    "{p} moved from {c} to {c2} last year.",
    "Ask {p} for an introduction to someone at {o}.",
]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _graph_for(
    user_id: uuid.UUID, rng: random.Random, now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    entities: list[dict[str, Any]] = []
    relations: list[dict[str, Any]] = []

    def entity(name: str, type_: str, description: str = "") -> uuid.UUID:
        eid = _uuid(rng)
        entities.append(
            {
                "id": eid,
                "user_id": user_id,
                "name": name,
                "type": type_,
                "description": description,
                "properties": {},
            }
        )
        return eid

    def relate(a: uuid.UUID, b: uuid.UUID, type_: str, **extra: Any) -> None:
        relations.append(
            {
                "id": _uuid(rng),
                "user_id": user_id,
                "source_id": a,
                "target_id": b,
                "type": type_,
                "weight": round(rng.uniform(0.3, 1.0), 2),
                "properties": {},
                "valid_from": extra.get("valid_from"),
                "valid_to": extra.get("valid_to"),
            }
        )

    me = entity("Me", "person", "The account owner.")
    cities = {c: entity(c, "city") for c in CITIES}
    companies = {
        c: entity(c, "company", f"A company based in {rng.choice(CITIES)}.") for c in COMPANIES
    }
    topics = {t: entity(t.title(), "topic") for t in TOPICS}
    projects = {p: entity(p, "project") for p in PROJECTS}
    names = sorted({f"{rng.choice(FIRST)} {rng.choice(LAST)}" for _ in range(220)})[:180]
    people = {n: entity(n, "person") for n in names}

    home, employer = rng.choice(CITIES), rng.choice(COMPANIES)
    relate(me, cities[home], "lives_in")
    relate(me, companies[employer], "works_at", valid_from=now - timedelta(days=900))
    previous = rng.choice([c for c in COMPANIES if c != employer])
    relate(
        me,
        companies[previous],
        "works_at",
        valid_from=now - timedelta(days=2500),
        valid_to=now - timedelta(days=900),
    )
    for name, pid in people.items():
        if rng.random() < 0.4:
            relate(me, pid, "knows")  # "Me" is a hub
        works = employer if rng.random() < 0.25 else rng.choice(COMPANIES)  # the employer is a hub
        if rng.random() < 0.2:
            old = rng.choice(COMPANIES)
            switched = now - timedelta(days=rng.randint(60, 1500))
            relate(
                pid,
                companies[old],
                "works_at",
                valid_from=switched - timedelta(days=rng.randint(300, 2000)),
                valid_to=switched,
            )
            relate(pid, companies[works], "works_at", valid_from=switched)
        else:
            relate(pid, companies[works], "works_at")
        relate(pid, cities[home if rng.random() < 0.3 else rng.choice(CITIES)], "lives_in")
        for friend in rng.sample(names, rng.randint(0, 3)):
            if friend != name:
                relate(pid, people[friend], "knows")
        for topic in rng.sample(TOPICS, rng.randint(0, 2)):
            relate(pid, topics[topic], "interested_in")
    for _company, cid in companies.items():
        relate(cid, cities[rng.choice(CITIES)], "located_in")
        if rng.random() < 0.2:
            relate(cid, companies[rng.choice(COMPANIES)], "partner_of")
    for _project, jid in projects.items():
        relate(jid, companies[rng.choice(COMPANIES)], "owned_by")
        for topic in rng.sample(TOPICS[:12], 2):
            relate(jid, topics[topic], "about")
        for member in rng.sample(names, rng.randint(2, 6)):
            relate(people[member], jid, "works_on")
        if rng.random() < 0.5:
            relate(me, jid, "works_on")
    for tid in topics.values():
        relate(tid, topics[rng.choice(TOPICS)], "related_to")

    memories = []
    for i in range(40):
        text = rng.choice(MEMORY_TEMPLATES).format(
            p=rng.choice(names),
            c=rng.choice(CITIES),
            c2=rng.choice(CITIES),
            t=rng.choice(TOPICS),
            j=rng.choice(PROJECTS),
            o=rng.choice(COMPANIES),
            m=rng.choice(MONTHS),
        )
        memories.append(
            {
                "id": _uuid(rng),
                "user_id": user_id,
                "content": text,
                "created_at": now - timedelta(days=rng.uniform(0, 90), minutes=i),
                "metadata": {"demo": True},
            }
        )
    return entities, relations, memories


@dataclass(frozen=True, slots=True)
class KnowledgeRows:
    """One user's generated graph and memories, embedded, as column -> value rows."""

    entities: list[dict[str, object]]
    relations: list[dict[str, object]]
    memories: list[dict[str, object]]


def knowledge_for(
    user_id: uuid.UUID, rng: random.Random, now: datetime, embedder: Embedder
) -> KnowledgeRows:
    """A knowledge graph with hubs and memories for one user, embedded with ``embedder``."""
    entities, relations, memories = _graph_for(user_id, rng, now)
    vectors = embedder.embed([f"{e['name']}. {e['description']}".strip() for e in entities])
    for e, vec in zip(entities, vectors, strict=True):
        e.update(
            embedding=vec,
            embedding_model=embedder.model_name,
            created_at=now,
            updated_at=now,
        )
    mem_vectors = embedder.embed([m["content"] for m in memories])
    for m, vec in zip(memories, mem_vectors, strict=True):
        m.update(embedding=vec, embedding_model=embedder.model_name)
    for r in relations:
        r["created_at"] = now
    return KnowledgeRows(entities, relations, memories)
