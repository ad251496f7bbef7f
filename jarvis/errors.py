"""The one error tree of Jarvis.

Services raise these; adapters translate driver / SDK errors into them (``raise ... from exc``);
pages turn them into kind messages. Messages never contain a secret value, a password or a token.

    JarvisError
    ├── ConfigError                 bad or missing settings (names the variable)
    ├── ValidationError             bad user input (``field`` names the form field)
    │   └── OutboundRefusedError     an address the server may not connect to (SSRF guard)
    ├── NotFoundError               the row does not exist *for this user*
    ├── ConflictError               duplicate name, stale update
    ├── AuthError
    │   ├── InvalidCredentialsError  unknown email or wrong password (one message for both)
    │   ├── AccountLockedError       throttled; ``retry_after`` seconds
    │   ├── AccountDisabledError
    │   ├── TokenError               invalid / expired / revoked token or session
    │   └── PermissionDeniedError    signed in, but not allowed (role, tool permission)
    ├── RateLimitError              too many requests; ``retry_after`` seconds
    ├── LimitExceededError          a guard: budget, concurrent runs, step / token / cost caps
    │   └── BudgetExceededError      the month's budget is spent (or held by runs in progress)
    ├── CryptoError                 decryption failed closed (tampered / swapped / wrong key)
    ├── DatabaseError               the database failed (no host, path or SQL in the text)
    │   └── DatabaseUnavailableError  unreachable / went away: try again shortly
    ├── ToolError                   a tool failed or got invalid arguments
    └── ProviderError               an LLM / embedding provider failed
        ├── ProviderAuthError
        ├── ProviderRateLimitError
        ├── ProviderTimeoutError
        ├── ProviderBadRequestError
        ├── ProviderServerError
        └── ProviderBadResponseError  the reply was not a completion (an HTML page, nothing)
"""

from __future__ import annotations


class JarvisError(Exception):
    """Base of every error Jarvis raises on purpose. ``str(err)`` is safe to show a user."""

    default_message = "Something went wrong."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)

    @property
    def message(self) -> str:
        return str(self)


class ConfigError(JarvisError):
    default_message = "The configuration is invalid."


class ValidationError(JarvisError):
    default_message = "The input is invalid."

    def __init__(self, message: str | None = None, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class OutboundRefusedError(ValidationError):
    """A URL / address on a network the server may not reach on a user's behalf (loopback,
    private, link-local, metadata) and not in ``JARVIS_OUTBOUND_ALLOWLIST``."""

    default_message = "That address may not be used."


class NotFoundError(JarvisError):
    default_message = "Not found."


class ConflictError(JarvisError):
    default_message = "That conflicts with existing data."


class AuthError(JarvisError):
    default_message = "Authentication failed."


class InvalidCredentialsError(AuthError):
    default_message = "Invalid email or password."


class AccountLockedError(AuthError):
    default_message = "Too many failed attempts. Try again later."

    def __init__(self, message: str | None = None, *, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AccountDisabledError(AuthError):
    default_message = "This account is deactivated."


class TokenError(AuthError):
    default_message = "Your session is invalid or has expired. Please sign in again."


class PermissionDeniedError(AuthError):
    default_message = "You are not allowed to do that."


class RateLimitError(JarvisError):
    default_message = "Too many requests. Slow down a little."

    def __init__(self, message: str | None = None, *, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LimitExceededError(JarvisError):
    default_message = "A usage limit was reached."


class BudgetExceededError(LimitExceededError):
    default_message = "Your monthly budget is used up."


class CryptoError(JarvisError):
    default_message = "A stored secret could not be decrypted."


class DatabaseError(JarvisError):
    default_message = "The database could not complete that request."


class DatabaseUnavailableError(DatabaseError):
    default_message = "The database is unavailable right now. Try again in a moment."


class ToolError(JarvisError):
    default_message = "The tool failed."


class ProviderError(JarvisError):
    default_message = "The model provider failed."

    def __init__(self, message: str | None = None, *, provider: str | None = None) -> None:
        super().__init__(message)
        self.provider = provider


class ProviderAuthError(ProviderError):
    default_message = "The provider rejected the API key."


class ProviderRateLimitError(ProviderError):
    default_message = "The provider is rate limiting requests."


class ProviderTimeoutError(ProviderError):
    default_message = "The provider did not answer in time."


class ProviderBadRequestError(ProviderError):
    default_message = "The provider rejected the request."


class ProviderServerError(ProviderError):
    default_message = "The provider had a server error."


class ProviderBadResponseError(ProviderError):
    default_message = (
        "The provider's reply was not a valid completion (check the provider's base URL)."
    )
