"""Predictor: sentiment scores (and Big Five readings) from a model folder, batched.

``Predictor(folder)`` reads a folder written by ``psamf export`` (every file checked against its
manifest first) or a run folder written by ``psamf train``. ``backend="torch"`` runs the PyTorch
model; ``"onnx"`` / ``"onnx-int8"`` run the exported graphs with ONNX Runtime (exported folders
made with ``--onnx`` / ``--int8`` only). The personality encoder giving P runs on the same backend;
the Big Five head (one linear layer) always runs in PyTorch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from psamf.errors import InputError, NotFoundError
from psamf.export import layout

BACKENDS: tuple[str, ...] = ("torch", "onnx", "onnx-int8")
SENTIMENT_CLASSES: dict[int, str] = {
    -3: "strongly negative", -2: "negative", -1: "weakly negative", 0: "neutral",
    1: "weakly positive", 2: "positive", 3: "strongly positive",
}


def sentiment_class(score: float) -> tuple[int, str]:
    """The 7-class reading of a score: round(clip(score, -3, 3)) and its name."""
    value = int(np.round(np.clip(score, -3.0, 3.0)))
    return value, SENTIMENT_CLASSES[value]


def load_model(path: str | Path, *, backend: str = "torch", device: str = "auto") -> Predictor:
    """A ``Predictor`` for an exported model folder (or a run folder)."""
    return Predictor(path, backend=backend, device=device)


def folder_kind(folder: Path) -> str:
    """``"export"`` or ``"run"``; anything else is a one-line error naming what is missing."""
    if not folder.is_dir():
        raise NotFoundError(f"{folder}: no such model folder (give a folder written by psamf "
                            "export, or a run folder written by psamf train)")
    if (folder / "manifest.json").is_file():
        return "export"
    if (folder / "config.yaml").is_file():
        return "run"
    raise InputError(f"{folder}: not a model folder: it has neither manifest.json (psamf export) "
                     "nor config.yaml (psamf train); give one of those")


class Predictor:
    """Scores transcripts with a trained model; see the module docstring.

    ``seed`` / ``personality_encoder`` apply to run folders only (which seed's weights; a copy of
    the run's personality encoder when its folder moved). ``batch_size``: texts per forward pass.
    """

    def __init__(self, folder: str | Path, backend: str = "torch", device: str = "auto", *,
                 seed: int | None = None, personality_encoder: str | None = None,
                 batch_size: int = 32) -> None:
        if backend not in BACKENDS:
            raise InputError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        self.folder = Path(folder)
        self.backend = backend
        self.batch_size = batch_size
        self.kind = folder_kind(self.folder)
        self._head = None
        self._p_info: dict[str, Any] | None = None
        if self.kind == "run":
            if backend != "torch":
                raise InputError(f"{self.folder}: a run folder runs on the torch backend only; "
                                 f"export it with psamf export RUN --out DIR --onnx for {backend}")
            self._load_run(seed, personality_encoder, device)
        else:
            if seed is not None or personality_encoder is not None:
                raise InputError(f"{self.folder}: an exported folder holds one seed and its own "
                                 "personality encoder; drop --seed / --personality-encoder")
            from psamf.export.manifest import verify_manifest

            verify_manifest(self.folder)
            self._load_export(device)

    def _init_unverified(self, folder: Path) -> None:
        """Load an export folder being written (no manifest yet) on torch / CPU: what the ONNX
        export traces and checks against."""
        self.folder, self.backend, self.batch_size, self.kind = Path(folder), "torch", 32, "export"
        self._head, self._p_info = None, None
        self._load_export("cpu")

    # --- loading ------------------------------------------------------------------------------

    def _load_run(self, seed: int | None, override: str | None, device: str) -> None:
        from psamf.device import resolve_device
        from psamf.training.runs import (
            load_trained_model,
            locate_personality_encoder,
            personality_check,
            read_seed_metrics,
            recorded_feature_profile,
        )

        self._device = resolve_device(device)
        config, self.seed, self._model = load_trained_model(self.folder, seed,
                                                            device=self._device)
        config = locate_personality_encoder(self.folder, config, override,
                                            how="--personality-encoder PATH")
        self.config = config.model
        self._tokenizer = self._model.tokenizer
        self._profile = recorded_feature_profile(self.folder)
        self._metrics = read_seed_metrics(self.folder, self.seed)
        self._card = None
        if config.uses_personality():
            from psamf.personality.folder import EncoderFolder

            folder = EncoderFolder.open(config.personality_encoder,
                                        pooling=config.personality_pooling_arg())
            self._open_personality(folder, check=personality_check(
                self.folder, how="--personality-encoder PATH"))

    def _load_export(self, device: str) -> None:
        from psamf.models.config import PSAMFConfig

        folder = self.folder
        info = _read_json(folder / layout.EXPORT_INFO)
        if info.get("format") != layout.FORMAT:
            raise InputError(f"{folder / layout.EXPORT_INFO}: export format "
                             f"{info.get('format')!r} is not one this psamf reads "
                             f"({layout.FORMAT}); use a matching psamf or re-export")
        self.seed = info.get("seed")
        config = PSAMFConfig.from_json((folder / layout.MODEL_CONFIG).read_text(encoding="utf-8"))
        self.config = config.replace(text_encoder=str(folder / layout.BACKBONE_DIR))
        self._export_info = info
        self._metrics = _read_json(folder / layout.METRICS)
        self._profile = _read_json(folder / layout.PROFILE) if (folder / layout.PROFILE).is_file() \
            else None
        card = folder / layout.CARD
        self._card = card.read_text(encoding="utf-8") if card.is_file() else None
        p = info.get("personality")
        if self.backend == "torch":
            from psamf.checkpointing import load_model_weights
            from psamf.device import resolve_device
            from psamf.models import build_model

            self._device = resolve_device(device)
            model = build_model(self.config)
            load_model_weights(model, folder / layout.MODEL_WEIGHTS)
            self._model = model.to(self._device).eval()
            self._tokenizer = model.tokenizer
        else:
            from psamf.models.text_encoder import load_tokenizer

            self._tokenizer = load_tokenizer(str(folder / layout.BACKBONE_DIR))
            self._sessions = self._open_onnx(info, device)
        if p:
            from psamf.personality.folder import EncoderFolder

            encoder = EncoderFolder.open(folder / p["folder"], pooling=p["pooling"],
                                         max_length=int(p["max_length"]))

            def check(enc: Any) -> None:
                if enc.identity != p["identity"]:
                    raise InputError(f"{folder / p['folder']}: identity {enc.identity} differs "
                                     f"from {p['identity']} in {layout.EXPORT_INFO}; re-export")

            self._open_personality(encoder, check=check if self.backend == "torch" else None)

    def _open_personality(self, folder: Any, *, check: Any) -> None:
        """P's encoder (torch: PersonalityEncoder; ONNX: its tokenizer, the graph is a session)
        and the trait head when the folder has one."""
        self._p_info = {"pooling": folder.pooling, "max_length": folder.max_length}
        if self.backend == "torch":
            from psamf.personality.encoder import PersonalityEncoder

            encoder = PersonalityEncoder(folder)
            if check is not None:
                check(encoder)
            self._p_encoder = encoder.to(self._device)
        else:
            from psamf.models.text_encoder import load_tokenizer

            self._p_tokenizer = load_tokenizer(folder.path)
        self._head = folder.trait_head()

    def _open_onnx(self, info: dict[str, Any], device: str) -> dict[str, Any]:
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise NotFoundError(f"backend {self.backend} needs onnxruntime: pip install "
                                "'psamf[serve]'") from err
        if not info.get("onnx"):
            raise InputError(f"{self.folder}: exported without ONNX graphs; re-export with "
                             f"psamf export RUN --out DIR --onnx{' --int8' * self._int8}")
        if self._int8 and not info["onnx"].get("int8"):
            raise InputError(f"{self.folder}: exported without int8 graphs; re-export with "
                             "--onnx --int8, or use --backend onnx")
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # warnings about unused initialisers are not the user's
        sessions = {}
        for key, graph in (("sentiment", layout.SENTIMENT_GRAPH),
                           ("personality", layout.PERSONALITY_GRAPH)):
            name = layout.int8_name(graph) if self._int8 else graph
            path = self.folder / layout.ONNX_DIR / name
            if path.is_file():
                sessions[key] = ort.InferenceSession(str(path), options, providers=providers)
        return sessions

    @property
    def _int8(self) -> bool:
        return self.backend == "onnx-int8"

    # --- predicting ---------------------------------------------------------------------------

    def predict_texts(self, texts: Sequence[str], *,
                      audio: Sequence[np.ndarray | None] | None = None,
                      vision: Sequence[np.ndarray | None] | None = None) -> list[dict]:
        """One reading per text: score, 7-class reading and, with a trait head, Big Five."""
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise InputError("texts must be a list of strings")
        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise InputError(f"texts[{i}]: must be a non-empty string (the transcript)")
        given = {"audio": audio, "vision": vision}
        widths = self.config.modality_widths()
        for name, arrays in given.items():
            if arrays is None:
                continue
            if name not in widths:
                raise InputError(f"{name}: this model does not use {name}; leave it out")
            if len(arrays) != len(texts):
                raise InputError(f"{name}: {len(arrays)} arrays for {len(texts)} texts; give one "
                                 "per text (None where absent)")
        out: list[dict] = []
        for start in range(0, len(texts), self.batch_size):
            chunk = texts[start:start + self.batch_size]
            frames = {name: _frames([None] * len(chunk) if given[name] is None
                                    else list(given[name][start:start + len(chunk)]),
                                    name, width, start)
                      for name, width in widths.items()}
            p = self.personality(chunk) if self._p_info is not None else None
            scores = self._scores(chunk, p, frames)
            traits = self._traits(p) if p is not None else [None] * len(chunk)
            for text, score, big_five in zip(chunk, scores, traits, strict=True):
                value, label = sentiment_class(float(score))
                out.append({"text": text, "score": float(score), "sentiment_class": value,
                            "label": label, "big_five": big_five})
        return out

    def personality(self, texts: Sequence[str]) -> np.ndarray:
        """P (N, H_p) float32 for ``texts`` from the model's personality encoder."""
        if self._p_info is None:
            raise InputError(f"{self.folder}: this model uses no personality embedding")
        if self.backend == "torch":
            return self._p_encoder.encode(list(texts), batch_size=self.batch_size).numpy()
        tokens = self._p_tokenizer(list(texts), padding=True, truncation=True,
                                   max_length=self._p_info["max_length"], return_tensors="np")
        (p,) = self._sessions["personality"].run(None, {
            "input_ids": tokens["input_ids"].astype(np.int64),
            "attention_mask": tokens["attention_mask"].astype(np.int64)})
        return p.astype(np.float32)

    def _scores(self, texts: list[str], p: np.ndarray | None,
                frames: dict[str, tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        kind = "np" if self.backend != "torch" else "pt"
        tokens = self._tokenizer(texts, padding=True, truncation=True,
                                 max_length=self.config.max_text_length, return_tensors=kind)
        if self.backend != "torch":
            feed = {"input_ids": tokens["input_ids"].astype(np.int64),
                    "attention_mask": tokens["attention_mask"].astype(np.int64)}
            if p is not None:
                feed["personality"] = p
            for name, (array, lengths) in frames.items():
                feed[name], feed[f"{name}_lengths"] = array, lengths
            from psamf.export.onnx_graphs import graph_feed

            session = self._sessions["sentiment"]
            (scores,) = session.run(None, graph_feed(session, feed))
            return scores.astype(np.float64)
        import torch

        dev = self._device
        batch: dict[str, Any] = {"input_ids": tokens["input_ids"].to(dev),
                                 "attention_mask": tokens["attention_mask"].to(dev)}
        if p is not None:
            batch["personality"] = torch.from_numpy(p).to(dev)
        for name, (array, lengths) in frames.items():
            batch[name] = torch.from_numpy(array).to(dev)
            batch[f"{name}_lengths"] = torch.from_numpy(lengths).to(dev)
        with torch.no_grad():
            return self._model(**batch).prediction.float().cpu().numpy().astype(np.float64)

    def _traits(self, p: np.ndarray) -> list[dict[str, float] | None]:
        if self._head is None:
            return [None] * len(p)
        import torch

        with torch.no_grad():
            scores = self._head.eval()(torch.from_numpy(p).float()).numpy()
        return [{t: float(v) for t, v in zip(self._head.traits, row, strict=True)}
                for row in scores]

    def predict_media(self, path: str | Path, *, transcript: str | None = None,
                      transcript_file: str | Path | None = None, split: str | None = None,
                      plot: str | Path | None = None) -> dict:
        """The reading of one clip (``psamf predict --media``, ``POST /v1/predict/media``).

        The clip is extracted as the model's data was (its feature profile), for the modalities
        the model reads only: a text model needs just the transcript, which comes from
        ``transcript`` (the text itself, never read as a path) or ``transcript_file`` (a text
        file, or .srt/.vtt with times), or else speech recognition.
        One reading per segment (``split="segments"``, the default: per recognised segment or
        subtitle cue; ``"file"``: the whole clip), the Big Five reading of the whole transcript,
        and, with ``plot``, a PNG of sentiment over time.
        """
        from psamf.media import reading

        path = Path(path)
        if transcript is not None and transcript_file is not None:
            raise InputError("give transcript (text) or transcript_file (a path), not both")
        given = (reading.transcript_from_text(transcript) if transcript is not None
                 else reading.transcript_from_file(transcript_file) if transcript_file is not None
                 else None)
        if split not in (None, "file", "segments"):
            raise InputError(f"split must be 'file' or 'segments', got {split!r}")
        if given and given.source == "given" and split == "segments":
            raise InputError("split 'segments' with a plain transcript: it has no times to cut "
                             "at; give an .srt/.vtt file, or split 'file'")
        if given and split == "file" and len(given.cues) > 1:  # one reading of the joined cues
            given = reading.joined(given)
        split = split or "segments"
        if plot is not None and not Path(plot).parent.is_dir():
            raise NotFoundError(f"plot {plot}: folder {Path(plot).parent} does not exist")
        widths = self.config.modality_widths()
        clip = reading.extract_for_model(path, self.folder, widths, self._profile, split=split,
                                         transcript=given)
        utts = clip.utterances

        def frames(name: str) -> list[np.ndarray | None] | None:
            if name not in widths:
                return None
            arrays = [getattr(u, name) for u in utts]  # no face / no stream: absent (length 0)
            return [a if a is not None and a.shape[0] else None for a in arrays]

        texts = [u.text for u in utts]
        readings = self.predict_texts(texts, audio=frames("audio"), vision=frames("vision"))
        segments = [{"start": round(u.start, 3),
                     "end": round(min(u.end, max(clip.info.duration_s, u.start)), 3),
                     "text": u.text, "score": r["score"],
                     "sentiment_class": r["sentiment_class"], "label": r["label"]}
                    for u, r in zip(utts, readings, strict=True)]
        whole = " ".join(texts)
        big_five = None
        if self._p_info is not None and self._head is not None and whole.strip():
            (big_five,) = self._traits(self.personality([whole]))
        out = {
            "seed": self.seed, "media": str(path), "duration_s": round(clip.info.duration_s, 3),
            "split": split,
            "modalities": reading.modality_report(
                clip, widths, given.source if given else "speech recognition"),
            "extractors": clip.built,
            "segments": segments,
            "clip": {"text": whole, "mean_score": reading.duration_weighted_mean(segments),
                     "big_five": big_five},
        }
        if plot is not None:
            reading.plot_timeline(Path(plot), segments, clip.info.duration_s,
                                  f"{path.name}: sentiment over time")
            out["plot"] = str(plot)
        return out

    def info(self) -> dict[str, Any]:
        """What the model is: its card, config, metrics, feature profile and backend."""
        return {"card": self._card, "config": self.config.to_dict(), "metrics": self._metrics,
                "profile": self._profile, "backend": self.backend, "seed": self.seed,
                "source": str(self.folder), "kind": self.kind,
                "personality": dict(self._p_info) if self._p_info else None,
                "big_five": self._head is not None}


def check_frames(array: Any, where: str, width: int, name: str) -> np.ndarray:
    """One utterance's (T, width) frame features as float32; a wrong shape, width or a non-finite
    value is one line starting with ``where``."""
    array = np.asarray(array)
    if array.ndim != 2 or array.shape[0] < 1:
        raise InputError(f"{where}: expected a (T, {width}) array of frames, got shape "
                         f"{array.shape}")
    if array.shape[1] != width:
        raise InputError(f"{where}: frames have width {array.shape[1]} but the model expects "
                         f"{width} ({name}_dim)")
    if not np.issubdtype(array.dtype, np.number) or not np.isfinite(array).all():
        raise InputError(f"{where}: must hold finite numbers")
    return array.astype(np.float32)


def _frames(arrays: list[np.ndarray | None], name: str, width: int,
            offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Pad per-text (T, d) arrays into (B, T_max, d) float32 + lengths (B,) int64; None or a
    missing modality is one zero frame of length 0 (absent)."""
    checked: list[np.ndarray | None] = []
    for i, array in enumerate(arrays):
        if array is None:
            checked.append(None)
            continue
        checked.append(check_frames(array, f"{name}[{offset + i}]", width, name))
    frames = max([a.shape[0] for a in checked if a is not None], default=1)
    out = np.zeros((len(arrays), frames, width), dtype=np.float32)
    lengths = np.zeros(len(arrays), dtype=np.int64)
    for i, array in enumerate(checked):
        if array is not None:
            out[i, :len(array)] = array
            lengths[i] = len(array)
    return out, lengths


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFoundError(f"{path}: missing; re-export the model") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not valid JSON ({err}); re-export the model") from None
