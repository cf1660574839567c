"""Write an exported model folder from a run folder (atomically: all of it or nothing)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from psamf import __version__
from psamf.errors import InputError
from psamf.export import layout
from psamf.export.card import model_card
from psamf.export.manifest import write_manifest
from psamf.io import atomic_dir, write_json, write_text

log = logging.getLogger(__name__)

# Tokenizer files a backbone folder may hold (copied when present).
_TOKENIZER_FILES = ("vocab.txt", "vocab.json", "merges.txt", "spiece.model",
                    "sentencepiece.bpe.model", "tokenizer.json", "tokenizer_config.json",
                    "special_tokens_map.json", "added_tokens.json")


def export_run(run: Path, out: Path, *, seed: int | None = None, onnx: bool = False,
               quantize: bool = False, personality_encoder: str | None = None) -> Path:
    """Export seed ``seed`` (default: the run's first) of ``run`` into ``out``; return ``out``.

    ``personality_encoder``: a copy of the run's encoder when its folder moved (same identity).
    ``onnx`` adds ONNX graphs (``quantize``: and int8 versions of them)."""
    from psamf.personality.encoder import PersonalityEncoder
    from psamf.personality.folder import HEAD_CONFIG, HEAD_WEIGHTS, EncoderFolder, _content_files
    from psamf.training.runs import (
        best_weights,
        check_writable,
        load_config,
        locate_personality_encoder,
        personality_check,
        read_seed_metrics,
        recorded_feature_profile,
        recorded_personality,
    )

    run, out = Path(run), Path(out)
    if quantize and not onnx:
        raise InputError("--int8 quantises the ONNX graphs; add --onnx")
    config = load_config(run)
    seed = config.seeds[0] if seed is None else seed
    if seed not in config.seeds:
        raise InputError(f"seed {seed} is not part of run {run}; its seeds are "
                         f"{list(config.seeds)}")
    weights = best_weights(run, seed)
    metrics = read_seed_metrics(run, seed)
    if out.resolve() == run.resolve() or run.resolve() in out.resolve().parents:
        raise InputError(f"--out {out}: inside the run folder {run}; choose a folder elsewhere")
    check_writable(out)
    config = locate_personality_encoder(run, config, personality_encoder)
    model_config = config.model
    backbone = _backbone_folder(model_config.text_encoder)
    with atomic_dir(out) as tmp:
        shutil.copyfile(weights, tmp / layout.MODEL_WEIGHTS)
        exported = model_config.replace(text_encoder=layout.BACKBONE_DIR)
        write_text(tmp / layout.MODEL_CONFIG, exported.to_json())
        _copy_backbone(backbone, tmp / layout.BACKBONE_DIR)
        personality = None
        if config.uses_personality():
            folder = EncoderFolder.open(config.personality_encoder,
                                        pooling=config.personality_pooling_arg())
            if not folder.is_folder:
                raise InputError(f"personality encoder {folder.name}: not a local folder; "
                                 "export needs its files (save it with save_pretrained first)")
            encoder_dir = tmp / layout.ENCODER_DIR
            encoder_dir.mkdir()
            heads = [Path(folder.path) / n for n in (HEAD_CONFIG, HEAD_WEIGHTS)]
            for file in [*_content_files(Path(folder.path)), *(h for h in heads if h.is_file())]:
                shutil.copyfile(file, encoder_dir / file.name)
            copy = EncoderFolder.open(encoder_dir, pooling=folder.pooling,
                                      max_length=folder.max_length)
            encoder = PersonalityEncoder(copy)
            personality_check(run, how="--personality-encoder PATH")(encoder)
            recorded = recorded_personality(run) or {}
            personality = {"folder": layout.ENCODER_DIR, "encoder": recorded.get("encoder"),
                           "identity": encoder.identity, "pooling": copy.pooling,
                           "max_length": copy.max_length, "pretrained": copy.pretrained,
                           "hidden_size": encoder.hidden_size}
        profile = recorded_feature_profile(run)
        if profile is not None:
            write_json(tmp / layout.PROFILE, profile)
        kept = {k: metrics.get(k) for k in ("seed", "best_epoch", "epochs_run", "valid", "test",
                                              "test_by_dataset") if k in metrics} \
            if metrics else None
        write_json(tmp / layout.METRICS, kept)
        info = _export_info(run, seed, config, personality, profile)
        write_json(tmp / layout.EXPORT_INFO, info)
        if onnx:
            from psamf.export.onnx_graphs import export_graphs

            info["onnx"] = export_graphs(tmp, quantize=quantize)
            write_json(tmp / layout.EXPORT_INFO, info)
        write_text(tmp / layout.CARD, model_card(info, kept, profile))
        write_manifest(tmp)
    log.info("exported %s (seed %d) to %s", run, seed, out)
    return out


def _backbone_folder(name: str) -> Path:
    from psamf.backbones import resolve_backbone

    path = Path(resolve_backbone(name))
    if not path.is_dir():
        from huggingface_hub import snapshot_download  # a hub id: its files are cached by now

        path = Path(snapshot_download(str(path)))
    return path


def _copy_backbone(source: Path, target: Path) -> None:
    """The backbone's config and tokenizer (its weights are part of the model's)."""
    from psamf.models.text_encoder import ARCHITECTURE_ONLY

    target.mkdir()
    shutil.copyfile(source / "config.json", target / "config.json")
    for name in _TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copyfile(source / name, target / name)
    write_json(target / ARCHITECTURE_ONLY, {
        "note": "architecture and tokenizer only; the weights are in ../model.safetensors",
        "source": str(source)})


def _export_info(run: Path, seed: int, config: Any, personality: dict | None,
                 profile: dict | None) -> dict[str, Any]:
    try:
        run_info = json.loads((run / "run.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        run_info = {}
    dataset = run_info.get("dataset") or {}
    return {
        "format": layout.FORMAT,
        "psamf_version": __version__,
        "run": run.resolve().name,
        "seed": seed,
        "model_type": config.model.model_type,
        "text_encoder": config.model.text_encoder,
        "dataset": {k: dataset.get(k) for k in ("name", "source", "synthetic", "sizes")},
        "modalities": config.model.modality_widths(),
        "personality": personality,
        "feature_profile": profile is not None,
    }
