"""The demo knowledge seed: hundreds of entities with hubs, typed relations, memories."""

from __future__ import annotations

import random
from collections.abc import Callable

from jarvis.bootstrap import build_services, usage_maintenance
from jarvis.config import Settings
from tests import factories


def test_seed_knowledge_builds_a_graph_with_hubs_and_memories(
    fresh_database: Callable[[], Settings], fast_hasher
) -> None:  # type: ignore[no-untyped-def]
    s = fresh_database()
    services = build_services(s, hasher=fast_hasher)
    try:
        me, other = (factories.user(services.uow, f"demo-k{i}") for i in range(2))
        with usage_maintenance(s) as maintenance:
            out = maintenance.seed_knowledge([me.user_id, other.user_id], random.Random(3))
        assert out["entities"] >= 2 * 250 and out["relations"] >= 2 * 600 and out["memories"] == 80
        stats = services.knowledge_graph.stats(me)
        assert {"knows", "works_at", "lives_in", "works_on"} <= set(stats["relation_types"])
        [hit] = [
            h
            for h in services.knowledge_graph.search_entities(me, "Me", mode="name")
            if h.entity.name == "Me"
        ]
        hood = services.knowledge_graph.neighbourhood(me, hit.entity.id, depth=2, node_limit=100)
        assert hood.truncated  # "Me" is a hub
        assert len(services.memory.search(me, "birthday", k=3)) == 3
    finally:
        services.engine.dispose()
