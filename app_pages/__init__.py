"""Streamlit page scripts (run by st.navigation from app.py; a package only for import-linter)."""
