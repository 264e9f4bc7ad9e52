"""Model directory: save -> load round trip, and every way loading refuses a model."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import skops.io as sio
from sklearn.preprocessing import FunctionTransformer

from detectors import store
from detectors.features import FEATURE_NAMES
from detectors.signing import ModelKey, model_key


@pytest.fixture
def copy(model_dir, tmp_path):
    dest = tmp_path / "model"
    shutil.copytree(model_dir, dest)
    return dest


def _rewrite_card(folder, **changes):
    """Changes the card and signs it again with the key in use (the demo key here): the checks
    after the signature, as met by someone who holds the key."""
    card = json.loads((folder / "card.json").read_text())
    card.update(changes)
    (folder / "card.json").write_text(json.dumps(card))
    try:
        store.write_card(folder, store.sign(store.read_card(folder), model_key()))
    except store.ModelRefused:  # a card that does not even validate: left as it is
        pass


def test_round_trip_scores_the_same(model_dir, copy):
    loaded = store.load(copy)
    X = np.zeros((2, len(FEATURE_NAMES)))
    X[1, 2] = 8.0  # 3,000 records exported
    again = store.load(model_dir)
    assert np.allclose(
        loaded.model.score(X, ["sales_rep"] * 2, ["u", "v"]), again.model.score(X, ["sales_rep"] * 2, ["u", "v"])
    )
    assert loaded.model.threshold == loaded.card.threshold


def test_card_describes_the_model(copy):
    card = store.load(copy).card
    assert card.features == list(FEATURE_NAMES)
    assert card.sha256 == store.sha256_of(copy / "model.skops")
    assert card.versions["scikit-learn"] and card.budget == 10.0
    assert card.rows["training_user_days"] > 0


def test_a_changed_byte_is_refused_by_sha256(copy):
    data = bytearray((copy / "model.skops").read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / "model.skops").write_bytes(bytes(data))
    with pytest.raises(store.ModelRefused, match="sha256 .* does not match"):
        store.load(copy)


def test_a_changed_history_is_refused(copy):
    (copy / "history.json").write_text('{"history": {}}')
    with pytest.raises(store.ModelRefused, match="history.json: sha256"):
        store.load(copy)


def test_an_untrusted_type_is_refused_even_with_a_matching_card(copy):
    sio.dump({"format": 1, "iforest": FunctionTransformer(func=print)}, copy / "model.skops")
    _rewrite_card(copy, sha256=store.sha256_of(copy / "model.skops"))
    with pytest.raises(store.ModelRefused, match="not on the allow-list: builtins.print"):
        store.load(copy)


def test_another_scikit_learn_version_is_refused(copy):
    card = json.loads((copy / "card.json").read_text())
    _rewrite_card(copy, versions={**card["versions"], "scikit-learn": "0.20.0"})
    with pytest.raises(store.ModelRefused, match="scikit-learn 0.20.0"):
        store.load(copy)


def test_an_unknown_card_field_is_refused(copy):
    _rewrite_card(copy, surprise=1)
    with pytest.raises(store.ModelRefused, match="invalid model card"):
        store.load(copy)


def test_a_file_outside_the_directory_is_refused(copy):
    _rewrite_card(copy, model_file="../model.skops")
    with pytest.raises(store.ModelRefused, match="outside the model directory"):
        store.load(copy)


def test_no_card_means_missing(tmp_path):
    with pytest.raises(store.ModelMissing, match="crmgw detector train"):
        store.load(tmp_path)


# --- issue 15, point 4: the signed card -------------------------------------------------------
DEPLOYMENT_KEY = "k" * 40


def rewrite_threshold(folder, threshold: float) -> None:
    """What someone with write access but no key would do: a quiet model, its hash in the card."""
    payload = sio.load(folder / "model.skops", trusted=sorted(sio.get_untrusted_types(file=folder / "model.skops")))
    payload["threshold"] = threshold
    sio.dump(payload, folder / "model.skops")
    card = json.loads((folder / "card.json").read_text())
    card.update(sha256=store.sha256_of(folder / "model.skops"), threshold=threshold)
    (folder / "card.json").write_text(json.dumps(card))


def test_a_rehashed_model_with_a_huge_threshold_is_refused(copy):
    rewrite_threshold(copy, 1e9)
    with pytest.raises(store.ModelRefused, match="signature does not verify"):
        store.load(copy)


def test_an_unsigned_card_is_refused(copy):
    card = json.loads((copy / "card.json").read_text())
    del card["signature"]
    (copy / "card.json").write_text(json.dumps(card))
    with pytest.raises(store.ModelRefused, match="not signed"):
        store.load(copy)


def test_a_demo_signed_model_is_refused_under_a_deployment_key(copy, monkeypatch):
    monkeypatch.setenv("CRMGW_MODEL_KEY", DEPLOYMENT_KEY)
    with pytest.raises(store.ModelRefused, match="signed with the public demo key, not with this deployment's key"):
        store.load(copy)


def test_a_short_deployment_key_is_refused(copy, monkeypatch):
    monkeypatch.setenv("CRMGW_MODEL_KEY", "short")
    with pytest.raises(store.ModelRefused, match="at least 32 characters"):
        store.load(copy)


def test_crmgw_detector_sign_adopts_a_model_for_the_deployment_key(copy, monkeypatch):
    from gateway.cli import main

    monkeypatch.setenv("CRMGW_MODEL_KEY", DEPLOYMENT_KEY)
    assert main(["detector", "sign", "--model", str(copy)]) == 0
    loaded = store.load(copy)
    assert loaded.key.source == "CRMGW_MODEL_KEY" and not loaded.key.demo
    monkeypatch.delenv("CRMGW_MODEL_KEY")
    with pytest.raises(store.ModelRefused, match="not with this deployment's key"):
        store.load(copy)  # the demo key no longer verifies it


def test_crmgw_detector_sign_refuses_a_model_whose_files_changed(copy, monkeypatch):
    from gateway.cli import main

    (copy / "history.json").write_text("{}")
    monkeypatch.setenv("CRMGW_MODEL_KEY", DEPLOYMENT_KEY)
    assert main(["detector", "sign", "--model", str(copy)]) == 1
    with pytest.raises(store.ModelRefused, match="demo key"):
        store.load(copy)  # still the old signature: nothing was signed


@pytest.mark.slow
def test_crmgw_detector_train_signs_with_the_deployment_key(world_a, tmp_path, monkeypatch):
    from gateway.cli import main

    monkeypatch.setenv("CRMGW_MODEL_KEY", DEPLOYMENT_KEY)
    out = tmp_path / "m"
    assert main(["detector", "train", "--audit-log", str(world_a), "--out", str(out), "--budget", "10"]) == 0
    assert store.load(out).key.source == "CRMGW_MODEL_KEY"
    with pytest.raises(store.ModelRefused, match="signed with key"):
        store.load(out, ModelKey.demo_key())


def test_a_model_swapped_after_its_hash_was_checked_is_not_what_loads(model_dir, tmp_path, monkeypatch):
    """The bytes checked against the card are the bytes loaded: a file replaced between the check
    and a second read (a writer racing a hot reload) never loads (found by review)."""
    d = tmp_path / "model"
    shutil.copytree(model_dir, d)
    verified = store.load(d)
    payload = verified.model.to_payload()
    payload["allowances"] = {"mallory": dict.fromkeys(FEATURE_NAMES, 1e12)}  # the attacker's model
    evil = tmp_path / "evil.skops"
    sio.dump(payload, evil)
    checked = store._checked_file

    def check_then_swap(model_dir, name, expected):  # type: ignore[no-untyped-def]
        found = checked(model_dir, name, expected)
        if name == verified.card.model_file:
            shutil.copyfile(evil, d / name)  # the swap, right after the check
        return found

    monkeypatch.setattr(store, "_checked_file", check_then_swap)
    loaded = store.load(d)
    assert "mallory" not in loaded.model.allowances
    assert loaded.model.to_payload().keys() == verified.model.to_payload().keys()
