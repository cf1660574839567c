"""TraitHead: pooling, constant-predictor start, save/load round trip and clear load errors."""

from __future__ import annotations

import json

import pytest
import torch

from psamf.personality import TraitHead, load_trait_head, pool, predict_traits
from psamf.personality.head import HEAD_CONFIG, HEAD_WEIGHTS


def _trained_head(activation: str = "sigmoid") -> TraitHead:
    torch.manual_seed(0)
    head = TraitHead(hidden_size=8, activation=activation, pooling="mean")
    head.init_at([0.4, 0.5, 0.6, 0.55, 0.45])
    with torch.no_grad():
        head.linear.weight.normal_()
    return head


def test_pool_first_and_masked_mean():
    hidden = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(2, 3, 2)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert torch.equal(pool(hidden, mask, "first"), hidden[:, 0])
    mean = pool(hidden, mask, "mean")
    assert torch.allclose(mean[0], hidden[0, :2].mean(0))  # the padded token is ignored
    assert torch.allclose(mean[1], hidden[1].mean(0))
    with pytest.raises(ValueError, match="pooling"):
        pool(hidden, mask, "max")


@pytest.mark.parametrize("activation", ["sigmoid", "none"])
def test_init_at_is_the_constant_predictor(activation):
    means = [0.4, 0.5, 0.6, 0.55, 0.45]
    head = TraitHead(hidden_size=8, activation=activation)
    head.init_at(means)
    out = head(torch.randn(4, 8))
    assert out.shape == (4, 5)
    assert torch.allclose(out, torch.tensor(means).expand(4, 5), atol=1e-6)
    assert head.fallback == pytest.approx(means)


@pytest.mark.parametrize("activation", ["sigmoid", "none"])
def test_save_load_round_trip(tmp_path, activation):
    head = _trained_head(activation)
    head.save(tmp_path)
    cfg = json.loads((tmp_path / HEAD_CONFIG).read_text())
    assert cfg["traits"] == list(head.traits) and cfg["activation"] == activation
    assert cfg["pooling"] == "mean" and cfg["hidden_size"] == 8
    loaded = load_trait_head(tmp_path)
    assert loaded is not None
    x = torch.randn(3, 8)
    assert torch.equal(loaded(x), head(x))
    assert loaded.fallback == pytest.approx(head.fallback)


def test_load_absent_head_is_none(tmp_path):
    assert load_trait_head(tmp_path) is None


def test_load_errors_name_the_file(tmp_path):
    _trained_head().save(tmp_path)
    cfg_path = tmp_path / HEAD_CONFIG
    cfg = json.loads(cfg_path.read_text())

    cfg_path.write_text(json.dumps({**cfg, "hidden_size": 16}))
    with pytest.raises(ValueError, match=HEAD_WEIGHTS.replace(".", r"\.") + ".*shape"):
        load_trait_head(tmp_path)

    cfg_path.write_text("{not json")
    with pytest.raises(ValueError, match=HEAD_CONFIG.replace(".", r"\.")):
        load_trait_head(tmp_path)

    cfg_path.write_text(json.dumps({**cfg, "pooling": "max"}))
    with pytest.raises(ValueError, match="pooling"):
        load_trait_head(tmp_path)

    cfg_path.write_text(json.dumps(cfg))
    (tmp_path / HEAD_WEIGHTS).write_bytes(b"garbage")
    with pytest.raises(ValueError, match=HEAD_WEIGHTS.replace(".", r"\.")):
        load_trait_head(tmp_path)

    (tmp_path / HEAD_WEIGHTS).unlink()
    with pytest.raises(FileNotFoundError, match=HEAD_WEIGHTS.replace(".", r"\.")):
        load_trait_head(tmp_path)


def test_nan_weights_refused(tmp_path):
    head = _trained_head()
    with torch.no_grad():
        head.linear.weight[0, 0] = float("nan")
    head.save(tmp_path)
    with pytest.raises(ValueError, match="NaN"):
        load_trait_head(tmp_path)


def test_predict_traits_needs_a_head(tmp_path):
    with pytest.raises(FileNotFoundError, match=HEAD_CONFIG.replace(".", r"\.")):
        predict_traits(tmp_path, ["hello"])
