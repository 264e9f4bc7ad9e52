"""A SOAP endpoint's declared calls must lie outside one another: a call declared inside another
(``A.B`` and ``A.B.C``) or twice cannot be checked at request time, so ``crmgw rules check`` refuses
the catalogue with a ``file:line`` error naming both calls (and every other problem at once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from gateway.context.catalogue import load_catalogue
from gateway.errors import GatewayError
from gateway.identity.directory import Directory
from gateway.model import Identity, User
from gateway.response.writes import check_request_body
from gateway.upstream.bodies import RequestBody

SOAP_ENDPOINT = """\
  - method: POST
    path: /soap/customers/
    operation: customers.list
    format: xml
    records: ["Envelope.Body.GetCustomersResponse.customer[]"]
    body:
      media: [xml]
      records: [{first}, {second}]
      writable: [page]
"""


def with_soap_endpoint(rules: Path, first: str, second: str, *, extra: str = "") -> Path:
    ops = rules / "operations.yaml"
    ops.write_text(ops.read_text() + SOAP_ENDPOINT.format(first=first, second=second) + extra)
    return ops


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


@pytest.mark.parametrize(
    ("first", "second", "outer", "inner"),
    [
        ("Envelope.Body.GetCustomers", "Envelope.Body.GetCustomers.page", "GetCustomers", "GetCustomers.page"),
        ("Envelope.Body.GetCustomers.page", "Envelope.Body.GetCustomers", "GetCustomers", "GetCustomers.page"),
    ],
)
def test_rules_check_refuses_a_call_inside_another_naming_both(rules_copy, capsys, first, second, outer, inner):
    ops = with_soap_endpoint(rules_copy, first, second)
    assert main(["rules", "check", str(rules_copy)]) == 1
    out = capsys.readouterr().out.splitlines()
    errors = [line for line in out if "lies inside call" in line]
    assert len(errors) == 1, out
    file, lineno, _col, message = errors[0].split(":", 3)
    assert file == "rules/operations.yaml"
    assert int(lineno) == line_of(ops, "records: [Envelope.Body.GetCustomers")
    assert f"call 'Envelope.Body.{inner}' lies inside call 'Envelope.Body.{outer}'" in message


def test_a_call_declared_twice_is_refused_with_the_other_problems(rules_copy, capsys):
    # strict loading: every problem of the file at once, the nested calls among them
    with_soap_endpoint(
        rules_copy,
        "Envelope.Body.GetCustomers",
        "Envelope.Body.GetCustomers",
        extra="  - {method: GET, path: /api/nowhere, operation: customers.peek, records: []}\n",
    )
    assert main(["rules", "check", str(rules_copy)]) == 1
    out = capsys.readouterr().out
    assert "call 'Envelope.Body.GetCustomers' is declared twice (also records[0])" in out
    assert "unknown action 'peek'" in out


def test_calls_side_by_side_still_load_and_are_checked(tmp_path, rules_copy):
    # siblings (and calls sharing only the way to them) are fine: the request path checks each
    ops = with_soap_endpoint(rules_copy, "Envelope.Body.GetCustomers", "Envelope.Body.CountCustomers")
    catalogue, errors = load_catalogue(ops)
    assert errors == [], [str(e) for e in errors]
    assert catalogue is not None
    endpoint = catalogue.match("POST", "/soap/customers/")[0]
    user = User(id="frank", effective_roles=frozenset({"support"}))
    directory = Directory(users={"frank": user}, roles={}, api_keys={}, crm_tokens={})
    both = (
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
        b"<GetCustomers><page>1</page></GetCustomers><CountCustomers/></s:Body></s:Envelope>"
    )
    check_request_body(endpoint, "POST", "all", Identity(user, "jwt"), directory, {}, RequestBody(both, "text/xml"))
    one = both.replace(b"<CountCustomers/>", b"")
    with pytest.raises(GatewayError) as refused:
        check_request_body(endpoint, "POST", "all", Identity(user, "jwt"), directory, {}, RequestBody(one, "text/xml"))
    assert refused.value.status == 400
