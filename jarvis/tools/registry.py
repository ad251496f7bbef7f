"""The tool registry: what each tool is (metadata) and, once bound, how to run it (handler).

Metadata (:class:`ToolSpec`) is plain data: id, display name, description, the JSON schema of the
arguments and the secret provider the tool needs (if any). Handlers are attached separately with
:meth:`ToolRegistry.bind`, so the metadata (permissions page, tool offers to the model) does not
depend on the handlers' modules.

Besides the built-ins, a registry may have *sources* attached (:meth:`ToolRegistry.attach`):
tools that change while the process runs, such as the tools of admin-registered MCP servers.
Their ids are ``server.tool``; on the wire to a model the dot becomes ``__`` (OpenAI function
names allow only ``[a-zA-Z0-9_-]``, at most 64 characters): :attr:`ToolSpec.wire_name`, and
:meth:`ToolRegistry.get` resolves either form.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from jarvis.errors import NotFoundError

#: ``handler(ctx, args) -> dict`` (see :mod:`jarvis.tools.builtin`); kept loose here.
Handler = Callable[..., Any]

_WIRE_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
MAX_WIRE_NAME = 64


def wire_name(tool_id: str) -> str:
    """The function name a model sees for ``tool_id``: ``server.tool`` -> ``server__tool``,
    any other character outside ``[A-Za-z0-9_-]`` -> ``_``, at most 64 characters."""
    return _WIRE_UNSAFE.sub("_", tool_id.replace(".", "__", 1))[:MAX_WIRE_NAME]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool as the model and the permissions page see it."""

    id: str
    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    required_secret: str | None = None
    #: The permission when the user set none (built-ins: allowed; MCP tools: the server's).
    default_allowed: bool = True
    #: Where the tool comes from, for grouping (None: built-in; else the MCP server's name).
    group: str | None = None
    #: The largest result (bytes of JSON) the model gets from it; None: the engine's default.
    result_limit: int | None = None

    @property
    def wire_name(self) -> str:
        """The name on the wire to a model (see :func:`wire_name`)."""
        return wire_name(self.id)

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI ``tools=[...]`` entry (function calling)."""
        return {
            "type": "function",
            "function": {
                "name": self.wire_name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }

    def to_anthropic(self) -> dict[str, Any]:
        """The Anthropic ``tools=[...]`` entry."""
        return {
            "name": self.wire_name,
            "description": self.description,
            "input_schema": self.parameters,
        }


class ToolSource(Protocol):
    """Tools that may change while the process runs (the MCP servers' tools)."""

    def specs(self) -> Sequence[ToolSpec]:
        """The tools now (cheap: called for every listing)."""
        ...

    def handler(self, tool_id: str) -> Handler | None:
        """The function that runs ``tool_id``, or None if the source has no such tool."""
        ...


class ToolRegistry:
    """Tools by id, in registration order (built-ins, then attached sources' tools), with
    optional handlers."""

    def __init__(self, specs: Iterable[ToolSpec] = ()) -> None:
        self._specs: dict[str, ToolSpec] = {}
        self._handlers: dict[str, Handler] = {}
        self._sources: dict[str, ToolSource] = {}
        for spec in specs:
            self.register(spec)

    def attach(self, source: ToolSource, *, key: str = "mcp") -> None:
        """Add a source of tools under ``key`` (replacing the one attached under it before);
        a built-in id always wins over a source's."""
        self._sources[key] = source

    def _merged(self) -> dict[str, ToolSpec]:
        if not self._sources:
            return self._specs
        merged = dict(self._specs)
        for source in self._sources.values():
            for spec in source.specs():
                merged.setdefault(spec.id, spec)
        return merged

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
        return list(self._merged().values())

    def ids(self) -> list[str]:
        return list(self._merged())

    def get(self, tool_id: str) -> ToolSpec | None:
        """The tool by id or by wire name, or None for an unknown one (a model may invent
        one)."""
        merged = self._merged()
        spec = merged.get(tool_id)
        if spec is None and tool_id not in self._specs:
            spec = next((s for s in merged.values() if s.wire_name == tool_id), None)
        return spec

    def require(self, tool_id: str) -> ToolSpec:
        """The tool, or :class:`NotFoundError`."""
        spec = self.get(tool_id)
        if spec is None:
            raise NotFoundError(f"There is no tool called {tool_id[:100]!r}.")
        return spec

    def handler(self, tool_id: str) -> Handler | None:
        found = self._handlers.get(tool_id)
        if found is None and tool_id not in self._specs:
            for source in self._sources.values():
                found = source.handler(tool_id)
                if found is not None:
                    break
        return found

    def __contains__(self, tool_id: object) -> bool:
        return isinstance(tool_id, str) and tool_id in self._merged()

    def __iter__(self) -> Iterator[ToolSpec]:
        return iter(self.all())

    def __len__(self) -> int:
        return len(self._merged())
