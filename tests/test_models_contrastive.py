"""Symmetric contrastive loss C(x, y): properties rather than fixed numbers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from psamf.models.contrastive import FIXED_SCALE, ContrastiveLoss


def _xy(batch: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 10, generator=gen), torch.randn(batch, 12, generator=gen)


def test_fixed_scale_is_not_exponentiated():
    loss = ContrastiveLoss(x_dim=10, y_dim=12)
    assert math.isclose(loss.scale.item(), math.log(1 / 0.07), rel_tol=1e-6)
    assert math.isclose(FIXED_SCALE, 2.659, rel_tol=1e-3)
    assert not any("scale" in n for n, _ in loss.named_parameters())


def test_matches_row_and_column_cross_entropy():
    torch.manual_seed(0)
    loss = ContrastiveLoss(x_dim=10, y_dim=12)
    x, y = _xy()
    a = F.normalize(loss.proj_x(x), dim=-1)
    b = F.normalize(loss.proj_y(y), dim=-1)
    sim = loss.scale * torch.einsum("id,jd->ij", a, b)  # (B, B)
    rows = -(sim.diag() - sim.logsumexp(dim=1)).mean()
    cols = -(sim.diag() - sim.logsumexp(dim=0)).mean()
    torch.testing.assert_close(loss(x, y), (rows + cols) / 2)


def test_permuting_the_pairs_together_keeps_the_loss():
    torch.manual_seed(0)
    loss = ContrastiveLoss(x_dim=10, y_dim=12)
    x, y = _xy()
    perm = torch.randperm(6)
    torch.testing.assert_close(loss(x[perm], y[perm]), loss(x, y))
    assert not torch.allclose(loss(x[perm], y), loss(x, y))


def test_learned_scale_gets_gradient_and_training_lowers_loss():
    torch.manual_seed(0)
    loss = ContrastiveLoss(x_dim=10, y_dim=12, scale="learned")
    assert math.isclose(loss.scale.item(), FIXED_SCALE, rel_tol=1e-6)
    x, y = _xy()
    start = loss(x, y)
    start.backward()
    assert loss.log_scale.grad is not None and loss.log_scale.grad != 0
    opt = torch.optim.Adam(loss.parameters(), lr=0.05)
    for _ in range(30):
        opt.zero_grad()
        loss(x, y).backward()
        opt.step()
    assert loss(x, y).item() < start.item() - 0.5


def test_authors_normalisation_order_differs_and_batch_of_one_refuses():
    torch.manual_seed(0)
    ours = ContrastiveLoss(x_dim=10, y_dim=12)
    authors = ContrastiveLoss(x_dim=10, y_dim=12, norm="authors")
    authors.load_state_dict(ours.state_dict())
    x, y = _xy()
    assert not torch.allclose(ours(x, y), authors(x, y))
    assert torch.isfinite(authors(x, y))
    with pytest.raises(ValueError, match="at least 2"):
        ours(x[:1], y[:1])
    with pytest.raises(ValueError, match="contrastive_scale"):
        ContrastiveLoss(x_dim=1, y_dim=1, scale="exp")
