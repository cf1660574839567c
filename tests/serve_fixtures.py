"""The serve tests' helpers: a trained run behind the Predictor interface, the server in a
subprocess on a free loopback port, and plain-urllib HTTP calls.

``RunPredictor`` stands in for ``psamf.inference.Predictor`` while that is built on another
branch: the real trained model (``load_trained_model`` + the run's personality encoder, as
``psamf predict`` reads), and for clips the real decoder and speech recogniser.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from psamf.errors import InputError

SRC = Path(__file__).resolve().parents[1] / "src"


class RunPredictor:
    backend = "torch"

    def __init__(self, run: Path) -> None:
        from psamf.personality.encoder import PersonalityEncoder
        from psamf.personality.folder import EncoderFolder
        from psamf.training.runs import load_trained_model, locate_personality_encoder

        self.run = Path(run)
        config, self.seed, self.model = load_trained_model(run)
        self.config = locate_personality_encoder(run, config, None)
        self.widths = self.config.model.modality_widths()
        self.folder = self.encoder = None
        if self.config.uses_personality():
            self.folder = EncoderFolder.open(self.config.personality_encoder,
                                             pooling=self.config.personality_pooling_arg())
            self.encoder = PersonalityEncoder(self.folder)
        self._asr = None

    def predict_texts(self, texts: list[str], *, audio=None, vision=None) -> list[dict]:
        import torch

        from psamf.commands.predict import _big_five, sentiment_class
        from psamf.training.batching import model_batch

        if not texts or any(not isinstance(t, str) or not t.strip() for t in texts):
            raise InputError("texts must be non-empty strings")
        frames = {}
        for name, given in (("audio", audio), ("vision", vision)):
            if name not in self.widths:
                if given is not None and any(a is not None for a in given):
                    raise InputError(f"{name}: this model does not use {name}")
                continue
            width = self.widths[name]
            rows = [a if a is not None else np.zeros((1, width), np.float32)
                    for a in (given or [None] * len(texts))]
            if any(r.shape[1] != width for r in rows):
                raise InputError(f"{name}: frames must have width {width}")
            longest = max(r.shape[0] for r in rows)
            padded = np.zeros((len(rows), longest, width), np.float32)
            for i, r in enumerate(rows):
                padded[i, :r.shape[0]] = r
            lengths = [0 if (given is None or given[i] is None) else r.shape[0]
                       for i, r in enumerate(rows)]
            frames[name] = (torch.from_numpy(padded), torch.tensor(lengths))
        p = self.encoder.encode(texts) if self.encoder is not None else None
        with torch.no_grad():
            scores = self.model(**model_batch(self.model.tokenize(texts), personality=p,
                                              frames=frames)).prediction
        out = []
        for i, (text, score) in enumerate(zip(texts, scores.tolist(), strict=True)):
            value, label = sentiment_class(score)
            big = _big_five(self.folder, p[i:i + 1], text) if self.folder is not None else None
            out.append({"text": text, "score": score, "sentiment_class": value, "label": label,
                        "big_five": big})
        return out

    def predict_media(self, path: Path, **options: Any) -> dict:
        from psamf.media.asr import Recognizer
        from psamf.media.decode import load_audio, probe

        info = probe(path)
        if options.get("transcript"):
            segments = [(0.0, info.duration_s, options["transcript"])]
        else:
            if not info.has_audio:
                raise InputError(f"{path}: no audio stream and no transcript")
            self._asr = self._asr or Recognizer()
            segments = [(s.start, s.end, s.text) for s in
                        self._asr.transcribe(load_audio(path, sr=16000)) if s.text.strip()]
            if not segments:
                raise InputError(f"{path}: silent: no words recognised")
        readings = self.predict_texts([t for *_, t in segments])
        whole = " ".join(t for *_, t in segments)
        return {"duration_s": info.duration_s,
                "segments": [{"start": a, "end": b, **r}
                             for (a, b, _), r in zip(segments, readings, strict=True)],
                "clip": {"text": whole, "mean_score": float(np.mean([r["score"]
                                                                     for r in readings])),
                         "big_five": self.predict_texts([whole])[0]["big_five"]}}

    def info(self) -> dict:
        return {"card": {"name": self.run.name}, "config": {"seed": self.seed},
                "metrics": None, "profile": None, "backend": self.backend}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``psamf serve`` (through the stand-in launcher) on 127.0.0.1 in a subprocess."""

    def __init__(self, run: Path, log: Path, **settings: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{Path(__file__).parent}",
               "OMP_NUM_THREADS": "1"}
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "serve_launcher", str(run), str(self.port),
             json.dumps(settings)],
            env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {log.read_text()}")
            try:
                if get(self.url + "/healthz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not come up: {log.read_text()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def request(url: str, data: bytes | None = None, *, content_type: str | None = None,
            method: str | None = None, timeout: float = 60) -> tuple[int, dict, Any]:
    """(status, headers, parsed JSON body) — errors included, never raised."""
    req = urllib.request.Request(url, data=data, method=method)
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        body = err.read()
        return err.code, {k.lower(): v for k, v in err.headers.items()}, json.loads(body) if body else None


def get(url: str) -> tuple[int, dict, Any]:
    return request(url)


def post_json(url: str, payload: Any) -> tuple[int, dict, Any]:
    return request(url, json.dumps(payload).encode(), content_type="application/json")


def post_clip(url: str, name: str, content: bytes, **fields: str) -> tuple[int, dict, Any]:
    boundary = "psamf-test-boundary"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="clip"; '
                 f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
                 + content + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return request(url, body, content_type=f"multipart/form-data; boundary={boundary}")
