"""Validate sandbox traffic against Intercom's OpenAPI description (2.15) with openapi-core.

Used by the test fixture: every request the client sends and every answer the sandbox gives is
checked; a mismatch raises `ContractViolation` and fails the test. The description is thin on
errors and wrong in two documented places (docs/intercom-api.md#openapi-description-and-its-gaps), which `validate_response`
handles explicitly rather than silently:
- an error status the operation does not document is checked against the `error` schema;
- `GET /companies?company_id=|name=` answers one company (not `company_list`): checked against `company`;
- `POST /tags` is an ambiguous oneOf: checked against the branch the body means;
- `KNOWN_GAPS` below patches two schemas that are narrower than the documented API.
The 200 answers of COMPILED_RESPONSES (the company scroll) go through a validator compiled once
instead of openapi-core's unmarshaller, which is 16 times slower on a page of 50 companies.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_schema_validator import OAS30ReadValidator, OAS30Validator
from werkzeug.datastructures import Headers, ImmutableMultiDict

SPEC_FILE = Path(__file__).resolve().parent / "openapi" / "api.intercom.io-2.15.yaml"
SERVER = "https://api.intercom.io"
# Answers checked by a compiled schema validator instead of openapi-core's unmarshaller (see
# `_compiled_response_validator`): the calls a big workspace repeats a thousand times.
COMPILED_RESPONSES = {("GET", "/companies/scroll")}
GAPS_VERSION = 2  # bump when _patch_known_gaps changes (invalidates the on-disk cache)


class ContractViolation(AssertionError):
    """A request or response that does not match Intercom's OpenAPI description."""


@functools.lru_cache(maxsize=1)
def spec_dict() -> dict:
    """The parsed description, cached per process (and as JSON on disk: YAML parsing is slow)."""
    cache = Path(tempfile.gettempdir()) / f"intercom-openapi-v{GAPS_VERSION}-{SPEC_FILE.stat().st_mtime_ns}-{SPEC_FILE.stat().st_size}.json"
    if cache.exists():
        try:
            return json.loads(cache.read_text())
        except ValueError:
            pass
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data = yaml.load(SPEC_FILE.read_text(), Loader=loader)  # noqa: S506 - safe loader
    data = _patch_known_gaps(data)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(cache)
    return data


def _patch_known_gaps(spec: dict) -> dict:
    """Schemas narrower than Intercom's documented behaviour, widened here and only here.

    - Search groups mix single filters and nested groups in one `value` array (Intercom's own
      nested-search example does); 2.15 types `value` as "all groups" oneOf "all filters".
    - Event metadata values may be strings, numbers, rich links `{url, value}` and monetary amounts
      `{amount, currency}` (reference §6.1); 2.15 says strings only.
    - Company custom attribute values: 2.15 says strings only, yet its own examples for the same
      schemas send and return `paid_subscriber: true`, `monthly_spend: 155.5`, `team_mates: 9`
      (values are typed by the attribute's `data_type`), and a null clears a value as it does for
      contacts (whose `custom_attributes` 2.15 leaves untyped). Widened to string, number, boolean
      and null, nothing more (no objects or lists).
    """
    schemas = spec["components"]["schemas"]
    schemas["multiple_filter_search_request"]["properties"]["value"] = {
        "type": "array",
        "items": {
            "anyOf": [
                {"$ref": "#/components/schemas/multiple_filter_search_request"},
                {"$ref": "#/components/schemas/single_filter_search_request"},
            ]
        },
    }
    schemas["create_data_event_request"]["properties"]["metadata"]["additionalProperties"] = {
        "anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}, {"type": "object"}]
    }
    typed_value = {"anyOf": [{"type": "string", "nullable": True}, {"type": "number"}, {"type": "boolean"}]}
    for name in ("create_or_update_company_request", "update_company_request", "company"):
        schemas[name]["properties"]["custom_attributes"]["additionalProperties"] = typed_value
    return spec


@functools.lru_cache(maxsize=1)
def openapi() -> OpenAPI:
    # The description itself has unresolvable parameters elsewhere (reporting exports): don't lint it.
    return OpenAPI.from_dict(spec_dict(), config=Config(spec_validator_cls=None))


@dataclass
class ContractRequest:
    """openapi-core's Request protocol over what the fixture saw on the wire."""

    method_name: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes | None

    def __post_init__(self) -> None:
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(self.query), header=Headers(self.headers), cookie=ImmutableMultiDict()
        )

    host_url = SERVER

    @property
    def method(self) -> str:
        return self.method_name.lower()

    @property
    def content_type(self) -> str:
        for key, value in self.headers.items():
            if key.lower() == "content-type":
                return value.lower()
        return "application/json"

    @property
    def full_url_pattern(self) -> str:
        return SERVER + self.path


@dataclass
class ContractResponse:
    status_code: int
    headers: dict[str, str]
    data: bytes | None

    @property
    def content_type(self) -> str:
        return "application/json"


def _schema(name: str) -> dict:
    spec = spec_dict()
    return {**spec["components"]["schemas"][name], "components": spec["components"]}


def _check_schema(name: str, body: Any, where: str) -> None:
    schema = _schema(name)
    errors = sorted(OAS30Validator(schema).iter_errors(body), key=lambda e: list(e.path))
    if errors:
        raise ContractViolation(f"{where}: body does not match schema {name!r}: {errors[0].message} at {list(errors[0].path)}")


def validate_request(request: ContractRequest) -> None:
    result = openapi().unmarshal_request(request)
    errors = list(result.errors)
    if request.method_name.upper() == "POST" and request.path == "/tags":
        # Spec gap: `POST /tags` is a oneOf whose branches have no `additionalProperties: false`, so a
        # companies body is "valid under each of" them, and any body with a `name` passes as the
        # create branch (a users list of numbers too). Check it against the branch it means instead.
        body = json.loads(request.body or b"null")
        _check_schema(_tags_branch(body), body, "request POST /tags")
        if all(_ambiguous_one_of(e) for e in errors):
            return
    if errors:
        raise ContractViolation(f"request {request.method_name} {request.path}?{urlencode(request.query)}: " + "; ".join(_describe(e) for e in result.errors))


@functools.cache
def _compiled_response_validator(method: str, path: str, status: int) -> OAS30ReadValidator | None:
    """The validator openapi-core would build for this answer, built once.

    openapi-core resolves the `$ref`s of every company of every page again (0.19 s for a scroll
    page of 50 companies: 3 minutes for a 50,000-company scroll). The same OAS 3.0 read validator
    and format checker, compiled once per (operation, status), takes 0.012 s. Only for an
    operation without path parameters whose answer for that status is one JSON schema `$ref`
    without documented headers (anything else: None, and openapi-core checks it). It skips
    openapi-core's casting step, so it is stricter, not looser: a "5" where an integer is due
    fails here and would be cast there.
    """
    operation = (spec_dict()["paths"].get(path) or {}).get(method.lower()) or {}
    answer = (operation.get("responses") or {}).get(str(status))
    path_parameters = [p for p in operation.get("parameters") or [] if p.get("in") == "path"]
    if not answer or answer.get("headers") or path_parameters:
        return None
    ref = (((answer.get("content") or {}).get("application/json") or {}).get("schema") or {}).get("$ref", "")
    if not ref.startswith("#/components/schemas/"):
        return None
    return OAS30ReadValidator(_schema(ref.rsplit("/", 1)[-1]), format_checker=OAS30ReadValidator.FORMAT_CHECKER)


def validate_response(request: ContractRequest, response: ContractResponse, *, compiled: bool = True) -> None:
    """Check an answer against the description (`compiled=False`: always through openapi-core)."""
    where = f"response {response.status_code} to {request.method_name} {request.path}"
    query = dict(request.query)
    method = request.method_name.upper()
    validator = None
    if compiled and (method, request.path) in COMPILED_RESPONSES:
        validator = _compiled_response_validator(method, request.path, response.status_code)
    if validator is not None:
        body = json.loads(response.data or b"null")
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
        if errors:
            raise ContractViolation(f"{where}: {errors[0].message} at {list(errors[0].absolute_path)}")
        return
    if request.method_name.upper() == "GET" and request.path == "/companies" and (query.get("company_id") or query.get("name")):
        if response.status_code == 200:
            _check_schema("company", json.loads(response.data or b"null"), where)
        else:
            _check_schema("error", json.loads(response.data or b"null"), where)
        return
    result = openapi().unmarshal_response(request, response)
    if not result.errors:
        return
    from openapi_core.templating.responses.exceptions import ResponseNotFound

    if response.status_code >= 400 and all(isinstance(e, ResponseNotFound) for e in result.errors):
        # An error the description does not list for this operation: it must still be an error.list.
        _check_schema("error", json.loads(response.data or b"null"), where)
        return
    raise ContractViolation(f"{where}: " + "; ".join(_describe(e) for e in result.errors))


def _tags_branch(body: Any) -> str:
    """The `POST /tags` request schema a body means (create/rename, tag or untag companies, tag users)."""
    if not isinstance(body, dict):
        return "create_or_update_tag_request"
    if "users" in body:
        return "tag_multiple_users_request"
    companies = body.get("companies")
    if companies is None:
        return "create_or_update_tag_request"
    if isinstance(companies, list) and companies and all(isinstance(c, dict) and c.get("untag") for c in companies):
        return "untag_company_request"
    return "tag_company_request"


def _ambiguous_one_of(error: Exception) -> bool:
    cause = error.__cause__
    schema_errors = list(getattr(cause, "schema_errors", None) or [])
    return bool(schema_errors) and all("is valid under each of" in e.message for e in schema_errors)


def _describe(error: Exception) -> str:
    parts = [f"{type(error).__name__}: {error}"]
    cause = error.__cause__
    while cause is not None:
        schema_errors = getattr(cause, "schema_errors", None)
        if schema_errors:
            parts += [f"{e.message} at {list(e.absolute_path)}" for e in list(schema_errors)[:3]]
        cause = cause.__cause__
    return " | ".join(parts)
