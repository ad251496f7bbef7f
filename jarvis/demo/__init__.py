"""Demo data generation: realistic users, runs, messages, tool calls (``runs``) and a knowledge
graph with memories (``knowledge``), as rows. Nothing here touches the database:
``jarvis demo seed`` (``UsageMaintenance.seed_demo``) writes them with ``COPY``
(``jarvis.db.repositories.demo``) on the owner connection and rebuilds the usage rollups.
"""
