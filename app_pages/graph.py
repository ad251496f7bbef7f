"""Knowledge-graph explorer, in the manner of Neo4j Bloom: type a name and pick it (the graph
centres there), click nodes to expand them in place, find a path and see it on the graph.

What is explored lives in session state and in the URL (``?entity=<centre>&open=<id>,<id>``),
so a reload or a shared link shows the same picture. The picture itself is built by
:mod:`jarvis.ui.graph_view` (pure); the data comes from one ``explore`` call per run.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

import streamlit as st
from streamlit_echarts import st_echarts

from jarvis.errors import NotFoundError
from jarvis.identity import Principal
from jarvis.services.knowledge_graph import (
    MAX_EXPANDED,
    Direction,
    EntityDetails,
    GraphStats,
    ImportFormat,
    PathResult,
)
from jarvis.ui.components import flash, show_errors, show_flash
from jarvis.ui.graph_view import (
    CLICK_HANDLER,
    ZOOM_HANDLER,
    ExploredGraph,
    cell,
    chart_event_value,
    echarts_options,
    edge_rows,
    merge_neighbourhoods,
    node_rows,
    parse_ids,
    path_text,
    relation_rows,
    with_path,
)
from jarvis.ui.guard import require_user
from jarvis.ui.jobs import follow_job, remember_job
from jarvis.ui.markdown import inert_markdown

services, principal = require_user()
kg = services.knowledge_graph
ROOT = "graph_root"  # the centred entity (str id)
EXPANDED = "graph_expanded"  # entities clicked, in click order (str ids)
SELECTED = "graph_selected"  # the entity in the details panel (str id)
PATH = "graph_path"  # the path finder's last found path (PathResult) or None
LABELS = "graph_labels"  # "name · type" of entities met outside the first page of names
LAST_CLICK = "graph_last_click"
SEARCH = "graph_search"  # the one-step search box; its value is the centre
SEARCH_SHOWN = "graph_search_shown"  # what the box was last set to (a change is a pick)
CHART = "graph_chart"
IMPORT_JOB = "graph_import_job"
DIRECTIONS: list[Direction] = ["both", "out", "in"]
#: How many entity names the search box holds; beyond them, typed text is searched.
CHOICES = 1000


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


@st.cache_data(ttl=20, show_spinner=False)
def _stats(user_id: str, _principal: Principal) -> GraphStats:  # noqa: ARG001 - cache key
    """Counts and type lists: a full scan on big graphs, so kept 20 s per user (keyed by
    user id) and cleared after every change made on this page."""
    return kg.stats(_principal)


def _choices() -> dict[str, str]:
    """The first :data:`CHOICES` entities by name, as the search box's options (not cached:
    facts the agent adds in a chat show at once; an index-ordered read of 1,000 rows)."""
    return {str(e.id): f"{e.name} · {e.type}" for e in kg.list_entities(principal, limit=CHOICES)}


def _changed() -> None:
    _stats.clear()


def _labels() -> dict[str, str]:
    labels: dict[str, str] = st.session_state.setdefault(LABELS, {})
    return labels


def _centre(entity_id: str) -> None:
    """Start a new exploration around ``entity_id``."""
    st.session_state[ROOT] = entity_id
    st.session_state[SELECTED] = entity_id
    st.session_state[EXPANDED] = []
    st.session_state[PATH] = None
    st.session_state.pop(LAST_CLICK, None)


def _resolve(value: str | None, choices: dict[str, str]) -> str | None:
    """A search box's value as an entity id: a picked option is one already; typed text is
    searched (by name, then meaning) and the best match taken."""
    if not value:
        return None
    if value in choices or value in _labels():
        return value
    with show_errors():
        hits = kg.search_entities(principal, value, limit=1)
        if not hits:
            st.warning(f"No entity matches “{value}”.")
            return None
        hit = hits[0].entity
        _labels()[str(hit.id)] = f"{hit.name} · {hit.type}"
        return str(hit.id)
    return None


def _entity_box(label: str, key: str, options: dict[str, str], index: int | None = None) -> None:
    """A searchable box of entity names: type to filter, pick with a click or Enter. Text
    matching no listed name is searched when Enter is pressed."""
    st.selectbox(
        label,
        list(options),
        format_func=lambda i: options.get(i, i),
        key=key,
        accept_new_options=True,
        filter_mode="contains",
        placeholder="Type a name…",
        help="Type part of a name and pick it; press Enter to search names and meanings.",
        index=index,
    )


# -- above the graph ---------------------------------------------------------------------------


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


def restore_from_url(choices: dict[str, str]) -> None:
    """A new session (a reload, a shared link) starts from the URL, else the first entity."""
    if st.session_state.get(ROOT):
        return
    from_url = parse_ids(st.query_params.get("entity"))[:1]
    root = str(from_url[0]) if from_url else next(iter(choices), None)
    if root is not None:
        _centre(root)
        st.session_state[EXPANDED] = [str(i) for i in parse_ids(st.query_params.get("open"))]


def take_search(choices: dict[str, str]) -> None:
    """The search box changed: centre on what was picked (or the best match of what was
    typed). The box then shows the centre, whatever moved it (a pick, a new entity, Reset)."""
    picked = st.session_state.get(SEARCH)
    if picked and picked != st.session_state.get(SEARCH_SHOWN):
        found = _resolve(picked, choices)
        if found:
            _centre(found)
    st.session_state[SEARCH] = st.session_state[SEARCH_SHOWN] = st.session_state.get(ROOT)


def controls(stats: GraphStats, options: dict[str, str]) -> Controls:
    """The one-step search (sets the centre) and the walk's settings."""
    pick_col, ctl_col = st.columns([2, 3])
    with pick_col:
        _entity_box("Find an entity", SEARCH, options)
    with ctl_col:
        c1, c2, c3 = st.columns(3)
        depth = c1.select_slider("Depth", options=[1, 2, 3], value=1, key="graph_depth")
        direction = c2.radio("Direction", DIRECTIONS, horizontal=True, key="graph_direction")
        node_limit = c3.number_input("Node cap", 20, 2000, 300, step=50, key="graph_limit")
    with st.expander("Filters: relation types, as of a date"):
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


def on_chart_click() -> None:
    """A node was clicked (a callback, before the run): select it and, unless it is the
    centre or already expanded, expand it — its neighbours join the picture."""
    clicked = chart_event_value(st.session_state.get(CHART))
    if clicked is None or clicked == st.session_state.get(LAST_CLICK):
        return
    st.session_state[LAST_CLICK] = clicked
    st.session_state[SELECTED] = clicked
    expanded: list[str] = st.session_state.setdefault(EXPANDED, [])
    if clicked != st.session_state.get(ROOT) and clicked not in expanded:
        if len(expanded) >= MAX_EXPANDED:
            flash(
                f"At most {MAX_EXPANDED} entities can be expanded: Reset to start over.",
                rerun=False,
            )
        else:
            expanded.append(clicked)


def explored(ctl: Controls) -> ExploredGraph | None:
    """The centre's neighbourhood plus each expanded entity's, merged (None: nothing to show)."""
    root = st.session_state.get(ROOT)
    if not root:
        return None
    with show_errors():
        try:
            hoods = kg.explore(
                principal,
                uuid.UUID(root),
                parse_ids(st.session_state.get(EXPANDED, [])),
                depth=ctl.depth,
                direction=ctl.direction,
                relation_types=ctl.relation_types,
                as_of=ctl.as_of,
                node_limit=ctl.node_limit,
            )
        except NotFoundError:
            for key in (ROOT, EXPANDED, SELECTED, PATH):
                st.session_state.pop(key, None)
            st.warning("That entity no longer exists.")
            return None
        graph = merge_neighbourhoods(hoods[0], hoods[1:])
        st.session_state[EXPANDED] = [str(i) for i in graph.expanded]
        _labels().update({str(n.id): f"{n.name} · {n.type}" for n in graph.nodes})
        return graph
    return None


def sync_url() -> None:
    """Keep the URL saying what is explored (a reload or a shared link shows the same)."""
    root = st.session_state.get(ROOT)
    opened = ",".join(st.session_state.get(EXPANDED, []))
    if root and st.query_params.get("entity") != root:
        st.query_params["entity"] = root
    if opened and st.query_params.get("open") != opened:
        st.query_params["open"] = opened
    elif not opened and "open" in st.query_params:
        del st.query_params["open"]


def empty_state() -> None:
    st.info(
        "Your knowledge graph is empty. Add your first entity in the **Add & edit** tab below, "
        "or upload a CSV or JSON file of entities and relations in the **Import** tab. "
        "With an OpenAI or Anthropic key, the agent in **Chat** also adds facts you tell it "
        "(“remember that Ada works at Acme”).",
        icon=":material/hub:",
    )


# -- the graph and its details panel -----------------------------------------------------------


def graph_pane(graph: ExploredGraph) -> None:
    """The picture (click a node to expand it) and the selected entity's details."""
    if graph.truncated:
        st.warning(
            f"Some entities have more neighbours than the node cap ({st.session_state.get('graph_limit')}):"
            " the nearest are shown. Filter by relation type, lower the depth or raise the cap."
        )
    selected = st.session_state.get(SELECTED) or st.session_state.get(ROOT)
    chart_col, detail_col = st.columns([3, 2])
    with chart_col:
        st_echarts(
            echarts_options(graph, uuid.UUID(selected) if selected else None),
            events={"click": CLICK_HANDLER, "graphroam": ZOOM_HANDLER},
            height="600px",
            key=CHART,
            on_change=on_chart_click,
        )
        b1, b2 = st.columns([4, 1])
        b1.caption(
            f"{len(graph.nodes)} entities · {len(graph.edges)} relations · "
            f"{len(graph.expanded)} expanded. Click an entity to show its neighbours and its "
            "details. Drag to pan, scroll to zoom: the farthest names appear as you zoom in."
        )
        if b2.button("Reset", key="graph_reset", icon=":material/restart_alt:"):
            _centre(str(graph.root_id))
            st.rerun()
        path: PathResult | None = st.session_state.get(PATH)
        if path is not None and graph.path_node_ids:
            st.caption(f"Path highlighted: {path_text(path)}")
    with detail_col:
        if selected:
            _entity_details(uuid.UUID(selected))


def _entity_details(entity_id: uuid.UUID) -> None:
    details: EntityDetails | None = None
    with show_errors():
        try:
            details = kg.get_entity(principal, entity_id)
        except NotFoundError:
            st.session_state[SELECTED] = st.session_state.get(ROOT)
            st.caption("That entity no longer exists.")
    if details is None:
        return
    e = details.entity
    st.subheader(e.name)
    st.caption(
        f"{e.type} · {details.out_degree} outgoing · {details.in_degree} incoming · "
        f"added {cell(e.created_at)}"
    )
    if e.description:
        st.markdown(inert_markdown(e.description))
    if e.properties:
        st.json(e.properties, expanded=False)
    if details.relations:
        st.dataframe(
            relation_rows(details), hide_index=True, width="stretch", key="graph_details_table"
        )
    else:
        st.caption("No relations yet.")
    if len(details.relations) < details.out_degree + details.in_degree:
        st.caption(f"First {len(details.relations)} relations shown.")


# -- the tabs ----------------------------------------------------------------------------------


def table_tab(graph: ExploredGraph) -> None:
    """What the graph shows, as two tables: entities and the relations among them."""
    st.markdown(f"**{len(graph.nodes)} entities** shown")
    st.dataframe(node_rows(graph), hide_index=True, width="stretch", key="graph_nodes_table")
    st.markdown(f"**{len(graph.edges)} relations** among them")
    st.dataframe(edge_rows(graph.edges), hide_index=True, width="stretch", key="graph_edges_table")


def path_tab(options: dict[str, str], relation_types: list[str]) -> None:
    """The shortest path between two entities, highlighted on the graph above."""
    root = st.session_state.get(ROOT)
    ids = list(options)
    a_col, b_col = st.columns(2)
    with a_col:
        _entity_box(
            "From", "graph_path_from", options, index=ids.index(root) if root in ids else None
        )
    with b_col:
        _entity_box("To", "graph_path_to", options)
    p1, p2 = st.columns(2)
    max_depth = p1.slider("At most this many relations", 1, 8, 6, key="graph_path_depth")
    directed = p2.checkbox("Follow relation direction", key="graph_path_directed")
    go_col, clear_col = st.columns([1, 4])
    if go_col.button("Find path", key="graph_path_go", type="primary"):
        _find_path(options, max_depth, directed, relation_types)
    if st.session_state.get(PATH) is not None and clear_col.button(
        "Clear path", key="graph_path_clear"
    ):
        st.session_state[PATH] = None
    path: PathResult | None = st.session_state.get(PATH)
    if path is not None:
        st.success(f"Shortest path: {path.length} relation(s), highlighted on the graph above.")
        st.text(path_text(path))
        st.dataframe(edge_rows(path.edges), hide_index=True, key="graph_path_table")


def _find_path(
    options: dict[str, str], max_depth: int, directed: bool, relation_types: list[str]
) -> None:
    path_from = _resolve(st.session_state.get("graph_path_from"), options)
    path_to = _resolve(st.session_state.get("graph_path_to"), options)
    if path_from is None or path_to is None:
        st.error("Choose both entities first.", icon="✏️")
        return
    path: PathResult | None = None
    with show_errors():
        path = kg.shortest_path(
            principal,
            uuid.UUID(path_from),
            uuid.UUID(path_to),
            max_depth=max_depth,
            directed=directed,
            relation_types=relation_types,
        )
    if path is None:
        return
    st.session_state[PATH] = path if path.found else None
    if path.gave_up:
        st.info("The search stopped: too many entities to visit. Try a smaller depth.")
    elif not path.found:
        st.info(f"No path within {max_depth} relation(s).")


def edit_tab(graph: ExploredGraph | None, options: dict[str, str]) -> None:
    """New entities, new relations from the selected entity, editing and deleting it."""
    selected = st.session_state.get(SELECTED)
    node = graph.node(uuid.UUID(selected)) if graph is not None and selected else None
    new_col, rel_col = st.columns(2)
    with new_col:
        _new_entity_form()
    with rel_col:
        st.markdown("**New relation from the selected entity**")
        if node is None:
            st.caption("Select an entity on the graph first.")
        else:
            _new_relation_form(node.id, options)
    if graph is not None and node is not None:
        st.divider()
        _edit_entity_form(node.id, node.name, node.type, node.description)
        d1, d2 = st.columns(2)
        with d1:
            _edit_relation(graph, node.id)
        with d2:
            _delete_entity(node.id)


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
                _centre(str(created.id))
                flash(f"Added {created.name}.")


def _new_relation_form(source_id: uuid.UUID, options: dict[str, str]) -> None:
    _entity_box("To entity", "graph_rel_target", options)
    with st.form("graph_new_relation", clear_on_submit=True):
        rtype = st.text_input("Relation type", key="graph_rel_type", placeholder="works_at")
        weight = st.number_input("Weight", value=1.0, key="graph_rel_weight")
        v1, v2 = st.columns(2)
        vfrom = v1.date_input("Valid from", value=None, key="graph_rel_from")
        vto = v2.date_input("Valid to", value=None, key="graph_rel_to")
        if not st.form_submit_button("Add relation"):
            return
        target = _resolve(st.session_state.get("graph_rel_target"), options)
        if target is None:
            st.error("Choose the target entity above.")
            return
        with show_errors():
            rel = kg.create_relation(
                principal,
                source_id,
                uuid.UUID(target),
                rtype,
                weight=weight,
                valid_from=_at(vfrom),
                valid_to=_at(vto),
            )
            _changed()
            st.success(f"Added {rel.source_name} —{rel.type}→ {rel.target_name}.")


def _edit_entity_form(entity_id: uuid.UUID, name: str, type_: str, description: str) -> None:
    st.markdown(f"**Edit or delete the selected entity** ({name})")
    with st.form("graph_edit_entity"):
        ename = st.text_input("Name", value=name, key="graph_edit_name")
        etype = st.text_input("Type", value=type_, key="graph_edit_type")
        edesc = st.text_area("Description", value=description, key="graph_edit_desc")
        if st.form_submit_button("Save changes"):
            with show_errors():
                kg.update_entity(principal, entity_id, name=ename, type_=etype, description=edesc)
                _changed()
                st.success("Saved.")


def _edit_relation(graph: ExploredGraph, entity_id: uuid.UUID) -> None:
    """Pick one of the selected entity's relations: change it or delete it."""
    options = {
        str(r.id): f"{r.source_name} —{r.type}→ {r.target_name}"
        for r in graph.edges
        if entity_id in (r.source_id, r.target_id)
    }
    if not options:
        return
    rel_id = st.selectbox(
        "Relation", list(options), format_func=lambda i: options[i], key="graph_del_rel_pick"
    )
    current = next(r for r in graph.edges if str(r.id) == rel_id)
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
            flash("Relation deleted.")


def _delete_entity(entity_id: uuid.UUID) -> None:
    sure = st.checkbox("Yes, delete this entity and its relations", key="graph_del_sure")
    if st.button("Delete entity", key="graph_del_entity", disabled=not sure):
        with show_errors():
            kg.delete_entity(principal, entity_id)
            _changed()
            if str(entity_id) == st.session_state.get(ROOT):
                for key in (ROOT, EXPANDED, PATH):
                    st.session_state.pop(key, None)
            st.session_state[SELECTED] = st.session_state.get(ROOT)
            flash("Entity deleted.")


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
        st.dataframe(job.result, hide_index=True, key="graph_import_rejected")


# -- the page ----------------------------------------------------------------------------------

stats = header()
show_flash()
choices = _choices()
restore_from_url(choices)
take_search(choices)
ctl = controls(stats, {**choices, **_labels()}) if choices else None
graph = explored(ctl) if ctl is not None else None
if graph is None and not st.session_state.get(ROOT):
    empty_state()
graph_area = st.container()
options = {**choices, **_labels()}
# The open tab is kept in the session (a tab click reruns the page), so it stays open when the
# graph above appears or changes (after an import): browser-local, it was sometimes reset to
# the first one when the page was redrawn around it, hiding an import's summary.
path_pane, table_pane, edit_pane, import_pane = st.tabs(
    ["Path finder", "Table", "Add & edit", "Import"], key="graph_tabs", on_change="rerun"
)
with path_pane:
    if graph is not None:
        path_tab(options, ctl.relation_types if ctl else [])
with table_pane:
    if graph is not None:
        table_tab(graph)
with edit_pane:
    edit_tab(graph, options)
with import_pane:
    import_tab()
if graph is not None:
    with graph_area:
        graph_pane(with_path(graph, st.session_state.get(PATH)))
    sync_url()
