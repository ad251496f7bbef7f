"""The tool registry: what each tool is (metadata) and, once bound, how to run it (handler).

Metadata (:class:`ToolSpec`) is plain data: id, display name, description, the JSON schema of the
arguments and the secret provider the tool needs (if any). Handlers are attached separately with
:meth:`ToolRegistry.bind`, so the metadata (permissions page, tool offers to the model) does not
depend on the handlers' modules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from jarvis.errors import NotFoundError

#: ``handler(ctx, args) -> dict`` (see :mod:`jarvis.tools.builtin`); kept loose here.
Handler = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool as the model and the permissions page see it."""

    id: str
    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    required_secret: str | None = None

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI ``tools=[...]`` entry (function calling)."""
        return {
            "type": "function",
            "function": {
                "name": self.id,
                "description": self.description,
                "parameters": self.parameters,
            },
        }

    def to_anthropic(self) -> dict[str, Any]:
        """The Anthropic ``tools=[...]`` entry."""
        return {"name": self.id, "description": self.description, "input_schema": self.parameters}


class ToolRegistry:
    """Tools by id, in registration order, with optional handlers."""

    def __init__(self, specs: Iterable[ToolSpec] = ()) -> None:
        self._specs: dict[str, ToolSpec] = {}
        self._handlers: dict[str, Handler] = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec: ToolSpec, handler: Handler | None = None) -> None:
        if spec.id in self._specs:
            raise ValueError(f"tool {spec.id!r} is registered twice")
        self._specs[spec.id] = spec
        if handler is not None:
            self._handlers[spec.id] = handler

    def bind(self, tool_id: str, handler: Handler) -> None:
        """Attach the function that runs ``tool_id``."""
        self.require(tool_id)
        self._handlers[tool_id] = handler

    def bind_all(self, handlers: dict[str, Handler]) -> None:
        for tool_id, handler in handlers.items():
            self.bind(tool_id, handler)

    def all(self) -> list[ToolSpec]:
        return list(self._specs.values())

    def ids(self) -> list[str]:
        return list(self._specs)

    def get(self, tool_id: str) -> ToolSpec | None:
        """The tool, or None for an unknown id (a model may invent one)."""
        return self._specs.get(tool_id)

    def require(self, tool_id: str) -> ToolSpec:
        """The tool, or :class:`NotFoundError`."""
        spec = self._specs.get(tool_id)
        if spec is None:
            raise NotFoundError(f"There is no tool called {tool_id[:100]!r}.")
        return spec

    def handler(self, tool_id: str) -> Handler | None:
        return self._handlers.get(tool_id)

    def __contains__(self, tool_id: object) -> bool:
        return tool_id in self._specs

    def __iter__(self) -> Iterator[ToolSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)
