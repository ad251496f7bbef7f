"""Memory search defaults and sources: the page's default minimum similarity is measured
here on the default embedder (wordllama), and a memory the agent stored names the conversation
it came from."""

from __future__ import annotations

import numpy as np

from jarvis.bootstrap import Services
from jarvis.llm.embedders import default_embedder
from jarvis.services.memory.service import default_min_similarity
from tests import factories

# (memory, a question it answers): every memory unrelated to every other pair's question.
PAIRS = [
    ("I am allergic to peanuts", "food I must avoid"),
    ("My sister Anna lives in Berlin", "where does my sister live"),
    ("The project deadline is Friday", "when is the deadline"),
    ("I prefer window seats on flights", "which seat do I like on a plane"),
    ("My car is a blue Volvo", "what car do I drive"),
    ("I run 5 km every morning", "my exercise routine"),
    ("I like jazz music", "what music do I enjoy"),
    ("The dentist appointment is on Tuesday", "when do I see the dentist"),
    ("My favourite food is lasagne", "what dish do I love"),
    ("The ferry leaves at 7", "when does the boat depart"),
    ("My passport expires in March", "when must I renew my passport"),
    ("Our cat is called Tom", "what is the cat's name"),
    ("I work as a nurse at the city hospital", "what is my job"),
    ("My daughter's birthday is on June 3", "when is my daughter's birthday"),
    ("I speak Spanish and German", "which languages do I know"),
    ("The boiler service is booked for May", "when is the heating checked"),
    ("I am vegetarian", "do I eat meat"),
    ("My bank is Nordea", "which bank do I use"),
    ("I have a meeting with Paul on Monday", "what is on Monday"),
    ("I park in the garage on Elm street", "where is my parking spot"),
]


def test_the_default_minimum_similarity_keeps_related_memories_and_drops_unrelated_ones() -> None:
    embedder = default_embedder("wordllama")
    floor = default_min_similarity(embedder.model_name)
    assert floor == 0.12

    def unit(texts: list[str]) -> np.ndarray:
        vectors = np.array(embedder.embed(texts), dtype=float)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    memories = unit([m for m, _q in PAIRS])
    questions = unit([q for _m, q in PAIRS])
    scores = questions @ memories.T
    related = np.diag(scores)
    unrelated = scores[~np.eye(len(PAIRS), dtype=bool)]
    # Related memories stay listed (all but one of twenty) ...
    assert (related >= floor).sum() >= len(PAIRS) - 1
    # ... and at least 95 % of unrelated ones (which sit around 0) are no longer listed.
    assert float(np.median(unrelated)) < 0.05
    assert (unrelated < floor).mean() >= 0.95


def test_a_memory_the_agent_stored_names_its_conversation(services: Services) -> None:
    alice = factories.user(services.uow, "alice")
    chat = services.conversations.create_default(alice, title="Holiday plans")
    services.runs.start(alice, chat.id, "remember that the ferry leaves at 7")
    services.memory.store(alice, "Added by hand")
    by_content = {m.content.lower(): m for m in services.memory.browse(alice)}
    ferry = next(m for c, m in by_content.items() if "ferry" in c)
    assert (ferry.conversation_id, ferry.conversation_title) == (chat.id, "Holiday plans")
    assert by_content["added by hand"].conversation_id is None
    [hit] = services.memory.search(alice, "when does the boat leave", k=1)
    assert (hit.conversation_id, hit.conversation_title) == (chat.id, "Holiday plans")

    # Once the conversation is deleted, the memory stays and names no conversation.
    services.conversations.delete(alice, chat.id)
    [hit] = services.memory.search(alice, "when does the boat leave", k=1)
    assert hit.conversation_id is None and hit.source is not None
