"""ONNX graphs of an exported model: the sentiment model (P an input) and the personality encoder.

Both have dynamic batch and sequence length (and frame count for audio / vision). They are
written with torch.onnx's TorchScript-based exporter (``dynamo=False``): on torch 2.13 the dynamo
exporter cannot trace the LSTM over packed sequences in the AV encoders, while the TorchScript one
maps it to ONNX's LSTM with ``sequence_lens``. Each graph is checked against PyTorch on probe
inputs of two batch sizes and lengths before the export is accepted; ``--int8`` adds dynamically
quantised copies (weights int8, activations quantised at run time) with their measured drift.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from psamf.errors import InputError, NotFoundError
from psamf.export import layout

OPSET = 17
PARITY_TOLERANCE = 1e-4  # max |ONNX - PyTorch| on a score or on P
_PROBES = ("fine", "a rather long and winding sentence about a film that never quite ends well",
           "so bad", "i loved every minute of it", "meh")


class _SentimentGraph(nn.Module):
    """The model's prediction from positional tensors (what the ONNX graph's inputs are)."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.names = names

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.names, tensors, strict=True))).prediction  # (B,)


class _PersonalityGraph(nn.Module):
    """P (B, H_p) from token ids: the frozen encoder's last layer, pooled as the folder says."""

    def __init__(self, encoder: nn.Module, pooling: str) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        from psamf.models.text_encoder import pool_tokens

        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        return pool_tokens(hidden.last_hidden_state, attention_mask, self.pooling)


def _require() -> Any:
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
        import onnxruntime as ort
    except ImportError as err:
        raise NotFoundError("--onnx needs onnx and onnxruntime: pip install 'psamf[serve]'") \
            from err
    return ort


def export_graphs(folder: Path, *, quantize: bool = False) -> dict[str, Any]:
    """Write ``folder/onnx/*.onnx`` for the model folder being exported in ``folder``; return the
    record kept in export.json (opset, measured parity, int8 drift)."""
    from psamf.inference import Predictor

    ort = _require()
    target = folder / layout.ONNX_DIR
    target.mkdir()
    predictor = Predictor.__new__(Predictor)  # the folder has no manifest yet: load its parts
    predictor._init_unverified(folder)
    model = predictor._model
    widths = predictor.config.modality_widths()
    names = ["input_ids", "attention_mask"]
    axes: dict[str, dict[int, str]] = {"input_ids": {0: "batch", 1: "tokens"},
                                       "attention_mask": {0: "batch", 1: "tokens"}}
    if predictor._p_info is not None:
        names.append("personality")
        axes["personality"] = {0: "batch"}
    for name in widths:
        names += [name, f"{name}_lengths"]
        axes[name] = {0: "batch", 1: f"{name}_frames"}
        axes[f"{name}_lengths"] = {0: "batch"}
    axes["prediction"] = {0: "batch"}
    example = _feed(predictor, list(_PROBES[:2]), names, frames=3)
    graph = _SentimentGraph(model, names).eval()
    sentiment = target / layout.SENTIMENT_GRAPH
    _export(graph, tuple(torch.from_numpy(example[n]) for n in names), sentiment, names,
            ["prediction"], axes)
    record: dict[str, Any] = {"opset": OPSET, "exporter": "torchscript",
                              "graphs": [layout.SENTIMENT_GRAPH]}
    if predictor._p_info is not None:
        encoder = predictor._p_encoder.encoder.model
        tokens = predictor._p_encoder.tokenizer(list(_PROBES[:2]), padding=True,
                                                return_tensors="pt")
        p_axes = {"input_ids": {0: "batch", 1: "tokens"},
                  "attention_mask": {0: "batch", 1: "tokens"}, "personality": {0: "batch"}}
        _export(_PersonalityGraph(encoder, predictor._p_info["pooling"]).eval(),
                (tokens["input_ids"], tokens["attention_mask"]),
                target / layout.PERSONALITY_GRAPH, ["input_ids", "attention_mask"],
                ["personality"], p_axes)
        record["graphs"].append(layout.PERSONALITY_GRAPH)
    record["max_abs_diff"] = _parity(predictor, target, names, ort, int8=False)
    if record["max_abs_diff"] > PARITY_TOLERANCE:
        raise InputError(f"{sentiment}: ONNX differs from PyTorch by {record['max_abs_diff']:.2e} "
                         f"(> {PARITY_TOLERANCE}); this model does not export faithfully")
    record["int8"] = quantize
    if quantize:
        for graph_name in record["graphs"]:
            quantize_graph(target / graph_name, target / layout.int8_name(graph_name))
        record["int8_settings"] = dict(INT8_SETTINGS)
        record["int8_max_abs_diff"] = _parity(predictor, target, names, ort, int8=True)
    return record


# quantize_dynamic's keyword arguments for --int8. Why these (benchmarks/int8_choice.md, MOSI
# test split, MiniLM text+P model, one thread): per-channel int8 weights on a 7-bit range moved
# Acc-2 non0 by -0.61 point vs torch (max |score drift| 0.39) at 4.1x torch / 2.1x fp32 ONNX
# throughput, the least drift of the settings tried; onnxruntime's defaults (per-tensor,
# full range) cost -1.37 points (drift 0.80) for 2% more speed, reduce_range alone -10.5 points,
# keeping the embeddings / first and last layers / fusion in fp32 or QUInt8 weights were no
# more accurate and slower. None met the 0.5-point goal on that short-trained model.
INT8_SETTINGS: dict[str, Any] = {"weight_type": "QInt8", "per_channel": True,
                                 "reduce_range": True, "op_types_to_quantize": None}


def quantize_graph(source: Path, target: Path, settings: dict[str, Any] | None = None) -> None:
    """Write ``target``, ``source`` dynamically quantised with ``settings`` (default
    INT8_SETTINGS; ``weight_type`` named as in onnxruntime's QuantType)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    kwargs = dict(INT8_SETTINGS if settings is None else settings)
    kwargs["weight_type"] = QuantType[kwargs["weight_type"]]
    logging.disable(logging.WARNING)  # the quantiser logs each skipped node on the root logger
    try:
        quantize_dynamic(source, target, **kwargs)
    finally:
        logging.disable(logging.NOTSET)


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str],
            axes: dict[str, dict[int, str]]) -> None:
    import warnings

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python-side shape checks
        torch.onnx.export(module, args, str(path), input_names=inputs, output_names=outputs,
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)


def graph_feed(session: Any, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The inputs the graph kept: the exporter drops one the prediction does not read (P in a
    model that only uses it in its training losses, e.g. ``text_only``)."""
    wanted = {i.name for i in session.get_inputs()}
    return {k: v for k, v in feed.items() if k in wanted}


def _feed(predictor: Any, texts: list[str], names: list[str], *, frames: int) -> dict:
    """Inputs of the sentiment graph for ``texts`` (P from the torch encoder; random frames)."""
    from psamf.inference import _frames

    tokens = predictor._tokenizer(texts, padding=True, truncation=True,
                                  max_length=predictor.config.max_text_length, return_tensors="np")
    feed = {"input_ids": tokens["input_ids"].astype(np.int64),
            "attention_mask": tokens["attention_mask"].astype(np.int64)}
    if "personality" in names:
        feed["personality"] = predictor.personality(texts)
    rng = np.random.default_rng(0)
    for name, width in predictor.config.modality_widths().items():
        arrays = [rng.normal(size=(1 + (i * 2) % frames, width)) if i % 3 != 2 else None
                  for i in range(len(texts))]
        feed[name], feed[f"{name}_lengths"] = _frames(arrays, name, width, 0)
    return feed


def _parity(predictor: Any, target: Path, names: list[str], ort: Any, *, int8: bool) -> float:
    """Largest |ONNX - PyTorch| over scores and P, at batch 1 and 5 and two frame counts."""
    def session(graph: str) -> Any:
        path = target / (layout.int8_name(graph) if int8 else graph)
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    sentiment = session(layout.SENTIMENT_GRAPH)
    worst = 0.0
    for texts, frames in ((list(_PROBES[1:2]), 2), (list(_PROBES), 6)):
        feed = _feed(predictor, texts, names, frames=frames)
        with torch.no_grad():
            want = predictor._model(**{n: torch.from_numpy(v) for n, v in feed.items()})
        (got,) = sentiment.run(None, graph_feed(sentiment, feed))
        worst = max(worst, float(np.abs(got - want.prediction.numpy()).max()))
        if "personality" in names:
            tokens = predictor._p_encoder.tokenizer(texts, padding=True, truncation=True,
                                                    max_length=predictor._p_info["max_length"],
                                                    return_tensors="np")
            (p,) = session(layout.PERSONALITY_GRAPH).run(None, {
                "input_ids": tokens["input_ids"].astype(np.int64),
                "attention_mask": tokens["attention_mask"].astype(np.int64)})
            worst = max(worst, float(np.abs(p - feed["personality"]).max()))
    return worst
