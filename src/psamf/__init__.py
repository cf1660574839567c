"""psamf: Personality-Sentiment Aligned Multi-Level Fusion for multimodal sentiment analysis."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from psamf.inference import Predictor


def load_model(path: Any, *, backend: str = "torch", device: str = "auto") -> Predictor:
    """A ``psamf.inference.Predictor`` for a folder written by ``psamf export`` (or a run folder).
    Imported lazily: ``import psamf`` stays light."""
    from psamf.inference import load_model as _load

    return _load(path, backend=backend, device=device)
