"""PSAMF and the text_finetune baseline on tiny random encoders (plus one real MiniLM run)."""

from __future__ import annotations

import math

import pytest
import torch
from model_fixtures import make_batch, make_tiny_bert, make_tiny_mpnet

from psamf.models import PSAMF, PSAMFConfig, PSAMFOutput, build_model
from psamf.models.alignment import default_align_layer


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> str:
    return make_tiny_bert(tmp_path_factory.mktemp("bert"), layers=3)


def _model(path: str, seed: int = 0, **overrides) -> PSAMF:
    torch.manual_seed(seed)
    fields = {"text_encoder": path, "audio_dim": 5, "vision_dim": 7, **overrides}
    return build_model(PSAMFConfig(**fields))


def _names(model) -> set[str]:
    return {name for name, _ in model.named_parameters()}


def test_shapes_and_losses(bert):
    model = _model(bert)
    out = model(**make_batch(model))
    assert isinstance(out, PSAMFOutput)
    assert out.prediction.shape == (4,) and out.loss.shape == ()
    assert set(out.losses) == {"task", "ccl", "ps", "clm"}
    assert all(torch.isfinite(v) for v in out.losses.values())
    w = model.config
    expected = (out.losses["task"] + w.w_ccl * out.losses["ccl"] + w.w_ps * out.losses["ps"]
                + w.w_clm * out.losses["clm"])
    torch.testing.assert_close(out.loss, expected)
    batch = make_batch(model)
    batch.pop("labels")
    out = model(**batch)
    assert out.loss is None and out.losses == {}


def test_align_layer_default_and_validation(bert):
    assert [default_align_layer(n) for n in (12, 6, 3, 2, 1)] == [10, 5, 2, 1, 0]
    assert _model(bert).align_layer == 2
    assert _model(bert, align_layer=1).align_layer == 1
    with pytest.raises(ValueError, match="align_layer"):
        _model(bert, align_layer=4)


def test_gradients_reach_every_trainable_part(bert):
    model = _model(bert, contrastive_scale="learned")
    model(**make_batch(model)).loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert missing == []
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    for part in ("text_encoder", "av_encoders", "prefusion", "clm", "alignment", "fusion"):
        assert any(p.grad.abs().sum() > 0 for p in getattr(model, part).parameters()), part


@pytest.mark.parametrize("pooling", ["first", "mean"])
def test_eval_padding_invariance(bert, pooling):
    """Extra pad tokens and extra zero frames beyond the lengths leave predictions unchanged."""
    model = _model(bert, sentence_pooling=pooling).eval()
    lengths = {"audio": [3, 1, 2, 3], "vision": [2, 2, 1, 2]}
    base = make_batch(model, frames={"audio": 3, "vision": 2}, lengths=lengths)
    padded = make_batch(model, frames={"audio": 3, "vision": 2}, lengths=lengths)
    padded["input_ids"] = torch.cat([base["input_ids"], torch.zeros(4, 6, dtype=torch.long)], 1)
    padded["attention_mask"] = torch.cat([base["attention_mask"], torch.zeros(4, 6).long()], 1)
    for m in ("audio", "vision"):
        padded[m] = torch.cat([base[m], torch.zeros(4, 5, base[m].shape[2])], 1)
    with torch.no_grad():
        ref = model(**base).prediction
        got = model(**padded).prediction
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    # The authors' unmasked attention does see the padded frames.
    unmasked = _model(bert, mask_av_padding=False).eval()
    with torch.no_grad():
        assert not torch.allclose(unmasked(**base).prediction, unmasked(**padded).prediction)


def test_same_seed_same_output(bert):
    outs = []
    for _ in range(2):
        model = _model(bert, seed=7)
        outs.append(model(**make_batch(model)).loss)
    assert torch.equal(outs[0], outs[1])
    other = _model(bert, seed=8)
    assert not torch.equal(outs[0], other(**make_batch(other)).loss)


def test_sentence_pooling_mean_reads_every_real_position(bert):
    """Mean pooling averages M over text + AV tokens: same weights, different readout."""
    first, mean = _model(bert, seed=3), _model(bert, seed=3, sentence_pooling="mean")
    assert mean.config.sentence_pooling == "mean"
    batch = make_batch(first)
    with torch.no_grad():
        out_first, out_mean = first.eval()(**batch), mean.eval()(**batch)
    assert not torch.allclose(out_first.prediction, out_mean.prediction)
    assert not torch.allclose(out_first.losses["ccl"], out_mean.losses["ccl"])
    with pytest.raises(ValueError, match="sentence_pooling"):
        PSAMFConfig(sentence_pooling="max")


@pytest.mark.parametrize("pooling", ["first", "mean"])
def test_alignment_after_fusion_at_layer_n(bert, pooling):
    """align_layer = N reads layer N's text + AV positions; with AV tokens there are L+E."""
    model = _model(bert, align_layer=3, sentence_pooling=pooling)
    out = model(**make_batch(model))
    assert torch.isfinite(out.losses["ccl"]) and torch.isfinite(out.losses["ps"])


def test_batch_of_one_skips_contrastive_terms(bert):
    model = _model(bert)
    out = model(**make_batch(model, texts=("alone",)))
    assert set(out.losses) == {"task", "ps"}
    out.loss.backward()
    assert torch.isfinite(out.loss)


def test_missing_modalities(bert):
    # Dataset without vision: no vision modules; samples with 0 audio frames.
    model = _model(bert, vision_dim=None)
    assert not any("vision" in n for n in _names(model))
    batch = make_batch(model, lengths={"audio": [0, 3, 0, 1]})
    out = model(**batch)
    out.loss.backward()
    assert torch.isfinite(out.prediction).all() and torch.isfinite(out.loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    # Every sample without frames, both modalities: no NaN anywhere.
    both = _model(bert)
    out = both(**make_batch(both, lengths={"audio": [0] * 4, "vision": [0] * 4}))
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert all(torch.isfinite(p.grad).all() for p in both.parameters() if p.grad is not None)
    # A sample without frames behaves as if its frames did not exist.
    both.eval()
    batch = make_batch(both, lengths={"audio": [0, 3, 3, 3], "vision": [2, 0, 3, 3]})
    noisy = dict(batch)
    noisy["audio"] = batch["audio"].clone()
    noisy["audio"][0] = 5.0
    with torch.no_grad():
        torch.testing.assert_close(both(**noisy).prediction, both(**batch).prediction)
    with pytest.raises(ValueError, match="vision_dim"):
        batch.pop("vision")
        both(**batch)


ABLATIONS = {
    "use_personality": ({"alignment.", "prefusion.personality."}, {"ccl", "ps"}),
    "use_prefusion": ({"prefusion.", "clm."}, {"clm"}),
    "use_enhanced_fusion": (
        {"fusion.expand.", "fusion.serial", "fusion.parallel."}, set()),
    "use_ps_loss": ({"alignment.sentiment.", "alignment.probe."}, {"ps"}),
    "use_clm_loss": ({"clm."}, {"clm"}),
}
# Parameters an ablation leaves without a gradient. use_prefusion=False: the AV encoders' summary
# layers feed only the pre-fusion tokens, yet are still built. Removing them would change the
# RNG stream of the initialisation (so the recorded no-prefusion results would not reproduce seed
# for seed) and the checkpoint keys of no-prefusion runs; kept until that is decided. Any other
# dead parameter fails this test.
UNUSED_WHEN_ABLATED = {
    "use_prefusion": ("av_encoders.audio.summary.", "av_encoders.vision.summary."),
}


@pytest.mark.parametrize("flag", sorted(ABLATIONS))
def test_each_ablation_removes_its_parts(bert, flag):
    prefixes, dropped = ABLATIONS[flag]
    full = _model(bert, personality_dim=16)
    ablated = _model(bert, personality_dim=16, **{flag: False})
    removed = _names(full) - _names(ablated)
    assert _names(ablated) <= _names(full)
    for prefix in prefixes:
        assert any(n.startswith(prefix) for n in removed), prefix
    assert all(any(n.startswith(p) for p in prefixes) for n in removed)
    batch = make_batch(ablated)
    if flag == "use_personality":
        batch.pop("personality")
    out = ablated(**batch)
    assert set(out.losses) == {"task", "ccl", "ps", "clm"} - dropped
    out.loss.backward()
    assert torch.isfinite(out.loss)
    unused = {n for n, p in ablated.named_parameters() if p.grad is None}
    assert unused == {n for n in _names(ablated) if n.startswith(UNUSED_WHEN_ABLATED.get(flag, ()))}


@pytest.mark.parametrize("flag", ["use_personality", "use_prefusion"])
def test_prediction_ignores_personality_when_not_fused(bert, flag):
    model = _model(bert, **{flag: False}).eval()
    batch = make_batch(model)
    with torch.no_grad():
        ref = model(**batch).prediction
        batch["personality"] = batch["personality"] + 3.0
        torch.testing.assert_close(model(**batch).prediction, ref)
    with_p = _model(bert).eval()
    batch = make_batch(with_p)
    with torch.no_grad():
        ref = with_p(**batch).prediction
        batch["personality"] = batch["personality"] + 3.0
        assert not torch.allclose(with_p(**batch).prediction, ref)


def test_text_only_mode(bert):
    model = _model(bert, text_only=True)
    names = _names(model)
    assert not any(n.startswith(("av_encoders.", "prefusion.", "clm.", "fusion.attention."))
                   for n in names)
    batch = make_batch(model)
    out = model(**batch)  # audio / vision are not even in the batch
    assert set(out.losses) == {"task", "ccl", "ps"}
    out.loss.backward()


def test_detached_alignment_weight(bert):
    """With d detached, L_ps sends no gradient to W1 (it reaches W1 only through d)."""
    for detach in (True, False):
        model = _model(bert, detach_alignment_weight=detach)
        model(**make_batch(model)).losses["ps"].backward()
        grad = model.alignment.align.weight.grad
        assert (grad is None or not grad.any()) == detach


def test_fusion_layer_init_fresh(bert):
    pre = _model(bert).text_encoder.state_dict()
    fresh = _model(bert, fusion_layer_init="fresh").text_encoder.state_dict()
    last = "layer.2."
    changed = {k for k in pre if not torch.equal(pre[k], fresh[k])}
    assert changed and all(last in k for k in changed)


def test_parameter_groups_by_role(bert):
    model = _model(bert, personality_dim=16)
    groups = model.parameter_groups(encoder_lr=1e-5, other_lr=1e-4, weight_decay=1e-4)
    assert [g["name"] for g in groups] == ["encoder", "other"]
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    by_id = {id(p): n for n, p in model.named_parameters()}
    enc = {by_id[id(p)] for p in groups[0]["params"]}
    assert enc == {n for n in _names(model) if n.startswith(("text_encoder.", "prefusion."))}
    assert any(n.startswith("prefusion.personality.") for n in enc)
    assert groups[0]["lr"] == 1e-5 and groups[1]["lr"] == 1e-4
    torch.optim.Adam(groups)  # valid optimizer groups


def test_new_weights_are_xavier_normal(bert):
    model = _model(bert)
    weight = model.fusion.expand["audio"].weight  # (2048, 64)
    expected = math.sqrt(2.0 / (weight.shape[0] + weight.shape[1]))
    assert abs(weight.std().item() / expected - 1) < 0.05
    norm = model.fusion.serial_norm
    assert torch.equal(norm.weight, torch.ones_like(norm.weight))


def test_config_round_trip_and_errors(bert):
    config = PSAMFConfig(text_encoder=bert, audio_dim=5, w_ps=0.2, use_prefusion=False)
    assert PSAMFConfig.from_json(config.to_json()) == config
    assert build_model(config.to_dict()).config == config
    with pytest.raises(ValueError, match="fusion_layer_init"):
        PSAMFConfig(fusion_layer_init="random")
    with pytest.raises(ValueError, match="audio_dim"):
        PSAMFConfig(audio_dim=0)
    with pytest.raises(ValueError, match="unknown field"):
        PSAMFConfig.from_dict({"audio_dims": 5})
    with pytest.raises(TypeError):
        PSAMFConfig("minilm")  # keyword-only
    model = _model(bert)
    batch = make_batch(model)
    batch["personality"] = batch["personality"][:, :5]
    with pytest.raises(ValueError, match="personality_dim"):
        model(**batch)


def test_mpnet_encoder_works(tmp_path):
    path = make_tiny_mpnet(tmp_path / "mpnet")
    model = _model(path).eval()
    batch = make_batch(model)
    with torch.no_grad():
        ref = model(**batch)
        batch["input_ids"] = torch.cat([batch["input_ids"], torch.zeros(4, 3).long()], 1)
        batch["attention_mask"] = torch.cat([batch["attention_mask"], torch.zeros(4, 3).long()], 1)
        torch.testing.assert_close(model(**batch).prediction, ref.prediction, atol=1e-5, rtol=1e-5)
    model.train()
    out = model(**make_batch(model))
    out.loss.backward()
    assert torch.isfinite(out.loss)


def test_text_finetune_baseline(bert):
    torch.manual_seed(0)
    config = PSAMFConfig(model_type="text_finetune", text_encoder=bert, audio_dim=5)
    model = build_model(config)
    batch = make_batch(model)
    out = model(**batch)
    assert out.prediction.shape == (4,) and set(out.losses) == {"task"}
    out.loss.backward()
    groups = model.parameter_groups(encoder_lr=1e-5, other_lr=1e-4)
    assert [len(g["params"]) for g in groups] == [
        len(list(model.text_encoder.parameters())), 2]
    model.eval()
    with torch.no_grad():
        ref = model(**batch).prediction
        batch["input_ids"] = torch.cat([batch["input_ids"], torch.zeros(4, 3).long()], 1)
        batch["attention_mask"] = torch.cat([batch["attention_mask"], torch.zeros(4, 3).long()], 1)
        torch.testing.assert_close(model(**batch).prediction, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_real_minilm_step():
    torch.manual_seed(0)
    model = build_model(PSAMFConfig(audio_dim=5, vision_dim=7))
    assert model.text_encoder.num_layers == 6 and model.align_layer == 5
    batch = make_batch(model)
    out = model(**batch)
    assert set(out.losses) == {"task", "ccl", "ps", "clm"}
    out.loss.backward()
    opt = torch.optim.Adam(model.parameter_groups(encoder_lr=1e-5, other_lr=1e-4))
    opt.step()
    assert torch.isfinite(out.loss)


@pytest.mark.slow
def test_docstring_construction_example_runs(tmp_path, monkeypatch):
    """The usage example the README quotes (psamf.models.psamf docstring) really runs."""
    import textwrap

    import psamf.models.psamf as module

    doc = module.__doc__
    block = doc[doc.index("Public construction::") + len("Public construction::"):]
    block = block[: block.index("``P`` (B, H_p)")]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(textwrap.dedent(block), namespace)
    out = namespace["out"]
    assert out.prediction.shape == (2,) and torch.isfinite(out.loss)
    assert set(out.losses) == {"task", "ccl", "ps", "clm"}
    assert list((tmp_path / "cache").rglob("chunk-*.safetensors"))
