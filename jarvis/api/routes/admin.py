"""Administration: users, the sign-up switch, budgets, prices and the audit log.

Administrators only: anyone else gets 403 problem+json. Every change is audited by the
service that makes it; no route here ever returns a password, a hash or a secret.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from jarvis.api.deps import CurrentAdmin, ServicesDep
from jarvis.api.fields import fields_named
from jarvis.api.problems import PROBLEM_RESPONSES
from jarvis.identity import Principal
from jarvis.services.admin import AuditEventView, UserView
from jarvis.services.pricing.service import PROVIDERS
from jarvis.services.pricing.views import PriceInput, PriceView
from jarvis.services.usage.views import BudgetStatus, UserBudget

router = APIRouter(prefix="/admin", tags=["admin"], responses=PROBLEM_RESPONSES)

ProviderName = Literal["openai", "anthropic", "openai_compatible", "offline"]
assert set(get_args(ProviderName)) == set(PROVIDERS), "keep ProviderName in step with PROVIDERS"

Usd = Annotated[Decimal, Field(ge=0, le=1_000_000, max_digits=12, decimal_places=2)]
PerMillion = Annotated[
    Decimal, Field(ge=0, lt=1_000_000, max_digits=16, decimal_places=6, examples=["0.15"])
]


# -- models ------------------------------------------------------------------------------------


class AdminUser(BaseModel):
    id: uuid.UUID
    email: str
    display_name: str
    role: Literal["admin", "user"]
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None

    @classmethod
    def of(cls, u: UserView) -> AdminUser:
        return cls(
            id=u.user_id,
            email=u.email,
            display_name=u.display_name,
            role="admin" if u.role == "admin" else "user",
            is_active=u.is_active,
            created_at=u.created_at,
            last_login_at=u.last_login_at,
        )


class NewUser(BaseModel):
    email: str = Field(max_length=320, examples=["grace@example.com"])
    password: str = Field(max_length=1024)
    display_name: str = Field("", max_length=200)
    role: Literal["admin", "user"] = "user"


class CreatedUser(BaseModel):
    id: uuid.UUID
    email: str
    display_name: str
    role: Literal["admin", "user"]

    @classmethod
    def of(cls, p: Principal) -> CreatedUser:
        return cls(id=p.user_id, email=p.email, display_name=p.display_name, role=p.role)


class RoleChange(BaseModel):
    role: Literal["admin", "user"]


class ActiveChange(BaseModel):
    active: bool = Field(description="false deactivates the account and ends its sessions.")


class PasswordReset(BaseModel):
    new_password: str = Field(max_length=1024)


class SignUp(BaseModel):
    open: bool = Field(description="Whether anyone may register themselves.")


class UserBudgetChange(BaseModel):
    monthly_budget_usd: Usd | None = Field(
        description="The user's monthly budget in USD; null returns them to the default."
    )


class UserBudgetOut(BaseModel):
    user_id: uuid.UUID
    monthly_budget_usd: Decimal | None


class BudgetOverride(BaseModel):
    user_id: uuid.UUID
    email: str
    display_name: str
    monthly_budget_usd: Decimal | None = Field(description="null: the default applies.")

    @classmethod
    def of(cls, b: UserBudget) -> BudgetOverride:
        return cls(
            user_id=b.user_id,
            email=b.email,
            display_name=b.display_name,
            monthly_budget_usd=b.override_usd,
        )


class DefaultBudget(BaseModel):
    monthly_budget_usd: Usd


class DefaultBudgetOut(BaseModel):
    monthly_budget_usd: Decimal


class Budget(BaseModel):
    """Month-to-date spend (the user's local month) against their monthly budget."""

    budget_usd: Decimal
    spent_usd: Decimal
    fraction: float
    warning: bool = Field(description="80 % or more spent.")
    exceeded: bool = Field(description="Runs are refused until the month ends.")
    unpriced_runs: int
    source: str = Field(description='"user" (override), "admin default" or "default".')

    @classmethod
    def of(cls, b: BudgetStatus) -> Budget:
        return cls(
            budget_usd=b.budget_usd,
            spent_usd=b.spent_usd,
            fraction=b.fraction,
            warning=b.warning,
            exceeded=b.exceeded,
            unpriced_runs=b.unpriced_runs,
            source=b.source,
        )


class Price(BaseModel):
    id: int
    provider: str
    model: str = Field(description="A model name or a pattern ending in * (gpt-4o-mini*).")
    input_per_mtok: Decimal = Field(description="USD per million input tokens.")
    output_per_mtok: Decimal
    cache_read_per_mtok: Decimal
    cache_write_per_mtok: Decimal
    effective_from: date
    created_at: datetime | None

    @classmethod
    def of(cls, p: PriceView) -> Price:
        return cls(
            id=p.id,
            provider=p.provider,
            model=p.model,
            input_per_mtok=p.input_per_mtok,
            output_per_mtok=p.output_per_mtok,
            cache_read_per_mtok=p.cache_read_per_mtok,
            cache_write_per_mtok=p.cache_write_per_mtok,
            effective_from=p.effective_from,
            created_at=p.created_at,
        )


class NewPrice(BaseModel):
    """A new price version; earlier versions stay (runs keep the price they were costed at)."""

    provider: ProviderName
    model: str = Field(min_length=1, max_length=200, examples=["gpt-4o-mini*"])
    input_per_mtok: PerMillion
    output_per_mtok: PerMillion
    cache_read_per_mtok: PerMillion = Decimal(0)
    cache_write_per_mtok: PerMillion = Decimal(0)
    effective_from: date


class AuditEvent(BaseModel):
    id: uuid.UUID
    created_at: datetime
    action: str
    user_id: uuid.UUID | None = Field(description="Whom it concerns.")
    user_email: str | None
    actor_id: uuid.UUID | None = Field(description="Who did it.")
    actor_email: str | None
    target: str | None
    ip: str | None
    details: dict[str, Any]

    @classmethod
    def of(cls, e: AuditEventView) -> AuditEvent:
        return cls(
            id=e.id,
            created_at=e.created_at,
            action=e.action,
            user_id=e.user_id,
            user_email=e.user_email,
            actor_id=e.actor_id,
            actor_email=e.actor_email,
            target=e.target,
            ip=e.ip,
            details=dict(e.details),
        )


# -- users -------------------------------------------------------------------------------------


@router.get("/users", response_model=list[AdminUser])
def list_users(
    admin: CurrentAdmin,
    services: ServicesDep,
    q: Annotated[str, Query(max_length=320, description="Part of an email or a name.")] = "",
) -> list[AdminUser]:
    """Every user, oldest first (only those matching ``q`` when given)."""
    with fields_named(query="q"):
        users = services.admin.list_users(admin, q)
    return [AdminUser.of(u) for u in users]


@router.post("/users", response_model=CreatedUser, status_code=status.HTTP_201_CREATED)
def create_user(body: NewUser, admin: CurrentAdmin, services: ServicesDep) -> CreatedUser:
    """Create an account (whatever the sign-up switch says); tell the person their password."""
    return CreatedUser.of(
        services.accounts.register(
            body.email, body.password, body.display_name, role=body.role, actor=admin
        )
    )


@router.put("/users/{user_id}/role", response_model=AdminUser)
def change_role(
    user_id: uuid.UUID, body: RoleChange, admin: CurrentAdmin, services: ServicesDep
) -> AdminUser:
    """Make a user an admin or a regular user (the last active admin stays one: 409)."""
    return AdminUser.of(services.admin.set_role(admin, user_id, body.role))


@router.put("/users/{user_id}/active", response_model=AdminUser)
def change_active(
    user_id: uuid.UUID, body: ActiveChange, admin: CurrentAdmin, services: ServicesDep
) -> AdminUser:
    """Activate or deactivate an account; deactivating signs the user out everywhere."""
    return AdminUser.of(services.admin.set_active(admin, user_id, body.active))


@router.post("/users/{user_id}/password", status_code=status.HTTP_204_NO_CONTENT)
def reset_password(
    user_id: uuid.UUID, body: PasswordReset, admin: CurrentAdmin, services: ServicesDep
) -> None:
    """Set a new password for a user (their sessions end; tell them the new password)."""
    with fields_named(password="new_password"):  # noqa: S106 - field names, not a secret
        services.admin.reset_password(admin, user_id, body.new_password)


@router.get("/users/{user_id}/budget", response_model=Budget)
def user_budget(user_id: uuid.UUID, admin: CurrentAdmin, services: ServicesDep) -> Budget:
    """A user's month-to-date spend against their monthly budget."""
    return Budget.of(services.usage.budget_status(admin, user_id))


@router.put("/users/{user_id}/budget", response_model=UserBudgetOut)
def set_user_budget(
    user_id: uuid.UUID, body: UserBudgetChange, admin: CurrentAdmin, services: ServicesDep
) -> UserBudgetOut:
    """Set a user's monthly budget override, or clear it with ``null``."""
    with fields_named(budget="monthly_budget_usd"):
        value = services.usage.set_user_budget(admin, user_id, body.monthly_budget_usd)
    return UserBudgetOut(user_id=user_id, monthly_budget_usd=value)


# -- sign-up -----------------------------------------------------------------------------------


@router.get("/signup", response_model=SignUp)
def signup(_admin: CurrentAdmin, services: ServicesDep) -> SignUp:
    """Whether people may register themselves."""
    return SignUp(open=services.accounts.signup_open())


@router.put("/signup", response_model=SignUp)
def set_signup(body: SignUp, admin: CurrentAdmin, services: ServicesDep) -> SignUp:
    """Open or close self-service sign-up."""
    services.accounts.set_signup_open(admin, body.open)
    return body


# -- budgets -----------------------------------------------------------------------------------


@router.get("/budgets", response_model=list[BudgetOverride])
def list_budgets(admin: CurrentAdmin, services: ServicesDep) -> list[BudgetOverride]:
    """Every user with their monthly budget override (null: the default applies)."""
    return [BudgetOverride.of(b) for b in services.usage.list_budgets(admin)]


@router.get("/budgets/default", response_model=DefaultBudgetOut)
def default_budget(admin: CurrentAdmin, services: ServicesDep) -> DefaultBudgetOut:
    """The monthly budget of every user without an override."""
    return DefaultBudgetOut(monthly_budget_usd=services.usage.default_budget(admin))


@router.put("/budgets/default", response_model=DefaultBudgetOut)
def set_default_budget(
    body: DefaultBudget, admin: CurrentAdmin, services: ServicesDep
) -> DefaultBudgetOut:
    """Set the monthly budget of every user without an override."""
    with fields_named(budget="monthly_budget_usd"):
        value = services.usage.set_default_budget(admin, body.monthly_budget_usd)
    return DefaultBudgetOut(monthly_budget_usd=value)


# -- prices ------------------------------------------------------------------------------------


@router.get("/prices", response_model=list[Price])
def list_prices(
    admin: CurrentAdmin,
    services: ServicesDep,
    history: Annotated[
        bool, Query(description="Every version, not only the ones in force today.")
    ] = False,
) -> list[Price]:
    """The price of each model in force today (or, with ``history``, every version)."""
    prices = (
        services.pricing.list_prices(admin) if history else services.pricing.current_prices(admin)
    )
    return [Price.of(p) for p in prices]


@router.post("/prices", response_model=Price, status_code=status.HTTP_201_CREATED)
def add_price(body: NewPrice, admin: CurrentAdmin, services: ServicesDep) -> Price:
    """Add a price version from ``effective_from`` (409 if that model has one on that day)."""
    return Price.of(
        services.pricing.add_price(
            admin,
            PriceInput(
                provider=body.provider,
                model=body.model,
                input_per_mtok=body.input_per_mtok,
                output_per_mtok=body.output_per_mtok,
                cache_read_per_mtok=body.cache_read_per_mtok,
                cache_write_per_mtok=body.cache_write_per_mtok,
                effective_from=body.effective_from,
            ),
        )
    )


# -- audit -------------------------------------------------------------------------------------


@router.get("/audit", response_model=list[AuditEvent])
def audit_log(
    admin: CurrentAdmin,
    services: ServicesDep,
    action: Annotated[
        str | None, Query(max_length=64, description="One action (see /admin/audit/actions).")
    ] = None,
    user_id: Annotated[uuid.UUID | None, Query(description="Events about or by this user.")] = None,
    since: Annotated[datetime | None, Query(description="At or after.")] = None,
    until: Annotated[datetime | None, Query(description="Before.")] = None,
    limit: Annotated[int, Query(ge=1, le=2000)] = 200,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> list[AuditEvent]:
    """Audit events, newest first (page with ``limit`` / ``offset``)."""
    return [
        AuditEvent.of(e)
        for e in services.admin.audit_log(
            admin,
            action=action,
            user_id=user_id,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )
    ]


@router.get("/audit/actions", response_model=list[str])
def audit_actions(admin: CurrentAdmin, services: ServicesDep) -> list[str]:
    """The action names in the log (for the ``action`` filter)."""
    return services.admin.audit_actions(admin)
