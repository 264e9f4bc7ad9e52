"""The key that makes a model belong to a deployment: HMAC-SHA256 over the model card.

The card holds the sha256 of the model and history files, the threshold and the budget, so one MAC
over the whole card (canonical JSON, the signature itself left out) covers everything that decides
what the detector alerts on. Whoever can rewrite the model directory but does not hold the key
cannot make the gateway load a model of their own (a threshold of 1e9, say).

    CRMGW_MODEL_KEY   this deployment's key (at least 32 characters): ``crmgw detector train`` and
                      ``crmgw detector sign`` sign with it, the gateway verifies with it.
    (unset)           the public demo key below: models are signed and verified with it, and the
                      gateway says so in health (``detector-model-demo-key``). A gateway run with
                      CRMGW_MODEL_KEY refuses a demo-signed model.

The card names the key by ``key_id`` (an HMAC of a fixed label, not the key), so a refusal can say
"signed with the demo key" or "with another deployment's key" without revealing either.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
from typing import Literal

from pydantic import BaseModel, ConfigDict

KEY_ENV = "CRMGW_MODEL_KEY"
MIN_KEY_CHARS = 32
# Public on purpose: it only marks a model as "not made for any real deployment".
DEMO_KEY = b"crmgw-demo-model-key/not-a-secret/do-not-use-in-production"


class Signature(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    alg: Literal["HMAC-SHA256"] = "HMAC-SHA256"
    key_id: str
    mac: str


class WeakModelKey(ValueError):
    """CRMGW_MODEL_KEY is set but too short to be a key."""


@dataclasses.dataclass(frozen=True)
class ModelKey:
    secret: bytes = dataclasses.field(repr=False)
    source: str  # "CRMGW_MODEL_KEY" or "demo"

    @property
    def demo(self) -> bool:
        return self.secret == DEMO_KEY

    @property
    def key_id(self) -> str:
        return hmac.new(self.secret, b"crmgw model key id", hashlib.sha256).hexdigest()[:16]

    def describe(self) -> str:
        return f"the public demo key ({self.key_id})" if self.demo else f"{self.source} ({self.key_id})"

    @classmethod
    def demo_key(cls) -> ModelKey:
        return cls(DEMO_KEY, "demo")


def model_key(env: str = KEY_ENV) -> ModelKey:
    """This deployment's key from the variable ``env`` (the gateway's ``scoring.model_key_env``), else
    the demo key. Raises WeakModelKey for a short one."""
    value = os.environ.get(env, "")
    if not value:
        return ModelKey.demo_key()
    if len(value) < MIN_KEY_CHARS:
        raise WeakModelKey(f"{env} must be at least {MIN_KEY_CHARS} characters (e.g. `openssl rand -hex 32`)")
    return ModelKey(value.encode(), env)


def card_mac(unsigned_card: BaseModel, key: ModelKey) -> str:
    """HMAC-SHA256 of the card's canonical JSON (sorted keys, no spaces, no signature)."""
    body = unsigned_card.model_dump(mode="json")
    body.pop("signature", None)
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hmac.new(key.secret, canonical.encode(), hashlib.sha256).hexdigest()
