"""Which tools the agent may use for a user.

No row means the tool's default: **allowed** for the built-ins, the server's ``default_allowed``
for an MCP server's tools (denied unless the admin chose otherwise). A row records an explicit grant (``granted = true``) or
deny (``false``); "reset" deletes rows. Everything runs in the user's unit of work (row-level
security) and each change is an audit event. :meth:`PermissionsService.tools_for` is what the
orchestrator offers the model: permitted tools whose required secret the user has.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from jarvis.clock import Clock
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.errors import NotFoundError, PermissionDeniedError, ValidationError
from jarvis.identity import Principal
from jarvis.tools.registry import ToolRegistry, ToolSpec

log = logging.getLogger(__name__)

State = Literal["default", "allowed", "denied"]


@dataclass(frozen=True, slots=True)
class ToolPermissionView:
    """One row of the tools page."""

    tool: ToolSpec
    state: State
    updated_at: datetime | None
    #: False when the tool needs a secret the user has not saved.
    secret_available: bool

    @property
    def allowed(self) -> bool:
        if self.state == "default":
            return self.tool.default_allowed
        return self.state == "allowed"

    @property
    def usable(self) -> bool:
        """Offered to the model: allowed and its secret (if any) present."""
        return self.allowed and self.secret_available


class PermissionsService:
    """Per-user allow / deny of tools (default: the tool's own, see :class:`ToolSpec`)."""

    def __init__(self, uow: UnitOfWorkFactory, registry: ToolRegistry, clock: Clock) -> None:
        self._uow = uow
        self._registry = registry
        self._clock = clock

    @property
    def registry(self) -> ToolRegistry:
        return self._registry

    def list_for(self, principal: Principal) -> list[ToolPermissionView]:
        """Every registered tool with the user's state (default / allowed / denied)."""
        with self._uow(principal) as uow:
            stored = uow.permissions.states(principal.user_id)
            # Plain values: the rows expire when the unit of work ends.
            rows = {t: (r.granted, r.updated_at) for t, r in stored.items()}
            providers = uow.secrets.providers(principal.user_id)
        views = []
        for spec in self._registry.all():
            granted, updated_at = rows.get(spec.id, (None, None))
            state: State = "default" if granted is None else ("allowed" if granted else "denied")
            views.append(
                ToolPermissionView(
                    tool=spec,
                    state=state,
                    updated_at=updated_at,
                    secret_available=spec.required_secret is None
                    or spec.required_secret in providers,
                )
            )
        return views

    def is_allowed(self, principal: Principal, tool_id: str) -> bool:
        """Check one tool (unknown tools are never allowed). Ignores the secret: see tools_for."""
        spec = self._registry.get(tool_id)
        if spec is None:
            return False
        with self._uow(principal) as uow:
            row = uow.permissions.get(principal.user_id, spec.id)
            return spec.default_allowed if row is None else bool(row.granted)

    def authorize_call(
        self, principal: Principal, tool_id: str, *, channel: str, ip: str | None = None
    ) -> None:
        """A client outside the agent (``channel``: ``"mcp"``) is about to run ``tool_id`` as
        the user: the same per-user permission as the agent's applies, and the call is
        audited (``tool.called`` / ``tool.denied``). :class:`PermissionDeniedError` when the
        user denied the tool (or it is unknown)."""
        spec = self._registry.get(tool_id)
        with self._uow(principal) as uow:
            row = uow.permissions.get(principal.user_id, tool_id) if spec is not None else None
            allowed = spec is not None and (
                spec.default_allowed if row is None else bool(row.granted)
            )
            uow.audit.record(
                "tool.called" if allowed else "tool.denied",
                user_id=principal.user_id,
                target=f"tool:{tool_id}"[:300],
                details={"tool_id": tool_id, "channel": channel},
                ip=ip,
            )
            uow.commit()
        if not allowed:
            raise PermissionDeniedError(
                f"You have not allowed the tool {tool_id}. Allow it on the Tools page "
                "to use it here."
            )

    def tools_for(self, principal: Principal) -> list[ToolSpec]:
        """Tools to offer the model: permitted and with their required secret present."""
        return [v.tool for v in self.list_for(principal) if v.usable]

    def usable_tools(
        self, states: Mapping[str, bool], secret_providers: Collection[str]
    ) -> list[ToolSpec]:
        """:meth:`tools_for` from a snapshot the caller read already (stored grants, secret
        providers): what a run offers the model, read in the run's admission."""
        return [
            spec
            for spec in self._registry.all()
            if states.get(spec.id, spec.default_allowed)
            and (spec.required_secret is None or spec.required_secret in secret_providers)
        ]

    def get(self, principal: Principal, tool_id: str) -> ToolPermissionView:
        """One tool's row, as :meth:`list_for` shows it; :class:`NotFoundError` for a tool
        that does not exist."""
        self._require(tool_id)
        return next(v for v in self.list_for(principal) if v.tool.id == tool_id)

    def set(self, principal: Principal, tool_id: str, granted: bool) -> ToolPermissionView:
        """Explicitly allow (``granted=True``) or deny one tool; its row now."""
        self.bulk(principal, [tool_id], granted)
        return self.get(principal, tool_id)

    def bulk(self, principal: Principal, tool_ids: Iterable[str], granted: bool) -> int:
        """Explicitly allow or deny several tools at once; returns how many."""
        return self.apply(principal, dict.fromkeys(tool_ids, granted))

    def apply(self, principal: Principal, changes: Mapping[str, bool]) -> int:
        """Allow some tools and deny others (``{tool_id: granted}``) in one transaction; an
        unknown tool id changes nothing (:class:`ValidationError`). Returns how many."""
        ids = self._known(changes)
        if not ids:
            return 0
        now = self._clock.now()
        with self._uow(principal) as uow:
            for granted in (True, False):
                group = [t for t in ids if bool(changes[t]) is granted]
                if not group:
                    continue
                uow.permissions.upsert(principal.user_id, group, granted, now)
                uow.audit.record(
                    "tool_permission.granted" if granted else "tool_permission.denied",
                    user_id=principal.user_id,
                    target="tools:" + ",".join(group)[:290],
                    details={"tool_ids": group, "granted": granted},
                )
            uow.commit()
        log.info("tool permissions changed", extra={"changes": {t: changes[t] for t in ids}})
        return len(ids)

    def reset(self, principal: Principal, tool_id: str | Iterable[str] | None = None) -> int:
        """Back to the default for one tool, several, or (``None``) all; returns rows removed."""
        ids = (
            None
            if tool_id is None
            else self._known([tool_id] if isinstance(tool_id, str) else tool_id)
        )
        with self._uow(principal) as uow:
            removed = uow.permissions.delete(principal.user_id, ids)
            uow.audit.record(
                "tool_permission.reset",
                user_id=principal.user_id,
                target="tools:" + (",".join(ids)[:290] if ids is not None else "*"),
                details={"tool_ids": ids if ids is not None else "all", "removed": removed},
            )
            uow.commit()
        return removed

    def reset_one(self, principal: Principal, tool_id: str) -> ToolPermissionView:
        """Back to the default for one tool; its row now (:class:`NotFoundError` for a tool
        that does not exist)."""
        self._require(tool_id)
        self.reset(principal, tool_id)
        return self.get(principal, tool_id)

    def _require(self, tool_id: str) -> None:
        if tool_id not in self._registry:
            raise NotFoundError(
                f"There is no tool {tool_id[:100]!r}. Tools: {', '.join(self._registry.ids())}."
            )

    def _known(self, tool_ids: Iterable[str]) -> list[str]:
        ids = list(dict.fromkeys(tool_ids))
        unknown = [t for t in ids if t not in self._registry]
        if unknown:
            raise ValidationError(
                f"Unknown tool: {', '.join(t[:100] for t in unknown[:5])}.", field="tool_id"
            )
        return ids
