"""Repositories: one module per capability; each class wraps a unit of work's session."""
