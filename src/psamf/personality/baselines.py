"""Reference predictors computed in the same run as the fine-tuning, on the same clips.

- constant: the training means for every clip (already ~0.88 mean accuracy on First Impressions);
- frozen + ridge: mean-pooled embeddings of the untuned encoder, sklearn Ridge on top, alpha chosen
  on the validation split.

Both follow the fine-tuned model's rule for empty transcripts (predict the training means), so all
three are scored over exactly the same clips.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from sklearn.linear_model import Ridge

from psamf.personality.encode import encode_texts

log = logging.getLogger(__name__)

RIDGE_ALPHAS: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)


def nonempty_mask(texts: list[str]) -> np.ndarray:
    """True where a transcript has any non-whitespace character."""
    return np.array([bool(t.strip()) for t in texts], dtype=bool)


def fill_empty(preds: np.ndarray, texts: list[str], means: np.ndarray) -> np.ndarray:
    """Replace the rows of empty transcripts by the training means."""
    out = preds.copy()
    out[~nonempty_mask(texts)] = means
    return out


def frozen_ridge(
    encoder: torch.nn.Module,
    tokenizer,
    splits: dict[str, tuple[list[str], np.ndarray]],
    *,
    metric,
    max_tokens: int,
    batch_size: int,
    device: torch.device,
    alphas: tuple[float, ...] = RIDGE_ALPHAS,
) -> tuple[dict[str, np.ndarray], float]:
    """Fit Ridge on frozen mean-pooled embeddings; return per-split predictions and the alpha.

    ``splits`` maps train/valid/test to (texts, targets); ``metric(preds, targets)`` returns the
    validation score to maximise (mean accuracy).
    """
    feats: dict[str, np.ndarray] = {}
    for name, (texts, _) in splits.items():
        keep = nonempty_mask(texts)
        emb = encode_texts(
            encoder, tokenizer, [t for t, k in zip(texts, keep, strict=True) if k],
            pooling="mean", max_tokens=max_tokens, batch_size=batch_size, device=device,
            desc=f"frozen embeddings ({name})",
        ).numpy()
        full = np.zeros((len(texts), emb.shape[1] if len(emb) else 1), dtype=np.float64)
        full[keep] = emb
        feats[name] = full
        log.info("frozen embeddings: %s %d clips", name, len(texts))
    train_texts, train_y = splits["train"]
    means = train_y.mean(0)
    keep = nonempty_mask(train_texts)
    best_alpha, best_score = alphas[0], -np.inf
    valid_texts, valid_y = splits["valid"]
    for alpha in alphas:
        ridge = Ridge(alpha=alpha).fit(feats["train"][keep], train_y[keep])
        score = metric(fill_empty(ridge.predict(feats["valid"]), valid_texts, means), valid_y)
        log.debug("ridge alpha %g: valid score %.4f", alpha, score)
        if score > best_score:
            best_alpha, best_score = alpha, score
    ridge = Ridge(alpha=best_alpha).fit(feats["train"][keep], train_y[keep])
    preds = {
        name: fill_empty(ridge.predict(feats[name]).astype(np.float32), texts, means)
        for name, (texts, _) in splits.items()
    }
    return preds, best_alpha
