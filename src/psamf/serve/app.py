"""The FastAPI app: JSON API, the web page and an offline API reference.

Routes: ``POST /v1/predict`` (texts, optional frame features; micro-batched), ``POST
/v1/predict/media`` (an uploaded clip through the extraction pipeline), ``GET /v1/model``,
``GET /healthz``, ``GET /`` (the page), ``GET /docs`` (the API reference drawn from
``/openapi.json`` by a local script: FastAPI's Swagger UI loads from a CDN, so it is off).
Every error is ``{"error": {"status", "field", "message"}}`` with a 4xx/5xx status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import tempfile
from concurrent.futures import ThreadPoolExecutor
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, Protocol

import numpy as np
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from psamf import __version__
from psamf.errors import InputError, PsamfError
from psamf.serve.batcher import MicroBatcher
from psamf.serve.limits import LimitsMiddleware, error_body
from psamf.serve.settings import ServeSettings

log = logging.getLogger(__name__)
STATIC = Path(str(files("psamf.serve") / "static"))
UPLOAD_CHUNK = 1 << 20


class Predictor(Protocol):
    """What the app needs of ``psamf.inference.Predictor``."""

    backend: str

    def predict_texts(self, texts: list[str], *, audio: list | None = None,
                      vision: list | None = None) -> list[dict]: ...

    def predict_media(self, path: Path, **options: Any) -> dict: ...

    def info(self) -> dict: ...


class ApiError(Exception):
    def __init__(self, status: int, field: str | None, message: str) -> None:
        super().__init__(message)
        self.status, self.field, self.message = status, field, message


Frames = list[list[float]]


class PredictRequest(BaseModel):
    """One text (``text``) or many (``texts``); per text, optional (T, d) frame features."""

    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(None, description="one transcript (or use texts)")
    texts: list[str] | None = Field(None, description="several transcripts, scored together")
    audio: list[Frames | None] | None = Field(
        None, description="per text: audio frame features (T rows of the model's audio width)")
    vision: list[Frames | None] | None = Field(
        None, description="per text: vision frame features (T rows of the model's vision width)")


def create_app(predictor: Predictor, settings: ServeSettings | None = None) -> FastAPI:
    settings = settings or ServeSettings()

    def predict(texts: list[str], audio: list | None, vision: list | None) -> list[dict]:
        return predictor.predict_texts(texts, audio=audio, vision=vision)

    batcher = MicroBatcher(predict, max_batch=settings.max_batch, wait_ms=settings.batch_wait_ms)
    media_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="psamf-media")

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):
        await batcher.start()
        yield
        await batcher.stop()
        media_pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="psamf", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None,  # both load their scripts from a CDN
                  description="PSA-MF sentiment (−3…+3) and Big Five readings of text or clips.")
    app.add_middleware(
        LimitsMiddleware, max_concurrent=settings.max_concurrent,
        routes={"/v1/predict": ("application/json", settings.max_body_bytes),
                "/v1/predict/media": ("multipart/form-data", settings.max_clip_bytes + 65536)},
    )
    app.state.batcher = batcher
    _error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> FileResponse:
        return FileResponse(STATIC / "docs.html")

    @app.get("/healthz", summary="liveness: 200 while the server can answer")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/v1/model", summary="the model's card, config and metrics; limits; batching stats")
    async def model() -> dict:
        return _plain({**predictor.info(), "backend": predictor.backend,
                       "limits": settings.__dict__, "batching": batcher.stats.as_dict()})

    @app.post("/v1/predict", summary="sentiment and Big Five of one or many texts")
    async def predict_texts(body: PredictRequest) -> JSONResponse:
        texts, field = _texts(body, settings)
        audio = _frames(body.audio, "audio", len(texts))
        vision = _frames(body.vision, "vision", len(texts))
        try:
            results, shared = await asyncio.wait_for(batcher.submit(texts, audio, vision),
                                                     settings.request_timeout_s)
        except asyncio.TimeoutError:
            raise ApiError(504, None, f"no reading within {settings.request_timeout_s} s "
                                      "(request_timeout_s)") from None
        except InputError as err:
            raise ApiError(422, field, str(err)) from None
        return JSONResponse(_plain({"results": results}),
                            headers={"X-Psamf-Batch-Requests": str(shared)})

    @app.post("/v1/predict/media", summary="the reading of an uploaded audio/video clip")
    async def predict_media(
        clip: Annotated[UploadFile, File(description="an audio or video file")],
        transcript: Annotated[str | None, Form(description="its transcript (skips speech "
                                                           "recognition)")] = None,
    ) -> dict:
        loop = asyncio.get_running_loop()
        suffix = Path(clip.filename or "clip").suffix[:16]
        with tempfile.TemporaryDirectory(prefix="psamf-serve-") as tmp:
            path = Path(tmp) / f"clip{suffix}"
            await _save_upload(clip, path, settings.max_clip_bytes)
            options = {"transcript": transcript} if transcript and transcript.strip() else {}
            try:
                duration = await loop.run_in_executor(media_pool, _duration, path)
                if duration > settings.max_clip_seconds:
                    raise ApiError(413, "clip", f"clip lasts {duration:.1f} s, over the limit of "
                                                f"{settings.max_clip_seconds:g} s")
                reading = await asyncio.wait_for(
                    loop.run_in_executor(media_pool,
                                         lambda: predictor.predict_media(path, **options)),
                    settings.media_timeout_s)
            except asyncio.TimeoutError:
                raise ApiError(504, "clip", f"no reading within {settings.media_timeout_s} s "
                                            "(media_timeout_s)") from None
            except PsamfError as err:
                raise ApiError(422, "clip", _one_line(err, path, clip.filename)) from None
            except ApiError:
                raise
            except Exception as err:  # a failed extraction must not take the server down
                log.exception("extraction of %s failed", clip.filename)
                raise ApiError(500, "clip", f"extraction failed: {type(err).__name__}: "
                                            f"{_one_line(err, path, clip.filename)}") from None
        return _plain(reading)

    return app


def _texts(body: PredictRequest, settings: ServeSettings) -> tuple[list[str], str]:
    if (body.text is None) == (body.texts is None):
        raise ApiError(422, "texts", "give exactly one of 'text' (a string) or 'texts' "
                                     "(a list of strings)")
    field = "text" if body.text is not None else "texts"
    texts = [body.text] if body.text is not None else list(body.texts or [])
    if not texts:
        raise ApiError(422, "texts", "'texts' is empty; give at least one text")
    if len(texts) > settings.max_texts:
        raise ApiError(413, "texts", f"{len(texts)} texts, over the limit of "
                                     f"{settings.max_texts} per request (max_texts)")
    for i, text in enumerate(texts):
        name = field if body.text is not None else f"texts[{i}]"
        if not text.strip():
            raise ApiError(422, name, "text is empty; give the transcript to score")
        if len(text) > settings.max_text_chars:
            raise ApiError(413, name, f"text of {len(text)} characters, over the limit of "
                                      f"{settings.max_text_chars} (max_text_chars)")
    return texts, field


def _frames(given: list | None, name: str, n: int) -> list[np.ndarray | None] | None:
    if given is None:
        return None
    if len(given) != n:
        raise ApiError(422, name, f"{len(given)} entries for {n} texts; give one per text "
                                  "(null where absent)")
    out: list[np.ndarray | None] = []
    for i, rows in enumerate(given):
        if rows is None:
            out.append(None)
            continue
        widths = {len(r) for r in rows}
        if not rows or len(widths) != 1 or 0 in widths:
            raise ApiError(422, f"{name}[{i}]", "expected T >= 1 rows of equal, non-zero width")
        array = np.asarray(rows, dtype=np.float32)
        if not np.isfinite(array).all():
            raise ApiError(422, f"{name}[{i}]", "must hold finite numbers")
        out.append(array)
    return out


async def _save_upload(clip: UploadFile, path: Path, limit: int) -> None:
    size = 0
    with path.open("wb") as out:
        while chunk := await clip.read(UPLOAD_CHUNK):
            size += len(chunk)
            if size > limit:
                raise ApiError(413, "clip", f"clip is over the limit of {limit} bytes "
                                            "(max_clip_bytes)")
            out.write(chunk)
    if size == 0:
        raise ApiError(422, "clip", "the uploaded clip is empty")


def _duration(path: Path) -> float:
    from psamf.media.decode import probe

    return probe(path).duration_s


def _one_line(err: BaseException, path: Path, name: str | None) -> str:
    """The error on one line, naming the upload as the client called it (not the temp path)."""
    return " ".join(str(err).replace(str(path), name or "clip").split())


def _plain(value: Any) -> Any:
    """JSON-safe: numpy scalars/arrays to Python, Paths to str, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, err: ApiError) -> JSONResponse:
        return JSONResponse(error_body(err.status, err.field, err.message), status_code=err.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        if first.get("type") == "json_invalid":
            return JSONResponse(error_body(400, "body", "malformed JSON: "
                                           f"{first.get('ctx', {}).get('error', 'cannot parse')}"),
                                status_code=400)
        field = loc[0] + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in loc[1:]) \
            if loc else "body"
        return JSONResponse(error_body(422, field, f"{field}: {first.get('msg', 'invalid')}"),
                            status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, err: HTTPException) -> JSONResponse:
        detail = err.detail if isinstance(err.detail, dict) else {"message": str(err.detail)}
        return JSONResponse(error_body(err.status_code, detail.get("field"), detail["message"]),
                            status_code=err.status_code, headers=err.headers)
