"""``psamf serve``: a trained or exported model behind a JSON API and a web page.

Examples::

    psamf serve models/mosi                # http://127.0.0.1:8000/ : the page; /docs: the API
    psamf serve runs/my-run --port 9000 --max-texts 16
    psamf serve models/mosi --backend onnx --workers 2 --host 0.0.0.0

API: POST /v1/predict {"text": "..."} or {"texts": [...], "audio": [...], "vision": [...]};
POST /v1/predict/media (multipart: clip, optional transcript); GET /v1/model; GET /healthz.
Concurrent text requests are micro-batched into one model call (--max-batch, --batch-wait-ms).
A request over a limit gets a JSON error naming the field (413 too large, 422 invalid, 415 wrong
content type, 503 busy, 504 too slow). SIGTERM or Ctrl-C: requests in flight finish, exit 0.
The page and the API reference (/docs) load nothing from the network.
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from psamf.commands._args import add_command
from psamf.device import DEVICES_HELP
from psamf.errors import NotFoundError
from psamf.inference import BACKENDS
from psamf.serve.settings import ServeSettings

HELPS = {
    "max_texts": "texts in one /v1/predict request",
    "max_text_chars": "characters in one text",
    "max_body_bytes": "bytes in one JSON request body",
    "max_clip_bytes": "bytes in one uploaded clip",
    "max_clip_seconds": "seconds in one uploaded clip",
    "request_timeout_s": "seconds a text request may take, queueing included",
    "media_timeout_s": "seconds a clip may take (extraction included)",
    "max_concurrent": "requests in flight at once (beyond: 503)",
    "max_batch": "texts in one micro-batched model call",
    "batch_wait_ms": "milliseconds a batch waits for more requests",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "serve", doc=__doc__,
                    help="serve a model: JSON API, web page, offline API docs")
    p.add_argument("model", type=Path, help="a folder written by psamf export, or a run folder")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=1,
                   help="server processes, each with its own copy of the model (default 1)")
    p.add_argument("--backend", choices=BACKENDS, default="torch",
                   help="torch, or ONNX Runtime for a folder exported with --onnx "
                        "(onnx-int8: --int8)")
    p.add_argument("--device", default="auto", help=f"{DEVICES_HELP} (default auto)")
    defaults = ServeSettings()
    for f in fields(ServeSettings):
        p.add_argument(f"--{f.name.replace('_', '-')}", type=type(getattr(defaults, f.name)),
                       default=getattr(defaults, f.name), metavar="N",
                       help=f"{HELPS[f.name]} (default {getattr(defaults, f.name):g})")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise NotFoundError("psamf serve needs FastAPI and uvicorn: pip install 'psamf[serve]' "
                            "(scripts/setup.sh installs them)") from None
    from psamf.serve.server import load_predictor, serve

    settings = ServeSettings(**{f.name: getattr(args, f.name) for f in fields(ServeSettings)})
    if not args.model.is_dir():
        raise NotFoundError(f"{args.model}: no such model folder (psamf export writes one; a "
                            "run folder from psamf train works too)")
    if args.workers < 1:
        from psamf.errors import InputError

        raise InputError(f"--workers {args.workers}: must be >= 1")
    # Load once here so a bad model is a one-line error before the port opens; with several
    # workers each process loads its own copy.
    predictor = load_predictor(args.model, args.backend, args.device)
    target = predictor if args.workers == 1 else args.model
    serve(target, settings, host=args.host, port=args.port, workers=args.workers,
          backend=args.backend, device=args.device)
    return 0
