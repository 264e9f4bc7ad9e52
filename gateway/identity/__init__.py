"""Identity: who is calling. See :mod:`gateway.identity.stage` for the order of authenticators.

directory       rules/users.yaml -> Directory (users, roles, hashed API keys / CRM tokens)
config          IdentityConfig (the ``identity:`` section of the settings)
base            the Authenticator protocol and header helpers
trusted_header  X-Authenticated-User from a trusted SSO proxy
api_key         X-API-Key
jwt_bearer      Authorization: Bearer <jwt> (keys + verifier + cache)
keys            key material from files (secrets, PEM public keys, a JWKS file)
remote_keys     signing keys fetched from jwks_url / OIDC discovery (TTL, rotation, fail closed)
claims          the user claim and the ``require``d claims of a verified token
crm_credential  the CRM's own JWTs and personal access tokens, forwarded unchanged
stage           IdentityStage.identify_async(headers, peer_trusted, directory) -> Identity
devkeys         development-only secrets and mint_token()
minting         ``crmgw token --config``: tokens signed with a gateway's configured keys
"""

from gateway.identity.config import IdentityConfig
from gateway.identity.directory import Directory, RoleDef, load_directory
from gateway.identity.keys import IdentityConfigError
from gateway.identity.stage import IDENTITY_HEADERS, IdentityStage, check_identity

__all__ = [
    "IDENTITY_HEADERS",
    "Directory",
    "IdentityConfig",
    "IdentityConfigError",
    "IdentityStage",
    "RoleDef",
    "check_identity",
    "load_directory",
]
