"""pytest fixtures that route Intercom's API to the sandbox (sandbox/intercom/), contract-checked.

Fixtures
--------
``responses_mock``
    The one ``responses.RequestsMock`` of a test. Other sandboxes (Hull) should register their
    routes on it too: two active RequestsMocks do not compose (the later one swallows every call).

``intercom_sandbox``  -> ``IntercomSandbox``
    Routes ``https://api.intercom.io`` (and any base passed to ``.route(base_url)``) to
    ``sandbox.intercom.api.handle_request``. The token of the ``connector`` fixture opens the
    workspace ``ws_acme``. Every request the client sends and every answer the sandbox gives is
    validated against Intercom's OpenAPI 2.15 description: a mismatch raises ``ContractViolation``
    in the caller and, even if some code swallowed it, fails the test at teardown.
    Time is virtual: the sandbox clock is frozen at the test's start and moves only by
    ``.advance(seconds)`` and by the Intercom client's waits (its sleep/clock are the sandbox's),
    so a 429 "waits" for the window reset instantly (see ``.slept``). Contacts written in one test
    share one timestamp unless you advance the clock.

    Inspect:  ``.workspace`` (the Workspace row), ``.calls`` (list of ``Call(method, path, body)``,
              path without the base and query; ``.query`` holds the query dict),
              ``.contacts(role=None, include_deleted=False)``, ``.contact(id)``, ``.companies()``,
              ``.tags()``, ``.events(contact_id=None)``, ``.data_attributes(model="contact")``,
              ``.slept`` (seconds the client waited, in order), ``.responses`` (status codes).
    Seed:     ``.add_contact(role="user", email=..., external_id=..., custom_attributes=..., fresh=False, **fields)``
              -> contact JSON; ``.add_company(company_id, name=None, contact_ids=(), **fields)``;
              ``.add_tag(name)``; ``.add_data_attribute(name, data_type="string", model="contact")``;
              ``.add_conversation(payload)``, ``.add_subscription_type(name, consent_type="opt_out")``
              (``.contact_subscriptions(contact_id)`` lists the types a contact is attached to).
    Knobs:    ``.set_rate_limit(n, window_seconds=10)`` (0 = no limit and no headers; by default
              Intercom's 1,666 per 10 s, headers on), ``.set_fault_rate(share, seed=0, mode="before"|
              "after"|"drop", only=((method, path), ...))`` (after/drop: the work is done, then a 5xx /
              a lost answer; `only`: the calls it strikes), ``.strike(method, path, n, ..., mode="after",
              when=None)`` (the n-th matching calls from now fail so, whatever the rate),
              ``.set_latency(ms)``, ``.set_search_lag(seconds)`` (default 120 s, as Intercom's index:
              contacts written through the API are not searchable until then; seeded ones are),
              ``.advance(seconds)`` (sandbox clock), ``.add_workspace(token, id_code)``,
              ``.route(base_url)``, ``.client(**kwargs)`` -> an ``IntercomClient`` on the workspace.
    Example::

        def test_pushes_user(connector, intercom_sandbox):
            intercom_sandbox.add_data_attribute("plan")
            ...  # run the code under test
            [user] = intercom_sandbox.contacts(role="user")
            assert ("POST", "/contacts") in [(c.method, c.path) for c in intercom_sandbox.calls]
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import responses

from sandbox.intercom import clock
from sandbox.intercom.responses_double import (  # noqa: F401 - the names tests import from here
    DEFAULT_BASE_URL,
    DEFAULT_TOKEN,
    DEFAULT_WORKSPACE,
    Call,
    IntercomSandbox,
)
from sync.intercom import client as client_module

@pytest.fixture
def responses_mock() -> Iterator[responses.RequestsMock]:
    """The single `responses` mock of a test; share it between sandboxes."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def intercom_sandbox(db: Any, responses_mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch) -> Iterator[IntercomSandbox]:
    sandbox = IntercomSandbox(responses_mock)

    def virtual_sleep(seconds: float) -> None:
        sandbox.slept.append(seconds)
        clock.advance(max(0.0, seconds))

    # Frozen at the test's start so windows, lag and scroll expiry are deterministic; it moves only
    # by `.advance()` and by the client's waits.
    clock.freeze()
    monkeypatch.setattr(client_module, "default_sleep", virtual_sleep)
    monkeypatch.setattr(client_module, "default_clock", clock.now)
    try:
        yield sandbox
    finally:
        clock.reset()
    if sandbox.violations:
        pytest.fail("Intercom OpenAPI contract violated:\n" + "\n".join(sandbox.violations), pytrace=False)
