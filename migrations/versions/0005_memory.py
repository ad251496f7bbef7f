"""memory: full-text column + GIN, covering per-user vector index, entity name indexes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 00:40:00

Why the covering index: a per-user query through the global HNSW index returns the global
nearest neighbours and then drops other users' rows (0.4 of 10 rows at 100k memories / 1k users).
Per-user search is an exact scan of the user's own vectors, read from
``(user_id, embedding_model) INCLUDE (id, embedding)`` so one user's rows are adjacent.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "memories",
        sa.Column(
            "content_tsv",
            postgresql.TSVECTOR(),
            sa.Computed("to_tsvector('english'::regconfig, content)", persisted=True),
            nullable=True,
        ),
    )
    op.create_index(
        "ix_memories_content_tsv", "memories", ["content_tsv"], unique=False, postgresql_using="gin"
    )
    op.create_index(
        "ix_memories_user_model_embedding",
        "memories",
        ["user_id", "embedding_model"],
        unique=False,
        postgresql_include=["id", "embedding"],
    )
    op.create_index(
        "ix_kg_entities_name_trgm",
        "kg_entities",
        ["name"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.drop_index("ix_kg_relations_source_id", table_name="kg_relations")
    op.create_index(
        "ix_kg_relations_source_id_target_id",
        "kg_relations",
        ["source_id", "target_id"],
        unique=False,
    )
    op.create_index(
        "ix_kg_entities_user_id_lower_name",
        "kg_entities",
        ["user_id", sa.literal_column("lower(name)")],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_kg_relations_source_id_target_id", table_name="kg_relations")
    op.create_index("ix_kg_relations_source_id", "kg_relations", ["source_id"], unique=False)
    op.drop_index("ix_kg_entities_user_id_lower_name", table_name="kg_entities")
    op.drop_index("ix_kg_entities_name_trgm", table_name="kg_entities")
    op.drop_index("ix_memories_user_model_embedding", table_name="memories")
    op.drop_index("ix_memories_content_tsv", table_name="memories")
    op.drop_column("memories", "content_tsv")
