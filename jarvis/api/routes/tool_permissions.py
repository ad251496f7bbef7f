"""Which tools the agent may use for the caller (the seed's ``/tool-permissions``).

A built-in tool is **allowed by default** (no choice stored: ``source = "default"``); the tools of
an admin-registered MCP server (``server.tool``, ``group`` = the server) take the server's
default, **denied** unless the admin chose otherwise (``default_allowed``). An explicit choice
allows or denies a tool (``source = "user"``) until it is reset. A tool that needs a secret
(web search: a Tavily key) is offered to the model only once that secret is saved (``usable``).
Request bodies take ``tool_id`` (or the seed's ``toolId``) and ``allowed`` (or ``granted``).
An unknown tool id is a 404 in a path and a 422 naming the field in a body.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import AliasChoices, BaseModel, Field, StrictBool, field_validator

from jarvis.api.deps import CurrentUser, ServicesDep
from jarvis.api.problems import PROBLEM_RESPONSES
from jarvis.services.permissions import ToolPermissionView

router = APIRouter(
    prefix="/tool-permissions", tags=["tool permissions"], responses=PROBLEM_RESPONSES
)


class ToolPermission(BaseModel):
    tool_id: str
    name: str
    description: str
    allowed: bool = Field(description="Whether the agent may call it.")
    state: Literal["default", "allowed", "denied"]
    source: Literal["default", "user"] = Field(
        description="default: nothing chosen (see default_allowed); user: your explicit "
        "allow or deny."
    )
    default_allowed: bool = Field(description="Whether the tool is allowed with no choice.")
    group: str | None = Field(
        default=None, description="The MCP server the tool comes from (null: built-in)."
    )
    required_secret: str | None = Field(description="Provider whose key the tool needs, if any.")
    secret_available: bool
    usable: bool = Field(description="Offered to the model: allowed and its secret saved.")
    updated_at: datetime | None = Field(description="When you last chose (null: default).")

    @classmethod
    def of(cls, v: ToolPermissionView) -> ToolPermission:
        return cls(
            tool_id=v.tool.id,
            name=v.tool.name,
            description=v.tool.description,
            allowed=v.allowed,
            state=v.state,
            source="default" if v.state == "default" else "user",
            default_allowed=v.tool.default_allowed,
            group=v.tool.group,
            required_secret=v.tool.required_secret,
            secret_available=v.secret_available,
            usable=v.usable,
            updated_at=v.updated_at,
        )


class ToolCheck(BaseModel):
    tool_id: str
    allowed: bool


class PermissionChoice(BaseModel):
    tool_id: str = Field(
        max_length=100, validation_alias=AliasChoices("tool_id", "toolId"), examples=["calculator"]
    )
    allowed: StrictBool = Field(validation_alias=AliasChoices("allowed", "granted"))


class BulkChoices(BaseModel):
    permissions: list[PermissionChoice] = Field(min_length=1, max_length=200)

    @field_validator("permissions")
    @classmethod
    def _one_choice_per_tool(cls, choices: list[PermissionChoice]) -> list[PermissionChoice]:
        seen: dict[str, bool] = {}
        for c in choices:
            if seen.setdefault(c.tool_id, c.allowed) != c.allowed:
                raise ValueError(f"{c.tool_id!r} is both allowed and denied.")
        return choices


class BulkResult(BaseModel):
    changed: int = Field(description="How many tools now have the chosen state.")


@router.get("", response_model=list[ToolPermission])
def list_permissions(user: CurrentUser, services: ServicesDep) -> list[ToolPermission]:
    """Every tool with whether it is allowed, and whether by default or by your choice."""
    return [ToolPermission.of(v) for v in services.permissions.list_for(user)]


@router.get("/denied", response_model=list[ToolPermission])
def list_denied(user: CurrentUser, services: ServicesDep) -> list[ToolPermission]:
    """The tools you denied."""
    return [ToolPermission.of(v) for v in services.permissions.list_for(user) if not v.allowed]


@router.get("/check/{tool_id}", response_model=ToolCheck)
def check_permission(tool_id: str, user: CurrentUser, services: ServicesDep) -> ToolCheck:
    """Whether the agent may call this tool for you."""
    view = services.permissions.get(user, tool_id)
    return ToolCheck(tool_id=view.tool.id, allowed=view.allowed)


@router.post("", response_model=ToolPermission)
def set_permission(
    body: PermissionChoice, user: CurrentUser, services: ServicesDep
) -> ToolPermission:
    """Allow or deny one tool explicitly."""
    return ToolPermission.of(services.permissions.set(user, body.tool_id, body.allowed))


@router.post("/bulk", response_model=BulkResult)
def set_permissions(body: BulkChoices, user: CurrentUser, services: ServicesDep) -> BulkResult:
    """Allow and deny several tools at once: all of them change, or (an unknown id) none."""
    changes = {c.tool_id: c.allowed for c in body.permissions}
    return BulkResult(changed=services.permissions.apply(user, changes))


@router.delete("/{tool_id}", response_model=ToolPermission)
def reset_permission(tool_id: str, user: CurrentUser, services: ServicesDep) -> ToolPermission:
    """Forget your choice for this tool: back to its default."""
    return ToolPermission.of(services.permissions.reset_one(user, tool_id))
