"""meaning embeddings (halfvec per model, per-user model, no zero vectors); graph and usage at scale

Revision ID: 0012
Revises: 0011
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
* Graph: the relation indexes cover what the neighbourhood walk reads (index-only under
  row-level security), and ``(user_id, name, id)`` keeps a hub's first neighbours by name.
* Usage: ``usage_daily_all`` / ``tool_usage_daily_all`` hold everyone's daily sums (by local
  day and a user's shard, one of eight) for the admin's all-users charts: a few thousand rows
  for 30 days instead of every user's. Row triggers on ``usage_daily`` / ``tool_usage_daily``
  add each change's difference, so the one rollup rule stays ``jarvis_usage_rollup_add``; the
  trigger function is the owner's (SECURITY DEFINER): the app role only reads, as an admin.
  ``usage_user_daily`` (per user and day, all models) feeds the admin's ranking the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op
from pgvector.sqlalchemy import HALFVEC, VECTOR

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The old default's stored name (literal: migrations never import the application).
LEXICAL_MODEL = "lexical-hash-384-v1"
TABLES = ("memories", "kg_entities")
ALL_TABLES = ("usage_daily_all", "tool_usage_daily_all")


def _app_role() -> str:
    return str(context.config.attributes["settings"].db_app_role)


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
    _upgrade_usage()


SHARD_FUNCTION = """
CREATE FUNCTION jarvis_usage_shard(uid uuid) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT (get_byte(uuid_send(uid), 15) % 8)::smallint $$
"""

_SUMS = (
    "runs",
    "failed_runs",
    "unpriced_runs",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "total_tokens",
    "cost",
)
_TOOL_SUMS = ("calls", "errors", "denied", "latency_count", "latency_ms_sum")
_USER_SUMS = ("runs", "unpriced_runs", "total_tokens", "cost")


def _subtract(table: str, keys: str, sums: Sequence[str]) -> str:
    """Take a removed row's sums away (an UPDATE: when a user is deleted, the per-user row may
    already be gone with them)."""
    sets = ", ".join(f"{c} = a.{c} - OLD.{c}" for c in sums)
    where = " AND ".join(
        f"a.{k} = public.jarvis_usage_shard(OLD.user_id)" if k == "shard" else f"a.{k} = OLD.{k}"
        for k in keys.split(", ")
    )
    return f"UPDATE public.{table} AS a SET {sets} WHERE {where};"


def _upsert(
    table: str, keys: str, rec: str, sums: Sequence[str], sign: str, extra: tuple[str, str, str]
) -> str:
    values = ", ".join(f"{sign}{rec}.{c}" for c in sums)
    sets = ", ".join(f"{c} = a.{c} + excluded.{c}" for c in sums)
    key_values = ", ".join(
        "public.jarvis_usage_shard(" + rec + ".user_id)" if k == "shard" else f"{rec}.{k}"
        for k in keys.split(", ")
    )
    cols = ", ".join(sums)
    return (
        f"INSERT INTO public.{table} AS a ({keys}, {cols}{extra[0]}) "
        f"VALUES ({key_values}, {values}{extra[1]}) "
        f"ON CONFLICT ({keys}) DO UPDATE SET {sets}{extra[2]};"
    )


def _delta_upsert(table: str, keys: str, sums: Sequence[str], extra: tuple[str, str, str]) -> str:
    values = ", ".join(f"NEW.{c} - OLD.{c}" for c in sums)
    sets = ", ".join(f"{c} = a.{c} + excluded.{c}" for c in sums)
    key_values = ", ".join(
        "public.jarvis_usage_shard(NEW.user_id)" if k == "shard" else f"NEW.{k}"
        for k in keys.split(", ")
    )
    cols = ", ".join(sums)
    return (
        f"INSERT INTO public.{table} AS a ({keys}, {cols}{extra[0]}) "
        f"VALUES ({key_values}, {values}{extra[1]}) "
        f"ON CONFLICT ({keys}) DO UPDATE SET {sets}{extra[2]};"
    )


Target = tuple[str, str, Sequence[str]]  # table, its key columns, the summed columns


def _sync_function(name: str, key_cols: str, targets: Sequence[Target], tool: bool) -> str:
    """One row trigger function adding each change of a per-user rollup row to ``targets``."""
    none = ("", "", "")
    max_new = (
        (
            ", latency_ms_max",
            ", NEW.latency_ms_max",
            ", latency_ms_max = greatest(a.latency_ms_max, excluded.latency_ms_max)",
        )
        if tool
        else none
    )
    # A deleted (or lowered) row may have held the group's maximum latency: recompute it from
    # the remaining rows then (only then: an emptied group stays at 0 without rescans).
    refresh_max = (
        """
    IF TG_OP <> 'INSERT' AND OLD.latency_ms_max > 0 THEN
      UPDATE public.tool_usage_daily_all a SET latency_ms_max = coalesce((
          SELECT max(t.latency_ms_max) FROM public.tool_usage_daily t
           WHERE t.day = OLD.day AND t.tool_id = OLD.tool_id
             AND public.jarvis_usage_shard(t.user_id) = public.jarvis_usage_shard(OLD.user_id)), 0)
       WHERE a.day = OLD.day AND a.tool_id = OLD.tool_id
         AND a.shard = public.jarvis_usage_shard(OLD.user_id)
         AND a.latency_ms_max > 0 AND a.latency_ms_max <= OLD.latency_ms_max;
    END IF;"""
        if tool
        else ""
    )
    same_key = " AND ".join(f"NEW.{k} IS NOT DISTINCT FROM OLD.{k}" for k in key_cols.split(", "))
    delta = "\n    ".join(_delta_upsert(t, k, c, max_new) for t, k, c in targets)
    subtract = "\n      ".join(_subtract(t, k, c) for t, k, c in targets)
    add = "\n      ".join(_upsert(t, k, "NEW", c, "", max_new) for t, k, c in targets)
    return f"""
CREATE FUNCTION {name}() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND {same_key} THEN
    {delta}
  ELSE
    IF TG_OP <> 'INSERT' THEN
      {subtract}
    END IF;
    IF TG_OP <> 'DELETE' THEN
      {add}
    END IF;
  END IF;{refresh_max}
  RETURN NULL;
END
$$
"""


def _upgrade_usage() -> None:
    role = _app_role()
    op.create_table(
        "usage_daily_all",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("runs", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failed_runs", sa.Integer(), server_default="0", nullable=False),
        sa.Column("unpriced_runs", sa.Integer(), server_default="0", nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cache_read_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cache_write_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("total_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cost", sa.Numeric(precision=18, scale=6), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("day", "provider", "model", "shard"),
    )
    op.create_table(
        "tool_usage_daily_all",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("tool_id", sa.String(length=100), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("calls", sa.Integer(), server_default="0", nullable=False),
        sa.Column("errors", sa.Integer(), server_default="0", nullable=False),
        sa.Column("denied", sa.Integer(), server_default="0", nullable=False),
        sa.Column("latency_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("latency_ms_sum", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("latency_ms_max", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("day", "tool_id", "shard"),
    )
    op.create_table(
        "usage_user_daily",
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("runs", sa.Integer(), server_default="0", nullable=False),
        sa.Column("unpriced_runs", sa.Integer(), server_default="0", nullable=False),
        sa.Column("total_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cost", sa.Numeric(precision=18, scale=6), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "day"),
    )
    op.create_index("ix_usage_user_daily_day", "usage_user_daily", ["day"], unique=False)
    op.execute("ALTER TABLE usage_user_daily ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE usage_user_daily FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY usage_user_daily_self ON usage_user_daily FOR SELECT "
        "USING (user_id = (SELECT jarvis_current_user_id()))"
    )
    op.execute(
        "CREATE POLICY usage_user_daily_admin_read ON usage_user_daily FOR SELECT "
        "USING ((SELECT jarvis_is_admin()))"
    )
    op.execute(
        "CREATE POLICY usage_user_daily_owner ON usage_user_daily TO CURRENT_USER "
        "USING (true) WITH CHECK (true)"
    )
    op.execute(f'REVOKE INSERT, UPDATE, DELETE ON usage_user_daily FROM "{role}"')
    op.execute(f'GRANT SELECT ON usage_user_daily TO "{role}"')
    for table in ALL_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {table}_admin_read ON {table} FOR SELECT "
            "USING ((SELECT jarvis_is_admin()))"
        )
        # the owner's trigger function writes them
        op.execute(
            f"CREATE POLICY {table}_owner ON {table} TO CURRENT_USER USING (true) WITH CHECK (true)"
        )
        op.execute(f'REVOKE INSERT, UPDATE, DELETE ON {table} FROM "{role}"')
        op.execute(f'GRANT SELECT ON {table} TO "{role}"')
    # The owner reads every user's rollups (the backfill below, the trigger's max recompute).
    for table in ("usage_daily", "tool_usage_daily"):
        op.execute(
            f"CREATE POLICY {table}_owner_read ON {table} FOR SELECT TO CURRENT_USER USING (true)"
        )
    op.execute(SHARD_FUNCTION)
    op.execute(
        _sync_function(
            "jarvis_usage_daily_all_sync",
            "user_id, day, provider, model",
            [
                ("usage_daily_all", "day, provider, model, shard", _SUMS),
                ("usage_user_daily", "user_id, day", _USER_SUMS),
            ],
            tool=False,
        )
    )
    op.execute(
        _sync_function(
            "jarvis_tool_usage_daily_all_sync",
            "user_id, day, tool_id",
            [("tool_usage_daily_all", "day, tool_id, shard", _TOOL_SUMS)],
            tool=True,
        )
    )
    # Definer functions: nobody but the app role may call them (its rollup writes fire them).
    for fn in ("jarvis_usage_daily_all_sync", "jarvis_tool_usage_daily_all_sync"):
        op.execute(f"REVOKE ALL ON FUNCTION {fn}() FROM PUBLIC")
        op.execute(f'GRANT EXECUTE ON FUNCTION {fn}() TO "{role}"')
    op.execute(
        "INSERT INTO usage_daily_all SELECT day, provider, model, jarvis_usage_shard(user_id), "
        + ", ".join(f"sum({c})" for c in _SUMS)
        + " FROM usage_daily GROUP BY 1, 2, 3, 4"
    )
    op.execute(
        "INSERT INTO tool_usage_daily_all SELECT day, tool_id, jarvis_usage_shard(user_id), "
        + ", ".join(f"sum({c})" for c in _TOOL_SUMS)
        + ", max(latency_ms_max) FROM tool_usage_daily GROUP BY 1, 2, 3"
    )
    op.execute(
        "INSERT INTO usage_user_daily SELECT user_id, day, "
        + ", ".join(f"sum({c})" for c in _USER_SUMS)
        + " FROM usage_daily GROUP BY 1, 2"
    )
    op.execute(
        "CREATE TRIGGER usage_daily_all_sync AFTER INSERT OR UPDATE OR DELETE ON usage_daily "
        "FOR EACH ROW EXECUTE FUNCTION jarvis_usage_daily_all_sync()"
    )
    op.execute(
        "CREATE TRIGGER tool_usage_daily_all_sync AFTER INSERT OR UPDATE OR DELETE "
        "ON tool_usage_daily FOR EACH ROW EXECUTE FUNCTION jarvis_tool_usage_daily_all_sync()"
    )


def _downgrade_usage() -> None:
    op.execute("DROP TRIGGER IF EXISTS usage_daily_all_sync ON usage_daily")
    op.drop_table("usage_user_daily")
    op.execute("DROP TRIGGER IF EXISTS tool_usage_daily_all_sync ON tool_usage_daily")
    op.execute("DROP FUNCTION IF EXISTS jarvis_usage_daily_all_sync()")
    op.execute("DROP FUNCTION IF EXISTS jarvis_tool_usage_daily_all_sync()")
    op.execute("DROP FUNCTION IF EXISTS jarvis_usage_shard(uuid)")
    for table in ("usage_daily", "tool_usage_daily"):
        op.execute(f"DROP POLICY IF EXISTS {table}_owner_read ON {table}")
    for table in ALL_TABLES:
        op.drop_table(table)


def downgrade() -> None:
    _downgrade_usage()
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
