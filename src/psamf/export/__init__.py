"""``psamf export``: a trained run as a self-contained model folder (see ``layout``).

The folder needs nothing else to predict: the model's weights (which hold its text encoder), the
text backbone's config and tokenizer, a copy of the personality encoder that gave P (identity
checked against the run's record), the versioned config and the feature profile. ``manifest.json``
pins every file's SHA-256. ``psamf.load_model(folder)`` / ``Predictor`` read it.
"""

from __future__ import annotations

from psamf.export.writer import export_run

__all__ = ["export_run"]
