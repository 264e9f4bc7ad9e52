"""Model directory: ``model.skops`` + ``history.json`` + ``card.json``, and a loader that trusts none.

Loading refuses, with a message that says what to do:
- a card that does not parse or validate (pydantic, extra="forbid");
- a model or history file whose sha256 differs from the card (tampered, or half-copied);
- a model trained with another scikit-learn major.minor (its trees may not mean the same);
- any type in the skops file that is not on :data:`ALLOWED_TYPES` (skops ``get_untrusted_types``;
  nothing is ever loaded with ``trusted=True``);
- a payload that is not a detector model for the features this code computes.

- a card without a signature, or whose HMAC-SHA256 (over the whole card: the files' sha256, the
  threshold, the budget, ...) does not verify with this deployment's key: rewriting the model with a
  threshold of 1e9 and putting its new hash in the card is refused (:mod:`detectors.signing`).

The card is the human-readable summary: features, training and calibration ranges, row counts,
library versions, threshold, budget, the files' sha256 and the signature.

numpy, scipy, scikit-learn and skops are imported inside the functions that need them, never at
module level: the gateway imports this module (through gateway.scoring and gateway.settings) for
every ``crmgw`` command, and those libraries take seconds to import. Only loading or saving a model
pays for them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from detectors.signing import ModelKey, Signature, WeakModelKey, card_mac, model_key

if TYPE_CHECKING:
    from detectors.model import DetectorModel

MODEL_FILE, HISTORY_FILE, CARD_FILE = "model.skops", "history.json", "card.json"
CARD_FORMAT = "crmgw.detector/v1"
# skops types beyond its own default trust list that a detector model legitimately contains.
ALLOWED_TYPES = frozenset({"sklearn.tree._tree.Tree"})


class ModelError(Exception):
    """The model directory cannot be used; ``status`` is what health shows."""

    status = "refused"


class ModelMissing(ModelError):
    status = "missing"


class ModelRefused(ModelError):
    status = "refused"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Card(_Strict):
    format: str
    model_file: str
    sha256: str
    history_file: str
    history_sha256: str
    trained_at: str
    features: list[str]
    training_range: tuple[str, str]
    calibration_range: tuple[str, str]
    calibration_every: int  # every k-th day of the range before holdout_from calibrates
    holdout_from: str | None
    rows: dict[str, int]
    versions: dict[str, str]
    threshold: float
    budget: float
    budget_unit: str = "false alerts per 1,000 benign user-days"
    calibration_false_alerts_per_1000: float
    roles: list[str]
    verdicts: dict[str, int]
    model: dict[str, float | int | str]
    signature: Signature | None = None  # None: refused by load (detectors.signing)


def versions() -> dict[str, str]:
    import numpy as np
    import scipy
    import sklearn
    import skops

    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "skops": skops.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclasses.dataclass
class LoadedModel:
    model: DetectorModel
    card: Card
    history: dict[str, Any]  # detectors.replay.Aggregator.state() at the end of the training data
    key: ModelKey  # the key that verified the card (``key.demo``: the public demo key)


def sign(card: Card, key: ModelKey) -> Card:
    """The card with a signature by ``key`` over every other field."""
    unsigned = card.model_copy(update={"signature": None})
    return card.model_copy(update={"signature": Signature(key_id=key.key_id, mac=card_mac(unsigned, key))})


def write_card(out: Path, card: Card) -> None:
    body = card.model_dump(mode="json")
    if body.get("signature") is None:
        body.pop("signature", None)
    (Path(out) / CARD_FILE).write_text(json.dumps(body, indent=2) + "\n")


def save(
    out: Path,
    model: DetectorModel,
    history: dict[str, Any],
    card_fields: dict[str, Any],
    *,
    key: ModelKey | None = None,
) -> Card:
    """Writes the model directory, the card last and signed with ``key`` (default: the environment's,
    :func:`detectors.signing.model_key`)."""
    out = Path(out)
    key = key or model_key()
    import skops.io as sio

    out.mkdir(parents=True, exist_ok=True)
    sio.dump(model.to_payload(), out / MODEL_FILE)
    (out / HISTORY_FILE).write_bytes(orjson.dumps(history, option=orjson.OPT_SORT_KEYS))
    card = Card(
        format=CARD_FORMAT,
        model_file=MODEL_FILE,
        sha256=sha256_of(out / MODEL_FILE),
        history_file=HISTORY_FILE,
        history_sha256=sha256_of(out / HISTORY_FILE),
        versions=versions(),
        threshold=model.threshold,
        **card_fields,
    )
    card = sign(card, key)
    write_card(out, card)
    return card


def verify(card: Card, key: ModelKey, where: Path) -> None:
    """Raises ModelRefused unless ``key`` signed exactly this card."""
    sig = card.signature
    if sig is None:
        raise ModelRefused(
            f"{where}: the model card is not signed; sign it with this deployment's key "
            "(`crmgw detector sign`, CRMGW_MODEL_KEY) or retrain it with `crmgw detector train`"
        )
    if sig.key_id != key.key_id:
        signer = "the public demo key" if sig.key_id == ModelKey.demo_key().key_id else f"key {sig.key_id}"
        raise ModelRefused(
            f"{where}: the model card is signed with {signer}, not with this deployment's key ({key.describe()}); "
            "refusing a model that was not made for this deployment"
        )
    if not hmac.compare_digest(sig.mac, card_mac(card.model_copy(update={"signature": None}), key)):
        raise ModelRefused(f"{where}: the model card's signature does not verify: the card was changed after signing")


def read_card(model_dir: Path) -> Card:
    path = Path(model_dir) / CARD_FILE
    if not path.is_file():
        raise ModelMissing(
            f"no detector model in {model_dir} (missing {CARD_FILE}); train one with `crmgw detector train`"
        )
    try:
        card = Card.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ModelRefused(f"{path}: invalid model card at {where or '(top)'}: {first['msg']}") from None
    if card.format != CARD_FORMAT:
        raise ModelRefused(f"{path}: unknown card format {card.format!r} (expected {CARD_FORMAT})")
    return card


def _checked_file(model_dir: Path, name: str, expected: str) -> tuple[Path, bytes]:
    """The file's bytes, read once and checked against the card's sha256: what is loaded afterwards
    is these bytes, never the file again (a file swapped between the check and a second read --
    a hot reload is a race anyone who can write the folder may try -- would load unchecked)."""
    if Path(name).name != name:
        raise ModelRefused(f"model card names a file outside the model directory: {name!r}")
    path = Path(model_dir) / name
    if not path.is_file():
        raise ModelRefused(f"{path} is missing (named in {CARD_FILE})")
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ModelRefused(
            f"{path}: sha256 {actual} does not match the model card ({expected}); "
            "the file was modified after training - refusing to load it"
        )
    return path, data


def load(model_dir: Path, key: ModelKey | None = None) -> LoadedModel:
    """The verified model; ``key`` defaults to the environment's (detectors.signing.model_key)."""
    model_dir = Path(model_dir)
    if key is None:
        try:
            key = model_key()
        except WeakModelKey as exc:
            raise ModelRefused(str(exc)) from None
    card = read_card(model_dir)
    verify(card, key, model_dir / CARD_FILE)
    return _load_checked(model_dir, card, key)


def resign(model_dir: Path, key: ModelKey) -> Card:
    """``crmgw detector sign``: adopt a model for this deployment. Everything but the signature is
    checked as by :func:`load` first (hashes, types, versions); the operator vouches for the rest."""
    model_dir = Path(model_dir)
    card = read_card(model_dir)
    _load_checked(model_dir, card, key)
    card = sign(card, key)
    write_card(model_dir, card)
    return card


def _load_checked(model_dir: Path, card: Card, key: ModelKey) -> LoadedModel:
    model_path, model_bytes = _checked_file(model_dir, card.model_file, card.sha256)
    history_path, history_bytes = _checked_file(model_dir, card.history_file, card.history_sha256)
    # Only now: a missing or tampered model is refused without paying for these imports.
    import sklearn
    import skops.io as sio

    from detectors.model import DetectorModel

    trained, running = card.versions.get("scikit-learn", "?"), sklearn.__version__
    if trained.split(".")[:2] != running.split(".")[:2]:
        raise ModelRefused(
            f"{model_path} was trained with scikit-learn {trained}, this gateway runs "
            f"{running}; retrain the detector with `crmgw detector train`"
        )
    try:
        untrusted = sio.get_untrusted_types(data=model_bytes)
    except Exception as exc:  # not a skops file at all
        raise ModelRefused(f"{model_path} is not a readable skops file: {exc}") from None
    refused = sorted(t for t in untrusted if t not in ALLOWED_TYPES)
    if refused:
        raise ModelRefused(
            f"{model_path} contains types that are not on the allow-list: {', '.join(refused)}; refusing to load it"
        )
    try:
        payload = sio.loads(model_bytes, trusted=sorted(untrusted))
        model = DetectorModel.from_payload(payload)
    except Exception as exc:
        raise ModelRefused(f"{model_path}: not a usable detector model: {exc}") from None
    if list(model.feature_names) != card.features:
        raise ModelRefused(f"{model_path}: features differ from the model card")
    if model.threshold != card.threshold:
        raise ModelRefused(f"{model_path}: threshold {model.threshold} differs from the model card's {card.threshold}")
    try:
        history = orjson.loads(history_bytes)
    except orjson.JSONDecodeError as exc:
        raise ModelRefused(f"{history_path}: not JSON: {exc}") from None
    return LoadedModel(model, card, history, key)
