"""The page helpers of jarvis/ui/components.py: errors shown (never raised), flash messages."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def errors_page() -> None:
    import streamlit as st

    from jarvis.errors import PermissionDeniedError, ValidationError
    from jarvis.ui.components import show_errors

    mode = st.session_state.get("mode", "show")
    with show_errors():
        st.write("before")
        if mode == "show":
            raise ValidationError("Name is required.")
        if mode == "bug":
            raise KeyError("not a Jarvis error")
        st.write("not reached when it fails")
    if mode == "stop":
        with show_errors(stop=True):
            raise PermissionDeniedError("Administrators only.")
    st.write("after")


def texts(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown]


def test_a_jarvis_error_is_shown_and_the_rest_of_the_block_skipped() -> None:
    at = AppTest.from_function(errors_page).run()
    assert not at.exception
    assert [e.value for e in at.error] == ["Name is required."]
    assert texts(at) == ["before", "after"]


def test_stop_ends_the_page_after_showing_the_error() -> None:
    at = AppTest.from_function(errors_page)
    at.session_state["mode"] = "stop"
    at = at.run()
    assert not at.exception
    assert [e.value for e in at.error] == ["Administrators only."]
    assert "after" not in texts(at)


def test_other_errors_are_not_swallowed() -> None:
    at = AppTest.from_function(errors_page)
    at.session_state["mode"] = "bug"
    at = at.run()
    assert at.exception
    assert not at.error


def flash_page() -> None:
    import streamlit as st

    from jarvis.errors import ConflictError
    from jarvis.ui.components import flash, show_errors, show_flash

    def callback() -> None:
        with show_errors(in_callback=True):
            raise ConflictError("That name is taken.")

    show_flash()
    st.write(f"run {st.session_state.setdefault('runs', 0)}")
    st.session_state["runs"] += 1
    if st.button("Save", key="save"):
        flash("Saved.")
    st.button("Save in a callback", key="save_cb", on_click=callback)


def test_a_flash_is_shown_once_after_the_rerun_it_starts() -> None:
    at = AppTest.from_function(flash_page).run()
    assert not at.success
    at.button(key="save").click()
    at = at.run()
    assert not at.exception
    assert [s.value for s in at.success] == ["Saved."]
    assert texts(at)[-1] == "run 2"  # the click's run, then the rerun that shows the message
    at = at.run()
    assert not at.success  # once


def test_an_error_in_a_callback_is_shown_by_the_next_run() -> None:
    at = AppTest.from_function(flash_page).run()
    at.button(key="save_cb").click()
    at = at.run()
    assert not at.exception
    assert [e.value for e in at.error] == ["That name is taken."]
    at = at.run()
    assert not at.error
