"""Knowledge-graph explorer: find an entity, see its neighbourhood, click to focus, find paths.

The page body draws the header and the controls, asks for the focused entity's neighbourhood
once, and hands it to one function per tab (graph, table, path finder, add & edit, import).
Each of those reads its widgets, makes one service call and renders the answer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

import pandas as pd
import streamlit as st
from streamlit_echarts import st_echarts

from jarvis.errors import NotFoundError
from jarvis.identity import Principal
from jarvis.services.knowledge_graph import (
    Direction,
    EntityDetails,
    GraphStats,
    ImportFormat,
    Neighbourhood,
    PathResult,
)
from jarvis.ui.components import show_errors
from jarvis.ui.graph_view import CLICK_HANDLER, chart_event_value, echarts_options
from jarvis.ui.guard import require_user
from jarvis.ui.jobs import follow_job, remember_job
from jarvis.ui.markdown import inert_markdown

services, principal = require_user()
kg = services.knowledge_graph
FOCUS = "graph_focus"
LAST_CLICK = "graph_last_click"
IMPORT_JOB = "graph_import_job"
DIRECTIONS: list[Direction] = ["both", "out", "in"]


@dataclass(frozen=True, slots=True)
class Controls:
    """What the explorer shows: the walk's depth, direction, cap, relation types and date."""

    depth: int
    direction: Direction
    node_limit: int
    relation_types: list[str]
    as_of: datetime | None


def _at(d: date | None) -> datetime | None:
    return datetime.combine(d, time.min, UTC) if d else None


def _entity_picker(label: str, key: str) -> uuid.UUID | None:
    """A search box and a list of matching entities; returns the chosen entity id."""
    query = st.text_input(label, key=f"{key}_q", placeholder="type a name (or a meaning)")
    if not query.strip():
        return None
    hits = None
    with show_errors():  # a search that is not clean text: a field error, not a crash
        hits = kg.search_entities(principal, query, limit=15)
    if hits is None:
        return None
    if not hits:
        st.caption("No entity matches.")
        return None
    labels = {str(h.entity.id): f"{h.entity.name} ({h.entity.type})" for h in hits}
    chosen = st.selectbox(
        "Matches", list(labels), format_func=lambda i: labels[i], key=f"{key}_pick"
    )
    return uuid.UUID(chosen) if chosen else None


@st.cache_data(ttl=20, show_spinner=False)
def _stats(user_id: str, _principal: Principal) -> GraphStats:  # noqa: ARG001 - cache key
    """Counts and type lists: a full scan on big graphs, so kept 20 s per user (keyed by
    user id) and cleared after every change made on this page."""
    return kg.stats(_principal)


def _changed() -> None:
    _stats.clear()


# -- above the tabs ----------------------------------------------------------------------------


def header() -> GraphStats:
    st.title("Knowledge graph")
    stats = _stats(str(principal.user_id), principal)
    st.caption(
        f"{stats['entities']:,} entities · {stats['relations']:,} relations · "
        "entity search matches names and, with the lexical embedder, shared words (not meaning)."
        if services.embedder.lexical
        else f"{stats['entities']:,} entities · {stats['relations']:,} relations"
    )
    return stats


def controls(stats: GraphStats) -> Controls:
    """The entity picker (sets the focus) and the walk's controls."""
    pick_col, ctl_col = st.columns([2, 3])
    with pick_col:
        picked = _entity_picker("Find an entity", "graph_search")
        if picked is not None and st.button("Explore", key="graph_explore", type="primary"):
            st.session_state[FOCUS] = str(picked)
            st.session_state.pop(LAST_CLICK, None)
    if not st.session_state.get(FOCUS):
        first = kg.list_entities(principal, limit=1)
        if first:
            st.session_state[FOCUS] = str(first[0].id)
    with ctl_col:
        c1, c2, c3 = st.columns(3)
        depth = c1.select_slider("Depth", options=[1, 2, 3], value=1, key="graph_depth")
        direction = c2.radio("Direction", DIRECTIONS, horizontal=True, key="graph_direction")
        node_limit = c3.number_input("Node cap", 20, 2000, 300, step=50, key="graph_limit")
        c4, c5 = st.columns([3, 2])
        rel_types = c4.multiselect(
            "Relation types (none = all)", stats["relation_types"], key="graph_types"
        )
        as_of_on = c5.checkbox("As of a date", key="graph_asof_on")
        as_of = c5.date_input(
            "As of", value=services.clock.now().date(), key="graph_asof", disabled=not as_of_on
        )
    return Controls(
        int(depth), direction, int(node_limit), rel_types, _at(as_of) if as_of_on else None
    )


def focused_neighbourhood(ctl: Controls) -> Neighbourhood | None:
    """The focused entity's neighbourhood (None when nothing is focused or it is gone)."""
    focus_raw = st.session_state.get(FOCUS)
    if not focus_raw:
        st.info(
            "Your knowledge graph is empty. Add an entity below, import a file, or let the agent "
            "add facts while you chat."
        )
        return None
    with show_errors():
        try:
            return kg.neighbourhood(
                principal,
                uuid.UUID(focus_raw),
                depth=ctl.depth,
                direction=ctl.direction,
                relation_types=ctl.relation_types,
                as_of=ctl.as_of,
                node_limit=ctl.node_limit,
            )
        except NotFoundError:
            st.session_state.pop(FOCUS, None)
            st.warning("That entity no longer exists.")
    return None


# -- the tabs ----------------------------------------------------------------------------------


def graph_tab(hood: Neighbourhood) -> None:
    """The picture (click a node to focus it) and the focused entity's details."""
    if hood.truncated:
        st.warning(
            f"Showing the {len(hood.nodes)} nearest entities only: more are reachable within "
            f"depth {hood.depth} than the cap of {hood.node_limit}. Filter by relation type, "
            "lower the depth or raise the cap."
        )
    if hood.edges_truncated:
        st.caption("Some relations among these entities are not drawn (too many).")
    chart_col, detail_col = st.columns([3, 2])
    with chart_col:
        result = st_echarts(
            echarts_options(hood, hood.root_id),
            events={"click": CLICK_HANDLER},
            height="560px",
            key="graph_chart",
        )
        clicked = chart_event_value(result)
        if clicked is None:  # the click value is gone after its rerun: the next one counts
            st.session_state.pop(LAST_CLICK, None)
        elif clicked != st.session_state.get(LAST_CLICK):
            st.session_state[LAST_CLICK] = clicked
            if clicked != st.session_state.get(FOCUS):
                st.session_state[FOCUS] = clicked
                st.rerun()
        st.caption("Click an entity to focus it. Drag to pan, scroll to zoom.")
    with detail_col:
        _entity_details(hood.root_id)


def _entity_details(entity_id: uuid.UUID) -> None:
    details: EntityDetails | None = None
    with show_errors():
        details = kg.get_entity(principal, entity_id)
    if details is None:
        return
    e = details.entity
    st.subheader(e.name)
    st.caption(f"{e.type} · {details.out_degree} outgoing · {details.in_degree} incoming")
    if e.description:
        st.markdown(inert_markdown(e.description))
    if e.properties:
        st.json(e.properties, expanded=False)
    rows = [
        {
            "direction": "→" if r.source_id == e.id else "←",
            "relation": r.type,
            "entity": r.target_name if r.source_id == e.id else r.source_name,
            "weight": r.weight,
            "valid from": r.valid_from.date() if r.valid_from else None,
            "valid to": r.valid_to.date() if r.valid_to else None,
        }
        for r in details.relations
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="graph_details_table")
    if len(details.relations) < details.out_degree + details.in_degree:
        st.caption(f"First {len(details.relations)} relations shown.")


def table_tab(hood: Neighbourhood) -> None:
    """The neighbourhood as two tables: entities and the relations among them."""
    st.markdown(f"**{len(hood.nodes)} entities** within depth {hood.depth}")
    nodes = [
        {"name": n.name, "type": n.type, "depth": n.depth, "description": n.description}
        for n in hood.nodes
    ]
    st.dataframe(pd.DataFrame(nodes), hide_index=True, width="stretch", key="graph_nodes_table")
    st.markdown(f"**{len(hood.edges)} relations** among them")
    edges = [
        {
            "source": r.source_name,
            "relation": r.type,
            "target": r.target_name,
            "weight": r.weight,
            "valid from": r.valid_from,
            "valid to": r.valid_to,
        }
        for r in hood.edges
    ]
    st.dataframe(pd.DataFrame(edges), hide_index=True, width="stretch", key="graph_edges_table")


def path_tab(relation_types: list[str]) -> None:
    """The shortest path between two entities picked by name."""
    a_col, b_col = st.columns(2)
    with a_col:
        path_from = _entity_picker("From", "graph_path_from")
    with b_col:
        path_to = _entity_picker("To", "graph_path_to")
    p1, p2 = st.columns(2)
    max_depth = p1.slider("At most this many relations", 1, 8, 6, key="graph_path_depth")
    directed = p2.checkbox("Follow relation direction", key="graph_path_directed")
    go = st.button("Find path", key="graph_path_go", disabled=not (path_from and path_to))
    if not go or path_from is None or path_to is None:
        return
    path: PathResult | None = None
    with show_errors():
        path = kg.shortest_path(
            principal,
            path_from,
            path_to,
            max_depth=max_depth,
            directed=directed,
            relation_types=relation_types,
        )
    if path is None:
        return
    if path.found:
        _show_path(path)
    elif path.gave_up:
        st.info("The search stopped: too many entities to visit. Try a smaller depth.")
    else:
        st.info(f"No path within {max_depth} relation(s).")


def _show_path(path: PathResult) -> None:
    st.success(f"Shortest path: {path.length} relation(s).")
    steps = [path.nodes[0].name]
    for edge, node in zip(path.edges, path.nodes[1:], strict=True):
        steps.append(f"—{edge.type}→" if edge.target_id == node.id else f"←{edge.type}—")
        steps.append(node.name)
    st.text("  ".join(steps))
    rows = [
        {"source": r.source_name, "relation": r.type, "target": r.target_name} for r in path.edges
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="graph_path_table")


def edit_tab(hood: Neighbourhood | None) -> None:
    """New entities, new relations from the focused entity, editing and deleting it."""
    new_col, rel_col = st.columns(2)
    with new_col:
        _new_entity_form()
    with rel_col:
        st.markdown("**New relation from the focused entity**")
        if hood is None:
            st.caption("Focus an entity first.")
        else:
            _new_relation_form(hood.root_id)
    if hood is not None:
        st.divider()
        _edit_entity_form(hood)
        d1, d2 = st.columns(2)
        with d1:
            _edit_relation(hood)
        with d2:
            _delete_entity(hood.root_id)


def _new_entity_form() -> None:
    with st.form("graph_new_entity", clear_on_submit=True):
        st.markdown("**New entity**")
        name = st.text_input("Name", key="graph_new_name")
        etype = st.text_input("Type", value="thing", key="graph_new_type")
        desc = st.text_area("Description", key="graph_new_desc")
        if st.form_submit_button("Add entity"):
            with show_errors():
                created = kg.create_entity(principal, name, etype, desc)
                _changed()
                st.session_state[FOCUS] = str(created.id)
                st.success(f"Added {created.name}.")


def _new_relation_form(source_id: uuid.UUID) -> None:
    target = _entity_picker("To entity", "graph_rel_target")
    with st.form("graph_new_relation", clear_on_submit=True):
        rtype = st.text_input("Relation type", key="graph_rel_type", placeholder="works_at")
        weight = st.number_input("Weight", value=1.0, key="graph_rel_weight")
        v1, v2 = st.columns(2)
        vfrom = v1.date_input("Valid from", value=None, key="graph_rel_from")
        vto = v2.date_input("Valid to", value=None, key="graph_rel_to")
        if not st.form_submit_button("Add relation"):
            return
        if target is None:
            st.error("Choose the target entity above.")
            return
        with show_errors():
            rel = kg.create_relation(
                principal,
                source_id,
                target,
                rtype,
                weight=weight,
                valid_from=_at(vfrom),
                valid_to=_at(vto),
            )
            _changed()
            st.success(f"Added {rel.source_name} —{rel.type}→ {rel.target_name}.")


def _edit_entity_form(hood: Neighbourhood) -> None:
    root = hood.node(hood.root_id)
    st.markdown(f"**Edit or delete the focused entity** ({root.name if root else ''})")
    with st.form("graph_edit_entity"):
        ename = st.text_input("Name", value=root.name if root else "", key="graph_edit_name")
        etype = st.text_input("Type", value=root.type if root else "", key="graph_edit_type")
        edesc = st.text_area(
            "Description", value=root.description if root else "", key="graph_edit_desc"
        )
        if st.form_submit_button("Save changes"):
            with show_errors():
                kg.update_entity(
                    principal, hood.root_id, name=ename, type_=etype, description=edesc
                )
                _changed()
                st.success("Saved.")


def _edit_relation(hood: Neighbourhood) -> None:
    """Pick one of the focused entity's relations: change it or delete it."""
    options = {
        str(r.id): f"{r.source_name} —{r.type}→ {r.target_name}"
        for r in hood.edges
        if hood.root_id in (r.source_id, r.target_id)
    }
    if not options:
        return
    rel_id = st.selectbox(
        "Relation", list(options), format_func=lambda i: options[i], key="graph_del_rel_pick"
    )
    current = next(r for r in hood.edges if str(r.id) == rel_id)
    with st.form("graph_edit_relation"):
        new_type = st.text_input("Relation type", value=current.type, key="graph_edit_rel_type")
        new_weight = st.number_input(
            "Weight", value=float(current.weight), key="graph_edit_rel_weight"
        )
        u1, u2 = st.columns(2)
        new_from = u1.date_input(
            "Valid from",
            value=current.valid_from.date() if current.valid_from else None,
            key="graph_edit_rel_from",
        )
        new_to = u2.date_input(
            "Valid to",
            value=current.valid_to.date() if current.valid_to else None,
            key="graph_edit_rel_to",
        )
        if st.form_submit_button("Save relation"):
            with show_errors():
                kg.update_relation(
                    principal,
                    current.id,
                    type_=new_type,
                    weight=new_weight,
                    valid_from=_at(new_from),
                    valid_to=_at(new_to),
                    clear_validity=True,
                )
                _changed()
                st.success("Relation saved.")
    if st.button("Delete relation", key="graph_del_rel"):
        with show_errors():
            kg.delete_relation(principal, current.id)
            _changed()
            st.success("Relation deleted.")
            st.rerun()


def _delete_entity(entity_id: uuid.UUID) -> None:
    sure = st.checkbox("Yes, delete this entity and its relations", key="graph_del_sure")
    if st.button("Delete entity", key="graph_del_entity", disabled=not sure):
        with show_errors():
            kg.delete_entity(principal, entity_id)
            _changed()
            st.session_state.pop(FOCUS, None)
            st.rerun()


def import_tab() -> None:
    """Upload a CSV or JSON file: imported whole by a background job (a progress bar, then
    the summary), or a table of the rejected rows."""
    st.markdown(
        "Import **CSV** (header `name,type,description` for entities, or "
        "`source,target,type,source_type,target_type,weight,valid_from,valid_to` for relations) "
        'or **JSON** (`{"entities": [...], "relations": [...]}`). Every row is checked first: '
        "if any row is rejected, nothing is imported. The import runs in the background: you "
        "may leave this page."
    )
    upload = st.file_uploader("File", type=["csv", "json"], key="graph_import_file")
    if st.button("Import", key="graph_import_go", disabled=upload is None) and upload:
        fmt: ImportFormat = "json" if upload.name.lower().endswith(".json") else "csv"
        with show_errors():
            remember_job(IMPORT_JOB, services.jobs.import_graph(principal, upload.getvalue(), fmt))
    job = follow_job(services.jobs, principal, IMPORT_JOB, on_finish=_changed)
    if job is None:
        return
    if job.state == "succeeded":
        st.success(job.summary or "Imported.")
        return
    st.error(job.error or "The import failed.")
    if isinstance(job.result, list) and job.result:
        st.dataframe(pd.DataFrame(job.result), hide_index=True, key="graph_import_rejected")


# -- the page ----------------------------------------------------------------------------------

stats = header()
ctl = controls(stats)
hood = focused_neighbourhood(ctl)
graph_pane, table_pane, path_pane, edit_pane, import_pane = st.tabs(
    ["Graph", "Table", "Path finder", "Add & edit", "Import"]
)
with graph_pane:
    if hood is not None:
        graph_tab(hood)
with table_pane:
    if hood is not None:
        table_tab(hood)
with path_pane:
    path_tab(ctl.relation_types)
with edit_pane:
    edit_tab(hood)
with import_pane:
    import_tab()
