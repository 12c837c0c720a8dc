"""Every operation of the published API schema, fuzzed with schemathesis as every role.

For each role (anonymous, a donor, a CSO's member and admin, a prefecture's and a
municipality's officer, each foundation role and the site admin) schemathesis generates
requests for every operation in ``/api/schema/`` — valid ones and invalid ones — and sends them
to the in-process WSGI app, signed in with the role's API token. Detail URLs name real objects
of a small world (proposals, projects, a gift, a match pool, grants, reports, a transfer batch)
as well as generated ids. Every response must be:

- no server error (bad input is a 400 with a message, never a 500);
- a status code the schema documents for the operation;
- of the content type the schema documents, with a body that matches its schema.

Generation is derandomized and bounded (a fixed number of examples per operation, no deadline),
so a run is reproducible and takes a few minutes. The failures of one role are collected over
every operation and reported together.
"""

from typing import Any

import hypothesis
import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from grants import services as grant_services
from grants import zengin
from grants.models import Report
from tests.factories import confirmed_bank_account
from tests.test_authorization_matrix import (  # noqa: F401 (world: the fixture)
    CSO_B,
    FOUNDATION,
    ROLES,
    World,
    world,
)

SCHEMA_URL = "/api/schema/?format=json"
EXAMPLES_PER_OPERATION = 12

# One person of each kind: the authorization matrix's ROLES less the second citizen and
# organisation B's members, who are no new kind (organisation A's members own the world's
# proposal, project, gift and grant, so those detail URLs are theirs to see).
SCHEMA_ROLES = [role for role in ROLES if role not in {"citizen_b", *CSO_B}]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


class InTestTransaction:
    """Django's WSGI app, answering inside the test's transaction (in the test's thread).

    Django closes the database connection around each request (``close_old_connections`` on
    ``request_started`` and ``request_finished``), which would end the transaction the test's
    world lives in: off for the request, as Django's own test client does."""

    def __init__(self) -> None:
        self.handler = WSGIHandler()

    def __call__(self, environ, start_response):
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            response = self.handler(environ, start_response)
            try:
                content = b"".join(response)
            finally:
                response.close()  # sends request_finished
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)
        return [content]


@pytest.fixture(scope="module")
def api_schema():
    # The schema endpoint is public and reads no data: loaded once for the module.
    return schemathesis.openapi.from_wsgi(SCHEMA_URL, InTestTransaction())


def _batch_and_line(data: World):
    """A transfer batch with one line: the world's approved grant's tranche, to organisation
    A's confirmed account, for the next bank business day."""
    confirmed_bank_account(data.org_a)
    finance = data.users["finance"]
    tranches = list(data.grant.tranches.all())
    transfer_date = zengin.next_bank_business_day(grant_services.today())
    batch = grant_services.batch_create(
        transfer_date=transfer_date, tranches=tranches, actor=finance
    )
    return batch, batch.lines.get()


def _real_ids(data: World) -> dict[str, list[Any]]:
    """The ids of real objects for each collection's ``{id}`` (with the generated ones)."""
    batch, line = _batch_and_line(data)
    return {
        "/api/v1/donations/{id}/": [str(data.gift.donation_id)],
        "/api/v1/grants/{id}/": [data.grant.pk, data.proposed_grant.pk],
        "/api/v1/match-pools/{id}/": [data.pool.pk],
        "/api/v1/operations/{id}/": [data.operation.pk],
        "/api/v1/projects/{id}/": [
            data.open_project.pk,
            data.draft_project.pk,
            data.grant.project_id,
        ],
        "/api/v1/proposals/{id}/": [
            data.proposal_a.pk,
            data.proposal_b.pk,
            data.unlisted.pk,
        ],
        "/api/v1/reports/{id}/": list(
            Report.objects.filter(grant=data.grant).values_list("pk", flat=True)
        ),
        "/api/v1/transfer-batches/{id}/": [batch.pk],
        "/api/v1/transfer-lines/{id}/": [line.pk],
    }


def _collection(path: str) -> str:
    """``/api/v1/grants/{id}/approve/`` → ``/api/v1/grants/{id}/``."""
    head, _sep, _tail = path.partition("{id}")
    return f"{head}{{id}}/"


def _strategy(operation, ids: list[Any]):
    generated = [
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    ]
    real = [
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE, path_parameters={"id": pk})
        for pk in ids
    ]
    return st.one_of(*real, *generated)


def _headers(user) -> dict[str, str]:
    if user is None:
        return {}
    token, _created = Token.objects.get_or_create(user=user)
    return {"Authorization": f"Token {token.key}"}


# What each role must have been answered at least once: proof that its token was used and
# that the detail URLs reached real objects (a run of nothing but 403s and 404s conforms too).
REACHED = {
    "GET /api/v1/proposals/{id}/": {role: 200 for role in SCHEMA_ROLES},
    "GET /api/v1/grants/": {role: 403 if role == "anonymous" else 200 for role in SCHEMA_ROLES},
    "GET /api/v1/grants/{id}/": {
        role: 200 for role in ["cso_a_member", "cso_a_admin", *FOUNDATION, "site_admin"]
    },
    "GET /api/v1/proposals/{id}/history/": {
        role: 200
        for role in ["cso_a_member", "prefecture_staff", "municipality_staff", *FOUNDATION]
    },
}


@pytest.mark.parametrize("role", SCHEMA_ROLES)
def test_every_operation_answers_as_documented(
    world,  # noqa: F811  (the fixture imported above)
    role,
    api_schema,
):
    headers = _headers(world.users[role])
    ids = _real_ids(world)
    failures: dict[tuple[str, str], str] = {}
    answered: dict[str, set[int]] = {}

    for result in api_schema.get_all_operations():
        operation = result.ok()
        real = ids.get(_collection(operation.path), []) if "{id}" in operation.path else []

        @hypothesis.settings(
            max_examples=EXAMPLES_PER_OPERATION,
            derandomize=True,
            database=None,
            deadline=None,
            # Failures are collected, not raised: nothing to shrink or replay (the world
            # changes as actions succeed, so a replay would not see the same world).
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @hypothesis.given(case=_strategy(operation, real))
        def fuzz(case):
            response = case.call(headers=headers)
            answered.setdefault(case.operation.label, set()).add(response.status_code)
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except FailureGroup as group:
                for failure in group.exceptions:
                    failures.setdefault((case.operation.label, failure.title), str(group))

        fuzz()

    headlines = "\n".join(f"- {label}: {title}" for label, title in failures)
    reports = "\n".join(
        f"--- {label}: {title}\n{report}" for (label, title), report in failures.items()
    )
    assert not failures, f"{len(failures)} failures as {role}:\n{headlines}\n\n{reports}"
    for label, expected in REACHED.items():
        if role in expected:
            assert expected[role] in answered.get(label, set()), (
                f"{label} as {role}: never {expected[role]}, only {answered.get(label)}"
            )
