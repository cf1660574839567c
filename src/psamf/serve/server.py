"""Running the app under uvicorn: one process holding the model, or ``workers`` processes that
each load it (uvicorn then imports ``app_from_env`` in each, reading the model and settings from
the environment). SIGTERM / Ctrl-C: uvicorn stops accepting, finishes the requests in flight and
exits (status 0)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from psamf.serve.settings import ServeSettings

MODEL_ENV, BACKEND_ENV, DEVICE_ENV, SETTINGS_ENV = (
    "PSAMF_SERVE_MODEL", "PSAMF_SERVE_BACKEND", "PSAMF_SERVE_DEVICE", "PSAMF_SERVE_SETTINGS")
GRACE_S = 10  # how long in-flight requests may take to finish after SIGTERM


def load_predictor(model: Path, backend: str, device: str = "auto"):
    from psamf.inference import Predictor

    return Predictor(model, backend=backend, device=device)


def app_from_env():
    """The app for one uvicorn worker process (``--workers N``)."""
    from psamf.serve.app import create_app

    settings = ServeSettings.from_json(os.environ[SETTINGS_ENV])
    return create_app(load_predictor(Path(os.environ[MODEL_ENV]), os.environ[BACKEND_ENV],
                                     os.environ.get(DEVICE_ENV, "auto")),
                      settings)


def serve(predictor_or_model, settings: ServeSettings, *, host: str, port: int,
          workers: int = 1, backend: str = "torch", device: str = "auto") -> None:
    """Serve until SIGTERM/SIGINT. ``predictor_or_model``: a loaded Predictor (one process) or a
    model folder (loaded in each of ``workers`` processes)."""
    import uvicorn

    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal under the
    # handler that was installed before it started: a no-op here, so a requested stop exits 0.
    signal.signal(signal.SIGTERM, _stopped)
    signal.signal(signal.SIGINT, _stopped)
    common = {"host": host, "port": port, "log_level": "info",
              "timeout_graceful_shutdown": GRACE_S, "access_log": False}
    if workers > 1:
        os.environ[MODEL_ENV] = str(predictor_or_model)
        os.environ[BACKEND_ENV] = backend
        os.environ[DEVICE_ENV] = device
        os.environ[SETTINGS_ENV] = settings.to_json()
        uvicorn.run("psamf.serve.server:app_from_env", factory=True, workers=workers, **common)
        return
    from psamf.serve.app import create_app

    predictor = predictor_or_model
    if isinstance(predictor, str | Path):
        predictor = load_predictor(Path(predictor), backend, device)
    uvicorn.run(create_app(predictor, settings), **common)


def _stopped(signum: int, frame: object) -> None:
    """The signal uvicorn re-raises once it has shut down: the stop was asked for, not a crash."""
