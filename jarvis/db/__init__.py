"""Database layer: engine, embedded server, tables, unit of work, repositories, migrations."""
