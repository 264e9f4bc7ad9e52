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


@pytest.fixture
def copy(model_dir, tmp_path):
    dest = tmp_path / "model"
    shutil.copytree(model_dir, dest)
    return dest


def _rewrite_card(folder, **changes):
    card = json.loads((folder / "card.json").read_text())
    card.update(changes)
    (folder / "card.json").write_text(json.dumps(card))


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
