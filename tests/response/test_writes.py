"""A write's body decided before forwarding: keys, owners in every spelling, teams, reference maps."""

from __future__ import annotations

import textwrap
from pathlib import Path

import orjson
import pytest

from gateway.context.catalogue import load_catalogue
from gateway.errors import GatewayError
from gateway.identity.directory import Directory
from gateway.model import Identity, User
from gateway.response.writes import check_request_body
from gateway.upstream.bodies import RequestBody

CATALOGUE = """\
format: crmgw.rules/v1
references:
  teams: {level: team, ids: {T-EAST: east, T-WEST: west}}
resources:
  leads:
    scope:
      own: {field: "assigned_to[].id", identity: crm_profile_id}
      team: {field: "teams[].name", identity: team}
      region: {field: region, identity: region}
    writes:
      people:
        - {fields: [assigned_to, owner], ids: [crm_profile_id, email], objects: {id: crm_profile_id, email: email}}
      org:
        - {fields: [teams], level: team, references: teams}
        - {fields: [region], level: region}
      missing_owner: {crm_assigns: caller, via: identity_header}
  notes:
    scope:
      own: {field: author, identity: user}
    writes:
      people:
        - {fields: [author], ids: [user]}
endpoints:
  - {method: POST, path: /leads/, operation: leads.create, records: [lead],
     body: {media: [json, form, multipart], writable: [title, assigned_to, owner, teams, region],
            writable_by_role: {intern: [title]}}}
  - {method: PATCH, path: "/leads/{id}/", operation: leads.update, records: [lead], lookup: "/leads/{id}/",
     body: {media: [json], writable: [title, assigned_to, teams]}}
  - {method: GET, path: "/leads/{id}/", operation: leads.view, records: [lead]}
  - {method: DELETE, path: "/leads/{id}/", operation: leads.delete, records: [], lookup: "/leads/{id}/"}
  - {method: POST, path: /notes/, operation: notes.create, records: ["$"], body: {writable: [text, author]}}
"""


def person(uid: str, team: str, region: str, roles=("rep",)) -> User:
    return User(
        id=uid,
        email=f"{uid}@x.test",
        roles=frozenset(roles),
        effective_roles=frozenset(roles),
        team=team,
        region=region,
        attributes={"crm_profile_id": f"P-{uid}"},
    )


USERS = {
    u.id: u
    for u in (
        person("ann", "east", "emea"),
        person("ben", "east", "apac"),
        person("cat", "west", "emea"),
        person("ida", "east", "emea", roles=("intern",)),
    )
}
DIRECTORY = Directory(users=USERS, roles={}, api_keys={}, crm_tokens={})


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    path = Path(tmp_path_factory.mktemp("rules")) / "operations.yaml"
    path.write_text(textwrap.dedent(CATALOGUE))
    loaded, errors = load_catalogue(path)
    assert errors == [], [str(e) for e in errors]
    return loaded


def decide(catalogue, method: str, path: str, body, *, who="ann", scope="own", ctype="application/json"):
    endpoint, _ = catalogue.match(method, path)
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    check_request_body(
        endpoint, method, scope, Identity(USERS[who], "jwt"), DIRECTORY, catalogue.references, RequestBody(raw, ctype)
    )


def refusal(catalogue, *args, **kwargs) -> str:
    with pytest.raises(GatewayError) as caught:
        decide(catalogue, *args, **kwargs)
    return caught.value.reason


@pytest.mark.parametrize(
    "body",
    [
        {"title": "t"},
        {"title": "t", "assigned_to": ["P-ann"]},
        {"assigned_to": "P-ann"},
        {"assigned_to": [{"id": "P-ann"}]},
        {"assigned_to": [{"email": "ann@x.test", "id": "P-ann"}]},
        {"owner": "ann@x.test"},
        {"teams": ["T-EAST"], "region": "emea"},
        {"teams": [{"id": "T-EAST", "name": "east"}]},
    ],
)
def test_writes_that_stay_in_own_scope_pass(catalogue, body):
    decide(catalogue, "POST", "/leads/", body)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"assigned_to": ["P-ben"]}, "write-out-of-scope"),
        ({"assigned_to": ["P-ann", "P-ben"]}, "write-out-of-scope"),
        ({"assigned_to": [{"id": "P-ben"}]}, "write-out-of-scope"),
        ({"owner": "ben@x.test"}, "write-out-of-scope"),
        ({"owner": {"email": "ben@x.test"}}, "write-out-of-scope"),
        ({"teams": ["T-WEST"]}, "write-out-of-scope"),
        ({"teams": [{"name": "west"}]}, "write-out-of-scope"),
        ({"region": "apac"}, "write-out-of-scope"),
        ({"assigned_to": ["P-nobody"]}, "owner-unresolvable"),
        ({"assigned_to": []}, "owner-unresolvable"),
        ({"assigned_to": None}, "owner-unresolvable"),
        ({"assigned_to": [["P-ann"]]}, "owner-unresolvable"),
        ({"assigned_to": [{"id": "P-ann", "name": "Ann"}]}, "owner-unresolvable"),
        ({"assigned_to": [{"id": "P-ann", "email": "ben@x.test"}]}, "owner-unresolvable"),
        ({"assigned_to": [True]}, "owner-unresolvable"),
        ({"teams": ["T-NOWHERE"]}, "owner-unresolvable"),
        ({"teams": [{"id": "T-EAST", "name": "west"}]}, "owner-unresolvable"),
        ({"title": "t", "created_by": "P-ben"}, "field-not-writable"),
        ({"Assigned_To": ["P-ben"]}, "field-not-writable"),
    ],
)
def test_writes_that_leave_own_scope_are_refused(catalogue, body, reason):
    assert refusal(catalogue, "POST", "/leads/", body) == reason


def test_team_scope_may_name_teammates_and_not_others(catalogue):
    decide(catalogue, "POST", "/leads/", {"assigned_to": ["P-ben"], "teams": ["T-EAST"]}, scope="team")
    assert refusal(catalogue, "POST", "/leads/", {"assigned_to": ["P-cat"]}, scope="team") == "write-out-of-scope"


def test_region_scope_reaches_the_teams_of_the_region(catalogue):
    decide(catalogue, "POST", "/leads/", {"teams": ["T-WEST"], "assigned_to": ["P-cat"]}, scope="region")
    assert refusal(catalogue, "POST", "/leads/", {"assigned_to": ["P-ben"]}, scope="region") == "write-out-of-scope"


@pytest.mark.parametrize(
    ("raw", "ctype"),
    [
        (b"assigned_to=P-ben", "application/x-www-form-urlencoded"),
        (b"assigned_to=P-ann&assigned_to=P-ben", "application/x-www-form-urlencoded"),
        (b"assigned_to%5B%5D=P-ben", "application/x-www-form-urlencoded"),
        (b"owner%5Bemail%5D=ben%40x.test", "application/x-www-form-urlencoded"),
        (
            b'--b\r\nContent-Disposition: form-data; name="assigned_to"\r\n\r\nP-ben\r\n--b--\r\n',
            "multipart/form-data; boundary=b",
        ),
    ],
)
def test_form_and_multipart_spellings_are_decided_alike(catalogue, raw, ctype):
    assert refusal(catalogue, "POST", "/leads/", raw, ctype=ctype) == "write-out-of-scope"


def test_a_file_where_an_owner_belongs_is_refused(catalogue):
    raw = b'--b\r\nContent-Disposition: form-data; name="owner"; filename="x"\r\n\r\nP-ann\r\n--b--\r\n'
    assert refusal(catalogue, "POST", "/leads/", raw, ctype="multipart/form-data; boundary=b") == "owner-unresolvable"


def test_field_level_edit_permission_per_role(catalogue):
    decide(catalogue, "POST", "/leads/", {"title": "t"}, who="ida")
    assert (
        refusal(catalogue, "POST", "/leads/", {"title": "t", "assigned_to": ["P-ida"]}, who="ida")
        == "field-not-writable"
    )


def test_a_create_without_owner_needs_the_crm_to_assign_the_caller(catalogue):
    decide(catalogue, "POST", "/leads/", {"title": "t"})  # leads: missing_owner declared
    assert refusal(catalogue, "POST", "/notes/", {"text": "t"}) == "owner-missing"
    decide(catalogue, "POST", "/notes/", {"text": "t", "author": "ann"})


def test_media_types_are_per_endpoint(catalogue):
    assert (
        refusal(catalogue, "PATCH", "/leads/1/", b"title=x", ctype="application/x-www-form-urlencoded")
        == "body-media-undeclared"
    )


def test_a_body_on_an_endpoint_that_declares_none(catalogue):
    assert refusal(catalogue, "DELETE", "/leads/1/", {"x": 1}, scope="all") == "body-not-allowed"
    assert refusal(catalogue, "GET", "/leads/1/", {"x": 1}, scope="all") == "body-not-allowed"


def test_scope_all_writes_are_not_restricted(catalogue):
    decide(catalogue, "POST", "/leads/", {"assigned_to": ["P-cat"], "created_by": "P-cat"}, scope="all")
