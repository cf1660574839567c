"""README.md of an exported model folder: what it is, its data, its metrics, how to load it."""

from __future__ import annotations

from typing import Any

from psamf.export import layout

_LICENCES = {
    "minilm": "all-MiniLM-L6-v2 (sentence-transformers), Apache-2.0",
    "mpnet": "all-mpnet-base-v2 (sentence-transformers), Apache-2.0",
}


def model_card(info: dict[str, Any], metrics: dict[str, Any] | None,
               profile: dict[str, Any] | None) -> str:
    data = info.get("dataset") or {}
    p = info.get("personality")
    lines = [
        f"# psamf model `{info['run']}` (seed {info['seed']})",
        "",
        f"A {info['model_type']} sentiment model exported by psamf {info['psamf_version']}: it "
        "reads a transcript (and audio / vision frame features when it uses them) and gives a "
        "sentiment score in [-3, 3].",
        "",
        "## Model",
        f"- text encoder: {info['text_encoder']} (weights in `{layout.MODEL_WEIGHTS}`, config and "
        f"tokenizer in `{layout.BACKBONE_DIR}/`)",
        "- modalities: text" + "".join(f", {m} (width {w})"
                                         for m, w in info["modalities"].items()),
    ]
    if p:
        lines.append(f"- personality embedding P: encoder {p['encoder']} copied into "
                     f"`{layout.ENCODER_DIR}/` (identity `{p['identity']}`, pooling "
                     f"{p['pooling']}, {p['max_length']} tokens; trait head: "
                     f"{'yes' if p['pretrained'] else 'no'})")
    lines += ["", "## Data",
              f"- trained on {data.get('name')} ({data.get('source') or 'source not recorded'})"
              + (" — SYNTHETIC sample data, not a real result" if data.get("synthetic") else ""),
              f"- split sizes: {data.get('sizes')}"]
    if profile is not None:
        lines.append(f"- audio / vision features: the profile in `{layout.PROFILE}`; feed "
                     "features extracted the same way (psamf extract)")
    lines += ["", f"## Test metrics (seed {info['seed']})"]
    test = (metrics or {}).get("test") or {}
    if test:
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |"
                  for k, v in sorted(test.items())]
    else:
        lines.append("- not recorded")
    onnx = info.get("onnx")
    if onnx:
        lines += ["", "## ONNX", f"- graphs in `{layout.ONNX_DIR}/` (opset {onnx['opset']}); "
                  f"largest |difference| from PyTorch at export: {onnx['max_abs_diff']:.2e}"]
        if onnx.get("int8_max_abs_diff") is not None:
            lines.append(f"- int8 (dynamic quantisation): largest |difference| "
                         f"{onnx['int8_max_abs_diff']:.2e}")
    lines += [
        "", "## How to load",
        "```",
        "psamf predict THIS_FOLDER --text \"what a great film\"  # --backend onnx: ONNX graphs",
        "psamf serve THIS_FOLDER",
        "```",
        "```python",
        "import psamf",
        "predictor = psamf.load_model(\"THIS_FOLDER\")",
        "predictor.predict_texts([\"what a great film\"])",
        "```",
        "Every file is checked against `manifest.json` (SHA-256) before loading.",
        "", "## Licences",
        "- psamf: Apache-2.0",
        f"- text backbone: {_LICENCES.get(info['text_encoder'], 'see its own model card')}",
        "- training data: the dataset's own terms apply (CMU-MOSI / CMU-MOSEI / First "
        "Impressions are for research use); this model inherits them",
        "",
    ]
    return "\n".join(lines)
