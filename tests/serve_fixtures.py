"""The serve tests' helpers: a trained run behind the Predictor interface, the server in a
subprocess on a free loopback port, and plain-urllib HTTP calls.

The server is ``psamf serve RUN`` itself.
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

SRC = Path(__file__).resolve().parents[1] / "src"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``psamf serve RUN`` on 127.0.0.1 in a subprocess."""

    def __init__(self, run: Path, log: Path, **settings: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(SRC),
               "OMP_NUM_THREADS": "1"}
        self.log = log
        argv = ["-m", "psamf", "serve", str(run), "--port", str(self.port), "--device", "cpu",
                *[f"--{k.replace('_', '-')}={v}" for k, v in settings.items()]]
        self.proc = subprocess.Popen(
            [sys.executable, *argv],
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
            status, headers, body = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        status, headers, body = err.code, err.headers, err.read()
    return status, {k.lower(): v for k, v in headers.items()}, json.loads(body) if body else None


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


def declared_too_large(url: str, path: str, size: int, content_type: str) -> tuple[int, Any]:
    """Send only the headers of a POST declaring ``size`` bytes; the server must answer 413
    without waiting for the body (a client uploading that much would otherwise hit a broken pipe
    when the server closes early)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
                  f"Content-Length: {size}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)
