"""Administration: the database this Jarvis runs on (version, pgvector, schema, the role the
app connects as)."""

from __future__ import annotations

import streamlit as st

from jarvis.ui.guard import require_admin

services, principal = require_admin()

st.title("System")
status = services.health.database_status()
st.subheader("Database")
if status.ok:
    cols = st.columns(4)
    cols[0].metric("PostgreSQL", status.server_version)
    cols[1].metric("pgvector", status.pgvector_version)
    cols[2].metric("Schema", status.migration)
    cols[3].metric("Connected as", status.connected_as)
    st.caption(
        "Embedded PostgreSQL in the data folder."
        if status.embedded
        else "External PostgreSQL (DATABASE_URL)."
    )
else:
    st.error(f"{status.error}")
