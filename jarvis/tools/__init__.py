"""Tools: the registry (metadata), built-in tool specs and handlers."""
