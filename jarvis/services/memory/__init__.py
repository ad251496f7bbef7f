"""The memory capability: store, search (by meaning, exact or per-user HNSW), browse, move a
user between embedders, keep heavy users' indexes (see each module)."""

from jarvis.services.memory.embeddings import (
    EmbeddingMaintenance,
    OpenAIKeyLookup,
    UserEmbedders,
    move_user,
)
from jarvis.services.memory.indexes import ANN_MIN_ROWS, MemoryIndexes
from jarvis.services.memory.service import (
    MAX_CONTENT,
    MAX_K,
    MAX_QUERY,
    MemoryService,
    model_label,
)
from jarvis.services.memory.views import (
    CatchUpReport,
    EmbeddingInfo,
    IndexReport,
    MemoryHit,
    MemoryView,
    Progress,
    ReembedReport,
    SearchMode,
)

__all__ = [
    "ANN_MIN_ROWS",
    "MAX_CONTENT",
    "MAX_K",
    "MAX_QUERY",
    "CatchUpReport",
    "EmbeddingInfo",
    "EmbeddingMaintenance",
    "IndexReport",
    "MemoryHit",
    "MemoryIndexes",
    "MemoryService",
    "MemoryView",
    "OpenAIKeyLookup",
    "Progress",
    "ReembedReport",
    "SearchMode",
    "UserEmbedders",
    "model_label",
    "move_user",
]
