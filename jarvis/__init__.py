"""Jarvis: a multi-user AI assistant platform with an operations dashboard."""

__version__ = "0.1.0"
