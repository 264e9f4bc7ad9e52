"""XML and SOAP answers: read safely, filtered and masked like JSON, allow-listed, written back by us."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest

from gateway.declared import Aggregate, AnswerContract, Related
from gateway.errors import Forbidden, ObligationUnenforceable
from gateway.model import Mask, Resource, ScopeField
from gateway.response import count_records, xmldoc, xmlparse

from .factories import endpoint, identity, obligations, run

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
LEADS = Resource(
    "leads",
    scope_fields={"own": ScopeField("assigned_to[].id", "user"), "team": ScopeField("teams[].name", "team")},
    aliases={"phone": ("mobilePhone",)},
    case_insensitive=True,
)
CONTACTS = Resource("contacts", scope_fields={"own": ScopeField("owner", "user")})
RECORDS = ("Envelope.Body.GetLeadsResponse.lead[]",)
CONTRACT = AnswerContract(aggregates=(Aggregate("Envelope.Body.GetLeadsResponse.count", "count"),))
XML = "text/xml; charset=utf-8"


def lead(i: int, *owners: str, extra: str = "") -> str:
    people = "".join(f"<crm:assigned_to><crm:id>{o}</crm:id></crm:assigned_to>" for o in owners)
    return (
        f"<crm:lead><crm:id>{i}</crm:id>{people}<crm:teams><crm:name>east</crm:name></crm:teams>"
        f"<crm:Phone>+33 1 23 45 67 0{i}</crm:Phone><crm:mobilePhone>+3360000000{i}</crm:mobilePhone>"
        f"<crm:amount>{i}00</crm:amount>{extra}</crm:lead>"
    )


def envelope(*leads: str, header: str = "<soap:Header><crm:Node>app-3</crm:Node></soap:Header>") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<soap:Envelope xmlns:soap="{SOAP}" xmlns:crm="urn:crm" '
        f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">{header}<soap:Body><crm:GetLeadsResponse>'
        f"<crm:count>301</crm:count><crm:totalCount>301</crm:totalCount>{''.join(leads)}"
        f"<crm:users><crm:user>alice@example.com</crm:user><crm:user>bob@example.com</crm:user></crm:users>"
        f"</crm:GetLeadsResponse></soap:Body></soap:Envelope>"
    ).encode()


def soap_run(body: bytes, ob=None, contract=CONTRACT, records=RECORDS, resource=LEADS, **kw):
    ep = endpoint(resource, records, fmt="xml", answer=contract)
    return run(body, ep=ep, ob=ob or obligations("own"), content_type=kw.pop("content_type", XML), **kw)


def parsed(result) -> ElementTree.Element:
    return ElementTree.fromstring(result.body)


def texts(root: ElementTree.Element, local: str) -> list[str]:
    return [e.text or "" for e in root.iter() if e.tag.rpartition("}")[2] == local]


def test_soap_records_are_scoped_and_everything_undeclared_is_dropped():
    result = soap_run(envelope(lead(1, "alice"), lead(2, "bob"), lead(3, "bob", "alice")))
    root = parsed(result)
    assert [e.findtext("{urn:crm}id") for e in root.iter("{urn:crm}lead")] == ["1", "3"]
    assert texts(root, "count") == ["2"]  # recomputed from what the caller receives
    assert texts(root, "totalCount") == texts(root, "users") == texts(root, "Node") == []
    assert root.find(f"{{{SOAP}}}Header") is None
    assert (result.records_seen, result.records_returned, result.record_ids) == (3, 2, ("1", "3"))


def test_the_envelope_keeps_its_namespaces_and_prefixes():
    result = soap_run(envelope(lead(1, "alice")))
    assert result.body.startswith(b'<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap=')
    assert b"<crm:lead>" in result.body and parsed(result).tag == f"{{{SOAP}}}Envelope"


@pytest.mark.parametrize(
    ("op", "check"),
    [
        ("remove", lambda root: texts(root, "Phone") == texts(root, "mobilePhone") == []),
        (
            "redact",
            lambda root: texts(root, "Phone") == ["*" * 15 + "01"] and texts(root, "mobilePhone") == ["*" * 10 + "01"],
        ),
        ("hash", lambda root: all(t.startswith("hmac:") for t in texts(root, "Phone") + texts(root, "mobilePhone"))),
    ],
)
def test_masks_follow_child_elements_and_their_spellings(op, check):
    result = soap_run(envelope(lead(1, "alice")), ob=obligations("all", Mask("phone", op, keep_last=2)))
    assert check(parsed(result)) and result.fields_masked == {"phone"}


def test_attributes_are_fields_for_scope_and_masks():
    body = (
        b'<leads xmlns="urn:v2"><count>9</count><lead id="1" phone="+33 1 11"><assigned_to id="alice"/></lead>'
        b'<lead id="2" phone="+33 1 22"><assigned_to id="bob"/></lead></leads>'
    )
    ep = endpoint(
        LEADS, ("leads.lead[]",), fmt="xml", answer=AnswerContract(aggregates=(Aggregate("leads.count", "count"),))
    )
    result = run(body, ep=ep, ob=obligations("own", Mask("phone", "redact")), content_type="application/xml")
    assert result.body == (
        b'<?xml version="1.0" encoding="UTF-8"?><leads xmlns="urn:v2"><count>1</count>'
        b'<lead id="1" phone="********"><assigned_to id="alice"/></lead></leads>'
    )


def test_one_element_is_a_list_of_one_and_none_is_an_empty_list():
    one = soap_run(envelope(lead(1, "alice")))
    assert texts(parsed(one), "id") == ["1", "alice"]
    none = soap_run(envelope())
    assert texts(parsed(none), "count") == ["0"] and texts(parsed(none), "lead") == []
    empty = soap_run(b"<Envelope><Body><GetLeadsResponse/></Body></Envelope>")
    assert empty.body.endswith(b"<Envelope><Body><GetLeadsResponse/></Body></Envelope>")
    pretty = soap_run(b"<Envelope>\n <Body>\n  <GetLeadsResponse>\n  </GetLeadsResponse>\n </Body>\n</Envelope>\n")
    assert pretty.records_seen == 0 and pretty.body == empty.body


def test_nested_related_records_are_filtered_as_their_own_resource():
    contacts = "".join(f"<crm:contacts><crm:owner>{o}</crm:owner></crm:contacts>" for o in ("alice", "bob"))
    contract = AnswerContract(related=(Related("Envelope.Body.GetLeadsResponse.lead[].contacts[]", CONTACTS),))
    result = soap_run(envelope(lead(1, "alice", extra=contacts)), contract=contract)
    assert texts(parsed(result), "owner") == ["alice"]


def test_a_single_record_out_of_scope_refuses_the_answer():
    body = b"<lead><id>1</id><assigned_to><id>bob</id></assigned_to></lead>"
    with pytest.raises(Forbidden):
        soap_run(body, records=("lead",))
    assert soap_run(body, records=("lead",), who=identity("bob")).record_ids == ("1",)


def test_nil_text_and_special_characters_survive_the_round_trip():
    extra = (
        '<crm:quote_price xsi:nil="true"/><crm:title>R&amp;D &lt;&quot;x&quot;&gt;&#13;</crm:title>'
        '<crm:note lang="fr">caf\u00e9 &#169;</crm:note>'
    )
    root = parsed(soap_run(envelope(lead(1, "alice", extra=extra)), ob=obligations("all", Mask("x", "remove"))))
    record = root.find(".//{urn:crm}lead")
    assert record.find("{urn:crm}quote_price").attrib == {"{http://www.w3.org/2001/XMLSchema-instance}nil": "true"}
    assert record.findtext("{urn:crm}title") == 'R&D <"x">\r'
    assert (
        record.find("{urn:crm}note").attrib == {"lang": "fr"} and record.findtext("{urn:crm}note") == "caf\u00e9 \u00a9"
    )


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10) for i in range(1, 10))
    + b"]><leads><lead><id>&lol9;</id></lead></leads>"
)
REFUSED = {
    "billion-laughs": BILLION_LAUGHS,
    "external-entity": (
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<leads><lead><id>&x;</id></lead></leads>"
    ),
    "external-dtd": b'<?xml version="1.0"?><!DOCTYPE leads SYSTEM "http://127.0.0.1:9/evil.dtd"><leads/>',
    "parameter-entity": b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x">%p;]><leads/>',
    "latin-1": '<?xml version="1.0" encoding="ISO-8859-1"?><leads><lead><id>\u00e9</id></lead></leads>'.encode(
        "latin-1"
    ),
    "latin-1-declared": b'<?xml version="1.0" encoding="ISO-8859-1"?><leads/>',
    "utf-16": "<leads><lead><id>1</id></lead></leads>".encode("utf-16"),
    "mixed-content": b"<leads><lead><id>1</id>hidden <b>x</b></lead></leads>",
    "attribute-and-child": b'<leads><lead id="1"><id>2</id></lead></leads>',
    "names-in-two-namespaces": b'<leads xmlns:a="urn:a"><lead><id>1</id><a:id>2</a:id></lead></leads>',
    "too-deep": b"<leads>" + b"<a>" * 80 + b"</a>" * 80 + b"</leads>",
    "not-xml": b'{"leads": []}',
    "truncated": b"<leads><lead><id>1</id></lead>",
    "two-roots": b"<leads/><leads/>",
    "no-record-list": b"<other><lead><id>1</id></lead></other>",
    "record-is-text": b"<leads><lead>1</lead></leads>",
}


@pytest.mark.parametrize("scope", ["own", "all"])
@pytest.mark.parametrize("body", REFUSED.values(), ids=REFUSED.keys())
def test_what_cannot_be_read_safely_is_refused_filtered_or_counted(body, scope):
    ep = endpoint(LEADS, ("leads.lead[]",), fmt="xml", answer=AnswerContract())
    with pytest.raises(ObligationUnenforceable):
        if scope == "own":
            run(body, ep=ep, ob=obligations("own"), content_type="application/xml")
        else:
            count_records(
                body,
                content_type="application/xml",
                content_encoding=None,
                endpoint=ep,
                identity=identity(),
                max_bytes=1 << 20,
            )


def test_the_parser_never_expands_entities(monkeypatch):
    seen: list[str] = []
    original = xmlparse._Builder.data
    monkeypatch.setattr(xmlparse._Builder, "data", lambda self, text: (seen.append(text), original(self, text)))
    with pytest.raises(xmldoc.XmlRefused):
        xmldoc.load(BILLION_LAUGHS)
    assert "lol" not in "".join(seen)


@pytest.mark.parametrize(
    ("content_type", "ok"),
    [
        ("application/xml", True),
        ("text/xml", True),
        ("application/soap+xml; charset=UTF-8", True),
        ("application/atom+xml", True),
        ("application/json", False),
        ("text/html", False),
        ("text/xml; charset=iso-8859-1", False),
        (None, False),
    ],
)
def test_content_types_of_an_xml_endpoint(content_type, ok):
    body = envelope(lead(1, "alice"))
    if ok:
        assert soap_run(body, content_type=content_type).records_returned == 1
    else:
        with pytest.raises(ObligationUnenforceable):
            soap_run(body, content_type=content_type)


def test_an_unrestricted_caller_gets_the_answer_byte_for_byte_and_it_is_counted():
    body = envelope(lead(1, "alice"), lead(2, "bob"))
    ep = endpoint(LEADS, RECORDS, fmt="xml", answer=CONTRACT)
    result = count_records(
        body, content_type=XML, content_encoding=None, endpoint=ep, identity=identity(), max_bytes=1 << 20
    )
    assert result.body == body and (result.records_seen, result.record_ids) == (2, ("1", "2"))


def test_an_answer_without_records_keeps_only_its_metadata():
    body = b'<r xmlns="urn:x"><deleted>3</deleted><ids><id>a</id></ids><debug>sql</debug></r>'
    ep = endpoint(LEADS, (), fmt="xml", answer=AnswerContract(metadata=("r.deleted",)))
    result = run(body, ep=ep, ob=obligations("own"), content_type="application/xml")
    assert result.body == b'<?xml version="1.0" encoding="UTF-8"?><r xmlns="urn:x"><deleted>3</deleted></r>'


def test_the_cap_on_body_size_applies_to_xml():
    with pytest.raises(ObligationUnenforceable):
        soap_run(envelope(*(lead(i, "alice") for i in range(50))), max_bytes=2048)
