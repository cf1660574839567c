"""Names inside an exported model folder (written by ``export_run``, read by ``Predictor``).

    README.md               model card
    manifest.json           SHA-256 of every other file (checked before anything is loaded)
    export.json             what was exported: source run, seed, P's encoder settings, widths
    model.json              the versioned model config (PSAMFConfig.to_json), backbone relative
    model.safetensors       the model's weights (text encoder included)
    text-backbone/          the text backbone's config + tokenizer (architecture only)
    personality-encoder/    the personality encoder folder: config, weights, tokenizer, trait head
    metrics.json            the exported seed's test / valid metrics
    feature_profile.json    how audio / vision features were extracted (when the run recorded one)
    onnx/                   with --onnx: sentiment.onnx, personality.onnx (+ *.int8.onnx), parity
"""

from __future__ import annotations

EXPORT_INFO = "export.json"
MODEL_CONFIG = "model.json"
MODEL_WEIGHTS = "model.safetensors"
BACKBONE_DIR = "text-backbone"
ENCODER_DIR = "personality-encoder"
METRICS = "metrics.json"
PROFILE = "feature_profile.json"
CARD = "README.md"
ONNX_DIR = "onnx"
SENTIMENT_GRAPH = "sentiment.onnx"
PERSONALITY_GRAPH = "personality.onnx"
PARITY = "parity.json"
FORMAT = 1


def int8_name(graph: str) -> str:
    """``sentiment.onnx`` -> ``sentiment.int8.onnx``."""
    return graph.replace(".onnx", ".int8.onnx")
