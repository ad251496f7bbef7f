"""Knowledge graph: entities and relations, import, search, neighbourhoods and paths.

* :mod:`.views` – the dataclasses returned to pages, tools and the CLI;
* :mod:`.validation` – field rules (names, types, weights, dates, properties);
* :mod:`.importer` – CSV / JSON parsing and validation into typed rows (pure);
* :mod:`.paths` – bidirectional breadth-first shortest path over repository steps (pure);
* :mod:`.queries` – :class:`KnowledgeGraphQueries`: search, details, neighbourhoods, paths;
* :mod:`.service` – :class:`KnowledgeGraphService`: the queries plus every write (entities,
  relations, the agent's facts, imports). Pages and tools use this one object.
"""

from __future__ import annotations

from jarvis.services.knowledge_graph.importer import MAX_IMPORT_ROWS
from jarvis.services.knowledge_graph.paths import PATH_VISIT_LIMIT
from jarvis.services.knowledge_graph.queries import (
    DEFAULT_NODE_LIMIT,
    MAX_DEPTH,
    MAX_EXPANDED,
    MAX_NODE_LIMIT,
    MAX_PATH_DEPTH,
    KnowledgeGraphQueries,
)
from jarvis.services.knowledge_graph.service import KnowledgeGraphService
from jarvis.services.knowledge_graph.validation import MAX_NAME, MAX_TYPE
from jarvis.services.knowledge_graph.views import (
    Direction,
    EntityDetails,
    EntityFacts,
    EntityHit,
    EntityView,
    FactView,
    GraphNode,
    GraphStats,
    ImportFormat,
    ImportReport,
    Neighbourhood,
    PathResult,
    RejectedRow,
    RelationView,
    SearchMode,
)

__all__ = [
    "DEFAULT_NODE_LIMIT",
    "MAX_DEPTH",
    "MAX_EXPANDED",
    "MAX_IMPORT_ROWS",
    "MAX_NAME",
    "MAX_NODE_LIMIT",
    "MAX_PATH_DEPTH",
    "MAX_TYPE",
    "PATH_VISIT_LIMIT",
    "Direction",
    "EntityDetails",
    "EntityFacts",
    "EntityHit",
    "EntityView",
    "FactView",
    "GraphNode",
    "GraphStats",
    "ImportFormat",
    "ImportReport",
    "KnowledgeGraphQueries",
    "KnowledgeGraphService",
    "Neighbourhood",
    "PathResult",
    "RejectedRow",
    "RelationView",
    "SearchMode",
]
