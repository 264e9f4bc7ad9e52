"""JWT attacks from the jwt_tool / PortSwigger catalogue, end to end through the real gateway.

``alg: none`` in every spelling, HS/RS key confusion, keys embedded in the token (jwk, jku, x5u),
``kid`` injection, expiry and audience games, ECDSA "psychic signatures" (r = s = 0,
CVE-2022-21449), tokens offered in the query or a cookie. Every one must end in 401 with nothing
forwarded to the CRM; the positive controls prove the gateways under test do accept real tokens.
"""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm

from gateway.identity.devkeys import DEMOCRM_JWT_SECRET, DEV_AUDIENCE, DEV_ISSUER, DEV_JWT_SECRET
from tests.adversarial.wire import exchange, request

ISS, AUD = "https://idp.example", "crm"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ATTACKER_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
RSA_PEM = RSA_KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
EC_PEM = EC_KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def b64(data: bytes | dict) -> str:
    raw = json.dumps(data).encode() if isinstance(data, dict) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims(user: str = "grace", *, iss: str | None = DEV_ISSUER, aud: str | None = DEV_AUDIENCE, **extra) -> dict:
    now = int(time.time())
    out = {"sub": user, "iat": now, "exp": now + 600, "amr": ["pwd", "mfa"]}
    if iss is not None:
        out["iss"] = iss
    if aud is not None:
        out["aud"] = aud
    out.update(extra)
    return {k: v for k, v in out.items() if v is not ...}


def hs(payload: dict, secret: str | bytes = DEV_JWT_SECRET, headers: dict | None = None) -> str:
    # Built by hand: PyJWT itself refuses to HMAC-sign with a PEM key (the very attack tested here).
    import hashlib
    import hmac

    header = {"alg": "HS256", "typ": "JWT", **(headers or {})}
    signing_input = f"{b64(header)}.{b64(payload)}"
    key = secret.encode() if isinstance(secret, str) else secret
    return signing_input + "." + b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())


def unsigned(alg: str, payload: dict, signature: str = "") -> str:
    return f"{b64({'alg': alg, 'typ': 'JWT'})}.{b64(payload)}.{signature}"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def asym_gw(make_gw, tmp_path):
    """A gateway whose SSO signs with RS256 (JWKS, kid ``rsa1``) and ES256 (PEM)."""
    jwk = {**RSAAlgorithm.to_jwk(RSA_KEY.public_key(), as_dict=True), "kid": "rsa1", "alg": "RS256"}
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    (tmp_path / "ec.pem").write_bytes(EC_PEM)
    identity = {
        "jwt": {
            "algorithms": ["RS256", "ES256"],
            "jwks_file": "jwks.json",
            "public_keys": ["ec.pem"],
            "issuer": ISS,
            "audience": AUD,
        }
    }
    return await make_gw(identity=identity)


@pytest.fixture
async def mixed_gw(make_gw, tmp_path):
    """HS256 and RS256 side by side: the classic setup for key confusion."""
    (tmp_path / "rsa.pem").write_bytes(RSA_PEM)
    identity = {
        "jwt": {
            "algorithms": ["HS256", "RS256"],
            "secret": "s" * 40,
            "public_keys": ["rsa.pem"],
            "issuer": ISS,
            "audience": AUD,
        }
    }
    return await make_gw(identity=identity)


async def assert_refused(gw, standin, headers, target="/api/customers/1"):
    answer = await exchange(gw.port, request(target, headers))
    assert answer.status == 401, (answer.status, answer.body)
    assert standin.seen == []
    return answer


# --- the shipped development configuration: HS256 with a shared secret -----------------------------

ALG_NONE = [unsigned(alg, claims(), sig) for alg in ("none", "None", "NONE", "nOnE") for sig in ("", "AAAA")]


@pytest.mark.parametrize("token", ALG_NONE)
async def test_alg_none_in_every_spelling_is_refused(gw, standin, token):
    await assert_refused(gw, standin, auth(token))


def _tampered() -> str:
    good = hs(claims("alice"))
    header, _, sig = good.split(".")
    return f"{header}.{b64(claims('grace'))}.{sig}"


BAD_HS_TOKENS = {
    "payload-swapped": _tampered(),
    "signature-stripped": hs(claims()).rsplit(".", 1)[0] + ".",
    "signature-of-other-token": hs(claims()).rsplit(".", 1)[0] + "." + hs(claims("alice")).rsplit(".", 1)[1],
    "empty-secret": hs(claims(), ""),
    "guessable-secret": hs(claims(), "secret"),
    "crm-secret-gateway-issuer": hs(claims(), DEMOCRM_JWT_SECRET),
    "expired": hs(claims(exp=int(time.time()) - 3600)),
    "expired-beyond-leeway": hs(claims(exp=int(time.time()) - 120)),
    "not-yet-valid": hs(claims(nbf=int(time.time()) + 3600)),
    "issued-in-the-future": hs(claims(iat=int(time.time()) + 3600)),
    "missing-exp": hs(claims(exp=...)),
    "exp-as-string": hs(claims(exp="9999999999")),
    "exp-null": hs(claims(exp=None)),
    "wrong-issuer": hs(claims(iss="https://evil.example")),
    "missing-issuer": hs(claims(iss=None)),
    "wrong-audience": hs(claims(aud="billing")),
    "audience-list-without-ours": hs(claims(aud=["billing", "hr"])),
    "missing-audience": hs(claims(aud=None)),
    "sub-missing": hs(claims(sub=...)),
    "sub-not-a-string": hs(claims(sub=["grace"])),
    "sub-unknown-user": hs(claims("mallory")),
    "sub-case-variant": hs(claims("Grace")),
    "sub-with-nul": hs(claims("grace\u0000")),
    "sub-offboarded": hs(claims("ivan")),
    "embedded-oct-jwk": hs(claims(), "attacker", {"jwk": {"kty": "oct", "k": b64(b"attacker")}}),
    "kid-path-traversal": hs(claims(), b"", {"kid": "../../../../../../dev/null"}),
    "kid-sql-injection": hs(claims(), "x", {"kid": "x' UNION SELECT 'x"}),
    "rs256-claimed": unsigned("RS256", claims(), b64(b"\x00" * 256)),
}


@pytest.mark.parametrize("token", BAD_HS_TOKENS.values(), ids=BAD_HS_TOKENS.keys())
async def test_forged_or_invalid_tokens_are_refused(gw, standin, token):
    answer = await exchange(gw.port, request("/api/customers/1", auth(token)))
    assert answer.status in (401, 403), answer.body  # 403 only for the off-boarded user
    assert standin.seen == []


@pytest.mark.parametrize("param", ["access_token", "token", "jwt", "id_token", "bearer"])
async def test_tokens_in_the_query_are_not_credentials(gw, standin, param):
    await assert_refused(gw, standin, {}, target=f"/api/customers/1?{param}={hs(claims())}")


@pytest.mark.parametrize("cookie", ["token", "access_token", "session", "jwt"])
async def test_tokens_in_a_cookie_are_not_credentials(gw, standin, cookie):
    await assert_refused(gw, standin, {"Cookie": f"{cookie}={hs(claims())}"})


@pytest.mark.parametrize(
    "value",
    [
        "Bearer",
        "Bearer ",
        "Bearer a b",
        "Basic Z3JhY2U6Z3JhY2U=",
        "Token {tok}",
        "Bearer {tok}.extra",
        "Bearer {tok} {tok}",
        "Bearer " + "A" * 8180,
    ],
)
async def test_malformed_authorization_values_are_refused(gw, standin, value):
    answer = await exchange(gw.port, request("/api/customers/1", {"Authorization": value.format(tok=hs(claims()))}))
    assert answer.status in (400, 401) and standin.seen == []


async def test_valid_development_token_is_accepted(gw, standin):
    answer = await exchange(gw.port, request("/api/customers/1", auth(hs(claims()))))
    assert answer.status == 200 and len(standin.seen) == 1


# --- asymmetric configurations ----------------------------------------------------------------------


def rs(payload: dict, key=RSA_KEY, headers: dict | None = None, alg: str = "RS256") -> str:
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": "rsa1", **(headers or {})})


def es_with_signature(signature: bytes, payload: dict | None = None) -> str:
    return unsigned("ES256", payload or claims(iss=ISS, aud=AUD), b64(signature))


ASYM_BAD = {
    "hs256-with-public-key-pem": hs(claims(iss=ISS, aud=AUD), RSA_PEM),
    "hs256-with-public-key-pem-and-kid": hs(claims(iss=ISS, aud=AUD), RSA_PEM, {"kid": "rsa1"}),
    "attacker-key": rs(claims(iss=ISS, aud=AUD), ATTACKER_RSA),
    "embedded-jwk": rs(
        claims(iss=ISS, aud=AUD), ATTACKER_RSA, {"jwk": RSAAlgorithm.to_jwk(ATTACKER_RSA.public_key(), as_dict=True)}
    ),
    "jku": rs(claims(iss=ISS, aud=AUD), ATTACKER_RSA, {"jku": "https://evil.example/jwks.json", "kid": "evil"}),
    "x5u": rs(claims(iss=ISS, aud=AUD), ATTACKER_RSA, {"x5u": "https://evil.example/cert.pem", "kid": "evil"}),
    "kid-unknown": rs(claims(iss=ISS, aud=AUD), ATTACKER_RSA, {"kid": "' OR '1'='1"}),
    "kid-traversal": rs(claims(iss=ISS, aud=AUD), ATTACKER_RSA, {"kid": "../../../../dev/null"}),
    "kid-not-a-string": (lambda t: b64({"alg": "RS256", "kid": ["rsa1"]}) + t[t.index(".") :])(
        rs(claims(iss=ISS, aud=AUD))
    ),
    "ps256-not-listed": rs(claims(iss=ISS, aud=AUD), alg="PS256"),
    "rs512-not-listed": rs(claims(iss=ISS, aud=AUD), alg="RS512"),
    "rsa-key-for-es256": jwt.encode(claims(iss=ISS, aud=AUD), EC_KEY, algorithm="ES256", headers={"kid": "rsa1"}),
    "ecdsa-r0-s0": es_with_signature(b"\x00" * 64),
    "ecdsa-r0-s1": es_with_signature(b"\x00" * 63 + b"\x01" + b"\x00" * 31 + b"\x01"),
    "ecdsa-r-n-s-n": es_with_signature(P256_ORDER.to_bytes(32, "big") * 2),
    "ecdsa-der-zero": es_with_signature(bytes.fromhex("3006020100020100")),
    "ecdsa-empty": es_with_signature(b""),
    "expired-rs": rs(claims(iss=ISS, aud=AUD, exp=int(time.time()) - 3600)),
    "wrong-audience-rs": rs(claims(iss=ISS, aud="billing")),
    "gateway-dev-token": hs(claims()),
}


@pytest.mark.parametrize("token", ASYM_BAD.values(), ids=ASYM_BAD.keys())
async def test_asymmetric_gateway_refuses_forged_tokens(asym_gw, standin, token):
    await assert_refused(asym_gw, standin, auth(token))


@pytest.mark.parametrize(
    "token",
    [
        hs(claims(iss=ISS, aud=AUD), RSA_PEM),
        hs(claims(iss=ISS, aud=AUD), RSA_PEM.strip()),
        hs(claims(iss=ISS, aud=AUD), RSAAlgorithm.to_jwk(RSA_KEY.public_key())),
    ],
    ids=["pem", "pem-stripped", "jwk-json"],
)
async def test_public_key_is_never_an_hmac_secret(mixed_gw, standin, token):
    await assert_refused(mixed_gw, standin, auth(token))


async def test_valid_asymmetric_tokens_are_accepted(asym_gw, standin):
    good_rs = rs(claims(iss=ISS, aud=AUD))
    good_es = jwt.encode(claims(iss=ISS, aud=AUD), EC_KEY, algorithm="ES256")
    for token in (good_rs, good_es):
        answer = await exchange(asym_gw.port, request("/api/customers/1", auth(token)))
        assert answer.status == 200
    assert len(standin.seen) == 2
