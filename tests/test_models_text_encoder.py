"""TextEncoder adapter: equals the stock forward, handles extra tokens and padding robustly."""

from __future__ import annotations

import pytest
import torch
from model_fixtures import make_tiny_bert, make_tiny_mpnet, make_tiny_roberta
from transformers import AutoModel

from psamf.models import TextEncoder

MAKERS = {"bert": make_tiny_bert, "mpnet": make_tiny_mpnet, "roberta": make_tiny_roberta}


@pytest.fixture(scope="module", params=sorted(MAKERS))
def tiny(request, tmp_path_factory) -> str:
    return MAKERS[request.param](tmp_path_factory.mktemp(request.param))


def _batch(length: int = 9) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(1000, 5000, (3, length), generator=gen)
    ids[:, 0] = 101
    mask = torch.ones(3, length, dtype=torch.long)
    mask[1, 6:] = 0
    mask[2, 3:] = 0
    return ids.masked_fill(mask == 0, 0), mask


def test_all_layers_equal_stock_forward(tiny):
    stock = AutoModel.from_pretrained(tiny).eval()
    ours = TextEncoder.from_pretrained(tiny).eval()
    ids, mask = _batch()
    reference = stock(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    states = ours(ids, mask)
    assert len(states) == ours.num_layers + 1 == len(reference)
    for ref, got in zip(reference, states, strict=True):
        real = mask.bool()
        torch.testing.assert_close(got[real], ref[real], atol=1e-5, rtol=1e-5)


def test_extra_tokens_reach_last_layer_only(tiny):
    enc = TextEncoder.from_pretrained(tiny).eval()
    ids, mask = _batch()
    extra = torch.randn(3, 2, enc.hidden_size)
    plain = enc(ids, mask)
    fused = enc(ids, mask, extra)
    assert fused[-1].shape == (3, ids.shape[1] + 2, enc.hidden_size)
    for a, b in zip(plain[:-1], fused[:-1], strict=True):
        torch.testing.assert_close(a, b)
    # The text tokens of layer N attend to the extra tokens: their output changes.
    assert not torch.allclose(plain[-1][:, 0], fused[-1][:, 0], atol=1e-4)


def test_padding_the_text_changes_nothing(tiny):
    """Appending pad tokens leaves real tokens and extra tokens unchanged (MPNet: relative bias)."""
    enc = TextEncoder.from_pretrained(tiny).eval()
    ids, mask = _batch()
    extra = torch.randn(3, 2, enc.hidden_size)
    longer_ids = torch.cat([ids, torch.zeros(3, 5, dtype=torch.long)], 1)
    longer_mask = torch.cat([mask, torch.zeros(3, 5, dtype=torch.long)], 1)
    short = enc(ids, mask, extra)[-1]
    long = enc(longer_ids, longer_mask, extra)[-1]
    length = ids.shape[1]
    torch.testing.assert_close(long[:, length + 5 :], short[:, length:], atol=1e-5, rtol=1e-5)
    real = mask.bool()
    torch.testing.assert_close(long[:, :length][real], short[:, :length][real], atol=1e-5,
                               rtol=1e-5)


def test_reset_last_layer_touches_only_layer_n(tiny):
    enc = TextEncoder.from_pretrained(tiny)
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    torch.manual_seed(0)
    enc.reset_last_layer()
    last = f"layer.{enc.num_layers - 1}."
    changed = {k for k, v in enc.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(last in k for k in changed)
    assert any("weight" in k and "LayerNorm" not in k for k in changed)


def test_unsupported_architecture_is_named():
    from transformers import ElectraConfig, ElectraModel

    with pytest.raises(ValueError, match="BERT-like"):
        TextEncoder(model=torch.nn.Linear(2, 2), name_or_path="weird")
    narrow = ElectraConfig(vocab_size=100, embedding_size=16, hidden_size=32, num_hidden_layers=1,
                           num_attention_heads=4, intermediate_size=64)
    with pytest.raises(ValueError, match="unsupported architecture ElectraModel"):
        TextEncoder(model=ElectraModel(narrow))


def _assert_equals_stock(path: str, *, layers: int, hidden: int, tol: float) -> None:
    stock = AutoModel.from_pretrained(path).eval()
    ours = TextEncoder.from_pretrained(path).eval()
    assert ours.num_layers == layers and ours.hidden_size == hidden
    ids, mask = _batch(12)
    with torch.no_grad():
        reference = stock(input_ids=ids, attention_mask=mask).last_hidden_state
        got = ours(ids, mask)[-1]
    torch.testing.assert_close(got[mask.bool()], reference[mask.bool()], atol=tol, rtol=tol)


@pytest.mark.slow
def test_real_minilm_equals_stock_forward():
    from psamf.backbones import resolve_backbone

    _assert_equals_stock(resolve_backbone("minilm"), layers=6, hidden=384, tol=1e-5)


@pytest.mark.slow
def test_real_mpnet_equals_stock_forward():
    """The bert-base-sized MPNet, where it has been assembled (artifacts/mpnet)."""
    from psamf.backbones import resolve_backbone

    try:
        path = resolve_backbone("mpnet")
    except FileNotFoundError as err:
        pytest.skip(str(err))
    _assert_equals_stock(path, layers=12, hidden=768, tol=1e-4)
