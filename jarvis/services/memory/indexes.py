"""Per-user HNSW indexes for users with very many memories (``jarvis memory index``).

Exact search reads every vector of the user (~0.2 µs a row at 256-d halfvec): about 2 ms for
10,000 memories, but 20+ ms past 100,000. :meth:`MemoryIndexes.reconcile` gives each user with
at least ``min_rows`` embedded memories of one model an HNSW index of their own and drops the
indexes of users who fell below half of that (or moved to another model); the search uses a
user's index as soon as it is valid. Builds are concurrent (writes go on); run it from cron, or
as a job once the job queue exists.
"""

from __future__ import annotations

from collections.abc import Callable

from jarvis.db.repositories.memory_indexes import MemoryIndexRepository, ann_index_name
from jarvis.services.memory.views import IndexReport

#: Below this many memories exact search stays within a few milliseconds: no index needed.
ANN_MIN_ROWS = 50_000


class MemoryIndexes:
    """Keeps the per-user HNSW indexes in step with who has many memories (owner engine)."""

    def __init__(self, repo: MemoryIndexRepository) -> None:
        self._repo = repo

    def reconcile(
        self, *, min_rows: int = ANN_MIN_ROWS, progress: Callable[[str], None] | None = None
    ) -> IndexReport:
        """Create the missing indexes, drop the ones no longer needed; returns the names."""
        keep_from = max(1, min_rows // 2)
        candidates = self._repo.users_with_at_least(keep_from)
        wanted = {ann_index_name(u.user_id, u.model): u for u in candidates if u.rows >= min_rows}
        keep = {ann_index_name(u.user_id, u.model) for u in candidates}
        existing = {i.name: i for i in self._repo.existing()}
        dropped = sorted(n for n in existing if n not in keep)
        for name in dropped:
            self._repo.drop(name)
        created: list[str] = []
        for name, user in wanted.items():
            if name in existing and existing[name].valid:
                continue
            if progress:
                progress(f"building {name} ({user.rows:,} memories, {user.dims}-d)")
            created.append(self._repo.create(user))
        kept = sorted(n for n in existing if n in keep and n not in created)
        return IndexReport(created=sorted(created), dropped=dropped, kept=kept)
