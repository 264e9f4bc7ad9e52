"""The CRM's own login, accepted so existing clients keep working behind the gateway.

Two kinds, both in ``Authorization: Bearer``: (a) a JWT the CRM issued, verified with the CRM's key
and its own algorithm list and issuer; (b) a CRM personal access token (not a JWT), recognised by
its sha256 in the directory's ``crm_tokens``. Either way the Identity asks the proxy to forward the
credential unchanged (``forward_credential``), so the CRM still applies its own checks.
"""

from __future__ import annotations

from gateway.errors import Unauthenticated
from gateway.identity.base import lookup_user, sha256_hex
from gateway.identity.directory import Directory
from gateway.identity.jwt_bearer import JwtAuthenticator
from gateway.model import Identity


class CrmCredentialAuthenticator:
    """The CRM's keys and its personal-token switch; gateway.identity.stage.BearerAuthenticator
    asks it, after the gateway's own JWT keys."""

    name = "crm_credential"

    def __init__(self, jwt: JwtAuthenticator | None, personal_tokens: bool = True):
        self.jwt = jwt  # built with method="crm_jwt", forward_credential=True
        self.personal_tokens = personal_tokens

    def identify_token(self, token: str, directory: Directory) -> Identity:
        """A personal access token -> its owner; an unknown token is ``token-invalid``."""
        user_id = directory.crm_tokens.get(sha256_hex(token))
        if user_id is None:
            raise Unauthenticated("token-invalid", "unknown CRM personal access token")
        return Identity(user=lookup_user(directory, user_id), method="crm_token", forward_credential=True)
