"""meaning embeddings: halfvec per model, per-user model, no zero vectors; entity name index

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-02 12:00:00

* ``memories.embedding`` and ``kg_entities.embedding`` become ``halfvec`` without a fixed size:
  the new default embedder (wordllama) is 256-d, lexical / OpenAI / local stay 384-d, and every
  row names its model (searches compare one model's vectors only). Half precision halves the
  bytes an exact per-user scan reads (a 256-d row: 516 bytes instead of 1,540 at 384-d
  ``vector``); existing 384-d rows convert as they are, so no OpenAI or local row needs its
  provider again.
* The global HNSW indexes go: no query searches across users (row-level security), a per-user
  query through them returns other users' neighbours and loses rows, every insert paid for
  them, and one index cannot hold vectors of several sizes. Users with very many memories get a
  partial HNSW index of their own (``jarvis memory index``).
* A zero vector has no direction: its cosine distance is NaN, which PostgreSQL sorts above every
  number, so it passed any minimum score. Such rows now hold NULL (found by browsing and full
  text, re-embedded by the next move) and a CHECK keeps zero vectors out.
* ``users.embedding_model``: the model a user chose; NULL follows the instance default. Users
  whose newest memory used OpenAI or the local model keep it explicitly. Users on the old
  default (lexical hashing) follow the new default; their rows are re-embedded offline after
  the migration by ``jarvis db upgrade`` / ``jarvis up`` (``jarvis embeddings catch-up``): a
  migration never imports the application, and the embedder is application code.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import HALFVEC, VECTOR

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The old default's stored name (literal: migrations never import the application).
LEXICAL_MODEL = "lexical-hash-384-v1"
TABLES = ("memories", "kg_entities")


def upgrade() -> None:
    op.drop_index("ix_memories_embedding_hnsw", table_name="memories")
    op.drop_index("ix_kg_entities_embedding_hnsw", table_name="kg_entities")
    for table in TABLES:
        op.alter_column(
            table,
            "embedding",
            type_=HALFVEC(),
            existing_type=VECTOR(384),
            nullable=True,
            postgresql_using="embedding::halfvec",
        )
        op.execute(f"UPDATE {table} SET embedding = NULL WHERE l2_norm(embedding) = 0")
        op.create_check_constraint(
            f"ck_{table}_embedding_nonzero", table, "embedding IS NULL OR l2_norm(embedding) > 0"
        )
    op.create_index(
        "ix_kg_entities_user_model_embedding",
        "kg_entities",
        ["user_id", "embedding_model"],
        unique=False,
        postgresql_include=["id", "embedding"],
    )
    # The graph walk reads relations index-only (row-level security needs user_id; the
    # filters read type and validity), and keeps a hub's first neighbours by name.
    op.drop_index("ix_kg_relations_source_id_target_id", table_name="kg_relations")
    op.drop_index("ix_kg_relations_target_id", table_name="kg_relations")
    op.create_index(
        "ix_kg_relations_source_id_target_id",
        "kg_relations",
        ["source_id", "target_id"],
        unique=False,
        postgresql_include=["id", "user_id", "type", "valid_from", "valid_to"],
    )
    op.create_index(
        "ix_kg_relations_target_id",
        "kg_relations",
        ["target_id"],
        unique=False,
        postgresql_include=["source_id", "id", "user_id", "type", "valid_from", "valid_to"],
    )
    op.create_index(
        "ix_kg_entities_user_id_name", "kg_entities", ["user_id", "name", "id"], unique=False
    )
    op.add_column("users", sa.Column("embedding_model", sa.String(length=100), nullable=True))
    # Users whose newest memory used another model than the old default keep that model.
    op.execute(
        sa.text(
            """
            UPDATE users u SET embedding_model = newest.embedding_model
              FROM (SELECT DISTINCT ON (user_id) user_id, embedding_model
                      FROM memories ORDER BY user_id, created_at DESC, id DESC) newest
             WHERE newest.user_id = u.id AND newest.embedding_model <> :lexical
            """
        ).bindparams(lexical=LEXICAL_MODEL)
    )


def downgrade() -> None:
    conn = op.get_bind()
    other = conn.scalar(
        sa.text(
            "SELECT count(*) FROM (SELECT embedding FROM memories UNION ALL "
            "SELECT embedding FROM kg_entities) e WHERE vector_dims(e.embedding) <> 384"
        )
    )
    if other:
        raise RuntimeError(
            f"{other} embeddings are not 384-dimensional: move their users to a 384-d model "
            "(jarvis embeddings reembed --model lexical) before downgrading."
        )
    op.drop_column("users", "embedding_model")
    op.drop_index("ix_kg_entities_user_id_name", table_name="kg_entities")
    op.drop_index("ix_kg_relations_source_id_target_id", table_name="kg_relations")
    op.drop_index("ix_kg_relations_target_id", table_name="kg_relations")
    op.create_index(
        "ix_kg_relations_source_id_target_id", "kg_relations", ["source_id", "target_id"]
    )
    op.create_index("ix_kg_relations_target_id", "kg_relations", ["target_id"])
    op.drop_index("ix_kg_entities_user_model_embedding", table_name="kg_entities")
    for table in TABLES:
        op.drop_constraint(f"ck_{table}_embedding_nonzero", table, type_="check")
    # NULL memory embeddings were zero vectors before (the column was NOT NULL).
    op.execute(
        "UPDATE memories SET embedding = array_fill(0, ARRAY[384])::halfvec WHERE embedding IS NULL"
    )
    for table in TABLES:
        op.alter_column(
            table,
            "embedding",
            type_=VECTOR(384),
            existing_type=HALFVEC(),
            nullable=table == "kg_entities",
            postgresql_using="embedding::vector(384)",
        )
    for table in TABLES:
        op.execute(
            f"CREATE INDEX ix_{table}_embedding_hnsw ON {table} USING hnsw "
            "(embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
        )
