"""Schemathesis fuzzes the secrets, tool-permissions and usage endpoints from the OpenAPI
document: whatever it sends (signed in), the answer is never a 500, has a documented status
and content type, and matches its documented schema (errors: problem+json).

Business-rule refusals of schema-valid input (a key in the wrong format, an unknown tool) are
expected 422s, so the positive/negative data checks are not run. Extend ``FUZZED`` as routers
are added; each operation costs about a second.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from jarvis.api import create_api
from jarvis.config import load_settings
from tests.api.conftest import ApiClient, SignedIn, register_and_login
from tests.conftest import TEST_JWT_SECRET, TEST_MASTER_KEY

pytestmark = pytest.mark.slow

FUZZED = r"^/(secrets|tool-permissions|usage)"

# The document is read at collection time (schemathesis parametrizes from it); the services
# are attached per test by the ``signed_in`` fixture.
APP = create_api(
    load_settings(
        env="test",
        master_key=TEST_MASTER_KEY,
        jwt_secret=TEST_JWT_SECRET,
        database_url="postgresql://unused@localhost/unused",
    )
)
SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", APP).include(path_regex=FUZZED)


@pytest.fixture
def signed_in(api: ApiClient) -> SignedIn:
    APP.state.services = api.app_services
    return register_and_login(api)


@SCHEMA.parametrize()
@hypothesis_settings(
    max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None
)
def test_fuzzed_requests_get_documented_answers(
    case: schemathesis.Case, signed_in: SignedIn
) -> None:
    case.call_and_validate(
        headers=signed_in.headers,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
