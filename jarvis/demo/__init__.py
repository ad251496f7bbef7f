"""Demo data: realistic users, runs, messages, tool calls and usage at COPY speed.

``jarvis demo seed`` calls :func:`jarvis.demo.runs.seed_demo`; the memory capability adds
``jarvis.demo.knowledge.seed_knowledge`` (memories and a knowledge graph), called if present.
"""
