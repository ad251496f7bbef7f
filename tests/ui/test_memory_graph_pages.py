"""The memory page and the knowledge-graph explorer, driven through app.py with AppTest."""

from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest

from jarvis.identity import Principal
from jarvis.ui.services import get_services
from tests import factories
from tests.ui.conftest import open_page


def mem_user() -> Principal:
    """The only (so administrator) account of the fresh database."""
    return factories.admin_account(get_services(), "mem@example.com", name="Mem")


def frame(at: AppTest, column: str):  # type: ignore[no-untyped-def]
    """The first table on the page that has ``column`` (AppTest tables carry no key)."""
    for df in at.dataframe:
        if column in df.value.columns:
            return df.value
    raise AssertionError(f"no table with a {column!r} column")


def test_memory_page_add_search_and_delete(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    principal = mem_user()
    at = open_page(new_app, "app_pages/memory.py", principal)
    assert any(t.value == "Memory" for t in at.title)
    # the embedder is labelled: the default searches by meaning, offline
    assert any("Embeddings: wordllama (meaning, offline)" in c.value for c in at.caption)
    assert not any("lexical" in i.value for i in at.info)

    at.text_area(key="memory_new_content").input("My cat Tom is allergic to fish")
    at.button(key="FormSubmitter:memory_add_form-Save memory").click().run()
    assert not at.exception, at.exception
    assert any("Saved" in s.value for s in at.success)
    get_services().memory.store(principal, "The boiler service is booked for May")

    at.text_input(key="memory_query").input("what is Tom allergic to").run()
    assert not at.exception, at.exception
    contents = [m.value for m in at.markdown]
    assert "My cat Tom is allergic to fish" in contents
    assert any(c.value.startswith("similarity ") for c in at.caption)

    at.radio(key="memory_mode").set_value("hybrid").run()
    assert not at.exception, at.exception
    assert any("fused score" in c.value for c in at.caption)

    [hit] = [h for h in get_services().memory.search(principal, "Tom allergic", k=1)]
    at.button(key=f"memory_del_hit_{hit.id}").click().run()
    assert not at.exception, at.exception
    assert all(
        m.content != "My cat Tom is allergic to fish"
        for m in get_services().memory.browse(principal)
    )


def test_memory_page_browse_filters(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    principal = mem_user()
    at = open_page(new_app, "app_pages/memory.py", principal)
    services = get_services()
    services.memory.store(principal, "Passport renewal")
    services.memory.store(principal, "Gym on Mondays")
    at = at.run()
    assert any(m.value == "Passport renewal" for m in at.markdown)
    at.text_input(key="memory_contains").input("gym").run()
    assert not at.exception
    shown = [m.value for m in at.markdown]
    assert "Gym on Mondays" in shown and "Passport renewal" not in shown
    # No field asks the user for a run id.
    labels = [t.label for t in at.text_input]
    assert not any("run" in label.lower() for label in labels)


def test_memory_sources_link_to_their_conversation(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    principal = mem_user()
    services = get_services()
    chat = services.conversations.create_default(principal, title="Holiday plans")
    services.runs.start(principal, chat.id, "remember that the ferry leaves at 7")
    at = open_page(new_app, "app_pages/memory.py", principal)
    assert not at.exception, at.exception
    [row] = services.memory.browse(principal)
    assert row.conversation_id == chat.id and row.conversation_title == "Holiday plans"
    links = [(link.label, link.proto.page) for link in at.get("page_link")]
    assert any(label == "From: Holiday plans" for label, _page in links), links
    assert not any("run" in c.value for c in at.caption)

    # Default minimum similarity: an unrelated query lists nothing, a related one the memory.
    assert at.slider(key="memory_min_score").value == 0.12
    at.text_input(key="memory_query").input("what is my sister called").run()
    assert any("No memory matches." in i.value for i in at.info)
    at.text_input(key="memory_query").input("when does the boat depart").run()
    assert not at.exception, at.exception
    assert any("ferry leaves at 7" in m.value for m in at.markdown)


def enter_text(at: AppTest, key: str, text: str) -> AppTest:
    """Type ``text`` into a search box that accepts new options and press Enter: the browser
    sends the text itself as the value (AppTest only picks listed options, so list it)."""
    box = at.selectbox(key=key)
    box.options.append(text)
    return box.set_value(text).run()


def entity_id(name: str, principal: Principal) -> str:
    [hit] = get_services().knowledge_graph.search_entities(principal, name, limit=1, mode="name")
    return str(hit.entity.id)


def test_explorer_shows_neighbourhood_details_table_and_path(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    principal = mem_user()
    at = open_page(new_app, "app_pages/graph.py", principal)
    [empty] = [i.value for i in at.info]
    assert "empty" in empty and "**Add & edit**" in empty and "**Import**" in empty
    kg = get_services().knowledge_graph
    kg.import_data(
        principal,
        json.dumps(
            {
                "entities": [
                    {
                        "name": "Ada Lovelace",
                        "type": "person",
                        "description": "Wrote the first program",
                    }
                ],
                "relations": [
                    {"source": "Ada Lovelace", "target": "Charles Babbage", "type": "worked_with"},
                    {
                        "source": "Charles Babbage",
                        "target": "Analytical Engine",
                        "type": "designed",
                    },
                    {"source": "Analytical Engine", "target": "Punched cards", "type": "reads"},
                ],
            }
        ),
        "json",
    )
    at = at.run()  # the first entity by name is centred: Ada
    assert not at.exception, at.exception
    # one step: pick a name in the search box and the graph centres there
    at.selectbox(key="graph_search").set_value(entity_id("Charles Babbage", principal)).run()
    assert not at.exception, at.exception
    assert any(h.value == "Charles Babbage" for h in at.subheader)
    at.selectbox(key="graph_search").set_value(entity_id("Ada Lovelace", principal)).run()
    assert any(h.value == "Ada Lovelace" for h in at.subheader)
    assert any(m.value == "Wrote the first program" for m in at.markdown)
    assert at.query_params["entity"] in (
        entity_id("Ada Lovelace", principal),
        [entity_id("Ada Lovelace", principal)],
    )
    nodes = frame(at, "depth")
    assert set(nodes["name"]) == {"Ada Lovelace", "Charles Babbage"}
    details = frame(at, "direction")
    assert "None" not in details.to_string()
    at.select_slider(key="graph_depth").set_value(3).run()
    assert not at.exception, at.exception
    nodes = frame(at, "depth")
    assert set(nodes["name"]) == {
        "Ada Lovelace",
        "Charles Babbage",
        "Analytical Engine",
        "Punched cards",
    }
    edges = frame(at, "source")
    assert len(edges) == 3
    assert "None" not in edges.to_string()  # no validity dates: a dash, not "None"

    at.selectbox(key="graph_path_to").set_value(entity_id("Punched cards", principal)).run()
    at.button(key="graph_path_go").click().run()
    assert not at.exception, at.exception
    assert any(s.value.startswith("Shortest path: 3 relation(s)") for s in at.success)
    assert any(
        t.value == "Ada Lovelace —worked_with→ Charles Babbage —designed→ Analytical Engine "
        "—reads→ Punched cards"
        for t in at.text
    )
    assert any(c.value.startswith("Path highlighted: Ada Lovelace") for c in at.caption)


def test_typed_text_is_searched_and_centred(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    """Text that is not one of the listed names (Enter in the box): the best match is centred."""
    principal = mem_user()
    get_services().knowledge_graph.import_data(
        principal,
        json.dumps(
            {"relations": [{"source": "Grace Hopper", "target": "COBOL", "type": "designed"}]}
        ),
        "json",
    )
    at = open_page(new_app, "app_pages/graph.py", principal)
    at = enter_text(at, "graph_search", "hopper")
    assert not at.exception, at.exception
    assert any(h.value == "Grace Hopper" for h in at.subheader)
    assert at.selectbox(key="graph_search").value == entity_id("Grace Hopper", principal)
    at = enter_text(at, "graph_search", "cobol")
    assert not at.exception, at.exception
    assert any(h.value == "COBOL" for h in at.subheader)


def test_explorer_caps_a_hub_and_says_so(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    principal = mem_user()
    at = open_page(new_app, "app_pages/graph.py", principal)
    get_services().knowledge_graph.import_data(
        principal,
        json.dumps(
            {
                "entities": [{"name": "Big Hub", "type": "hub"}],
                "relations": [
                    {"source": "Big Hub", "target": f"Spoke {i}", "type": "has"} for i in range(400)
                ],
            }
        ),
        "json",
    )
    at = at.run()
    at.selectbox(key="graph_search").set_value(entity_id("Big Hub", principal)).run()
    at.number_input(key="graph_limit").set_value(50).run()
    assert not at.exception, at.exception
    assert any("the nearest are shown" in w.value for w in at.warning)
    assert len(frame(at, "depth")) == 50


def test_explorer_forms_create_entities_relations_and_import_report(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    principal = mem_user()
    at = open_page(new_app, "app_pages/graph.py", principal)
    at.text_input(key="graph_new_name").input("Kyoto")
    at.text_input(key="graph_new_type").input("city")
    at.button(key="FormSubmitter:graph_new_entity-Add entity").click().run()
    assert not at.exception, at.exception
    assert any("Added Kyoto" in s.value for s in at.success)
    assert any(h.value == "Kyoto" for h in at.subheader)  # the new entity is centred
    get_services().knowledge_graph.create_entity(principal, "Japan", "country")
    at = at.run()
    at.selectbox(key="graph_rel_target").set_value(entity_id("Japan", principal))
    at.text_input(key="graph_rel_type").input("located in")
    at.button(key="FormSubmitter:graph_new_relation-Add relation").click().run()
    assert not at.exception, at.exception
    assert any("Kyoto —located_in→ Japan" in s.value for s in at.success)
    assert get_services().knowledge_graph.stats(principal)["relations"] == 1
    # edit the relation through its form
    at = at.run()
    at.text_input(key="graph_edit_rel_type").input("capital of")
    at.button(key="FormSubmitter:graph_edit_relation-Save relation").click().run()
    assert not at.exception, at.exception
    assert any(s.value == "Relation saved." for s in at.success)
    assert get_services().knowledge_graph.relation_types(principal) == ["capital_of"]


def test_bad_text_in_forms_is_a_field_error_not_a_crash(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    """A NUL or an escape character typed (or pasted) into a form: the page says what is
    wrong next to the form, keeps working, and stores nothing."""
    principal = mem_user()
    at = open_page(new_app, "app_pages/memory.py", principal)
    at.text_area(key="memory_new_content").input("remember\x00this")
    at.button(key="FormSubmitter:memory_add_form-Save memory").click().run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == ["The memory contains a NUL character."]
    at.text_input(key="memory_query").input("what\x1b[2J").run()
    assert not at.exception, at.exception
    assert "The search contains an escape character." in [e.value for e in at.error]
    assert get_services().memory.browse(principal) == []

    get_services().knowledge_graph.create_entity(principal, "Bob", "person")
    at.switch_page("app_pages/graph.py").run()
    assert not at.exception, at.exception
    at = enter_text(at, "graph_search", "Ada\x00")
    assert not at.exception, at.exception
    assert "The search contains a NUL character." in [e.value for e in at.error]
    at.text_input(key="graph_new_name").input("Ada\x07")
    at.button(key="FormSubmitter:graph_new_entity-Add entity").click().run()
    assert not at.exception, at.exception
    assert "The name contains a bell character." in [e.value for e in at.error]
    assert get_services().knowledge_graph.stats(principal)["entities"] == 1
