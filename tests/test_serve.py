"""psamf serve end to end: the real server on a free 127.0.0.1 port in a subprocess, its JSON API
(every error path, then /healthz still answers), micro-batching under 32 concurrent requests,
SIGTERM, and the web page driven in headless Chromium through Selenium."""

from __future__ import annotations

import json
import math
import re
import shutil
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from serve_fixtures import Server, declared_too_large, get, post_clip, post_json, request
from training_fixtures import fast_overrides, tiny_encoder

from psamf.cli import main

pytest.importorskip("fastapi", reason="psamf serve needs the serve extra: pip install psamf[serve]")

LIMITS = {"max_texts": 8, "max_text_chars": 200, "max_body_bytes": 20_000,
          "max_clip_bytes": 3_000_000, "max_clip_seconds": 6.0, "batch_wait_ms": 25.0}
STATIC = Path(__file__).resolve().parents[1] / "src" / "psamf" / "serve" / "static"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("serve")


@pytest.fixture(scope="module")
def run(workdir) -> Path:
    encoder = tiny_encoder(workdir / "tiny-bert")
    settings = fast_overrides(encoder, workdir / "cache", epochs=1, **{
        "data.limit_train": 8, "data.limit_valid": 8, "data.limit_test": 8})
    assert main(["train", "--data", "sample", *settings, "--seeds", "1", "--no-progress",
                 "--out", str(workdir / "runs"), "--name", "tiny"]) == 0
    return workdir / "runs" / "tiny"


@pytest.fixture(scope="module")
def server(run, workdir):
    srv = Server(run, workdir / "server.log", **LIMITS)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def text_run(workdir) -> Path:
    """A model that reads the transcript (+P) only: a clip needs speech recognition alone (the
    sample data's frame features were not made by psamf extract, so a clip cannot stand in)."""
    encoder = tiny_encoder(workdir / "tiny-bert")
    settings = fast_overrides(encoder, workdir / "cache", epochs=1, **{
        "data.limit_train": 8, "data.limit_valid": 8, "data.limit_test": 8,
        "model.text_only": "true"})
    assert main(["train", "--data", "sample", *settings, "--seeds", "1", "--no-progress",
                 "--out", str(workdir / "runs"), "--name", "text"]) == 0
    return workdir / "runs" / "text"


@pytest.fixture(scope="module")
def clip_server(text_run, workdir):
    srv = Server(text_run, workdir / "clip-server.log", **LIMITS)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def speech_clip(workdir) -> Path:
    from media_fixtures import face_frames, speak, write_media

    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng is not installed (scripts/setup.sh installs it)")
    audio = speak("i really loved this movie, it was wonderful", workdir / "say.wav")
    return write_media(workdir / "talk.mp4", audio=audio,
                       frames=face_frames(int(len(audio) / 16000 * 5) + 1, size=96), fps=5)


def _error(status_body, status: int, field: str | None) -> str:
    got_status, _, body = status_body
    assert got_status == status, body
    assert set(body) == {"error"} and body["error"]["status"] == status
    assert body["error"]["field"] == field, body
    assert body["error"]["message"] and "\n" not in body["error"]["message"]
    return body["error"]["message"]



# --- the JSON API ---------------------------------------------------------------------------


def test_one_text_and_many(server):
    status, _, body = post_json(server.url + "/v1/predict", {"text": "a wonderful film"})
    assert status == 200 and len(body["results"]) == 1
    one = body["results"][0]
    assert one["text"] == "a wonderful film" and math.isfinite(one["score"])
    assert one["sentiment_class"] == round(max(-3, min(3, one["score"])))
    status, _, body = post_json(server.url + "/v1/predict",
                                {"texts": ["a wonderful film", "dull and far too long"]})
    assert status == 200 and [r["text"] for r in body["results"]] == [
        "a wonderful film", "dull and far too long"]
    assert body["results"][0]["score"] == pytest.approx(one["score"], abs=1e-5)


def test_model_card_limits_and_health(server):
    status, _, info = get(server.url + "/v1/model")
    assert status == 200 and info["backend"] == "torch"
    assert info["limits"]["max_texts"] == LIMITS["max_texts"]
    assert {"card", "config", "metrics", "batching"} <= set(info)
    assert get(server.url + "/healthz")[2] == {"status": "ok"}


def _big_json() -> bytes:
    return json.dumps({"texts": ["x" * 150] * 8, "pad": "y" * 30_000}).encode()


ERRORS = [  # (name, request kwargs, status, field)
    ("malformed JSON", dict(data=b'{"text": "good', content_type="application/json"), 400, "body"),
    ("missing field", dict(data=b"{}", content_type="application/json"), 422, "texts"),
    ("unknown field", dict(data=b'{"txt": "hi"}', content_type="application/json"), 422, "txt"),
    ("wrong type", dict(data=b'{"texts": "hi"}', content_type="application/json"), 422, "texts"),
    ("empty text", dict(data=b'{"text": "   "}', content_type="application/json"), 422, "text"),
    ("empty text in list", dict(data=b'{"texts": ["ok", ""]}',
                                content_type="application/json"), 422, "texts[1]"),
    ("empty list", dict(data=b'{"texts": []}', content_type="application/json"), 422, "texts"),
    ("too many texts", dict(data=json.dumps({"texts": ["ok"] * 9}).encode(),
                            content_type="application/json"), 413, "texts"),
    ("text too long", dict(data=json.dumps({"text": "a" * 201}).encode(),
                           content_type="application/json"), 413, "text"),
    ("body too large", dict(data=_big_json(), content_type="application/json"), 413, "body"),
    ("wrong content type", dict(data=b'{"text": "hi"}', content_type="text/plain"), 415,
     "content-type"),
    ("no content type", dict(data=b'{"text": "hi"}'), 415, "content-type"),
    ("ragged features", dict(data=json.dumps({"text": "hi", "audio": [[[1, 2], [3]]]}).encode(),
                             content_type="application/json"), 422, "audio[0]"),
    ("features per text", dict(data=json.dumps({"texts": ["a", "b"], "audio": [None]}).encode(),
                               content_type="application/json"), 422, "audio"),
]


@pytest.mark.parametrize("name,kwargs,status,field", ERRORS, ids=[e[0] for e in ERRORS])
def test_text_errors_then_still_serving(server, name, kwargs, status, field):
    kwargs.setdefault("content_type", None)
    _error(request(server.url + "/v1/predict", **kwargs), status, field)
    assert get(server.url + "/healthz")[2] == {"status": "ok"} and server.proc.poll() is None


def test_features_the_model_does_not_read_are_refused(server):
    message = _error(post_json(server.url + "/v1/predict",
                               {"text": "hi", "vision": [[[0.5] * 3]]}), 422, "text")
    assert "vision" in message
    assert get(server.url + "/healthz")[2] == {"status": "ok"}


def test_clip_errors_then_still_serving(server, workdir):
    url = server.url + "/v1/predict/media"
    assert "not a readable" in _error(post_clip(url, "bad.mp4", b"\x00garbage" * 500), 422,
                                      "clip").lower()
    _error(post_clip(url, "empty.mp4", b""), 422, "clip")
    status, body = declared_too_large(server.url, "/v1/predict/media", 3_100_000,
                                      "multipart/form-data; boundary=x")
    _error((status, {}, body), 413, "body")
    _error(request(url, b"x", content_type="application/json"), 415, "content-type")
    _error(request(url, b"--x--\r\n", content_type="multipart/form-data; boundary=x"), 422, "clip")
    from media_fixtures import write_media

    long = write_media(workdir / "long.m4a", audio=__import__("numpy").zeros(16000 * 8))
    assert "over the limit" in _error(post_clip(url, "long.m4a", long.read_bytes()), 413, "clip")
    assert get(server.url + "/healthz")[2] == {"status": "ok"} and server.proc.poll() is None


def test_clip_reading(clip_server, speech_clip):
    status, _, body = post_clip(clip_server.url + "/v1/predict/media", "talk.mp4",
                                speech_clip.read_bytes())
    assert status == 200, body
    assert body["segments"] and "movie" in body["clip"]["text"].lower()
    assert all(math.isfinite(s["score"]) for s in body["segments"])


def test_a_clients_transcript_is_text_never_a_server_path(clip_server, speech_clip, text_run):
    """The CLI's --transcript may name a file; a client's never does: a path on the server's disk
    (here the run's own config) comes back as the literal words, its file unread."""
    secret = text_run / "config.yaml"
    for given in (str(secret), str(secret.with_suffix(".srt"))):
        status, _, body = post_clip(clip_server.url + "/v1/predict/media", "talk.mp4",
                                    speech_clip.read_bytes(), transcript=given)
        assert status == 200, body
        assert body["clip"]["text"] == given
        assert "housekeeping" not in json.dumps(body)


def test_concurrent_requests_are_micro_batched(server):
    texts = [f"review number {i} was {'great' if i % 2 else 'awful'}" for i in range(32)]
    with ThreadPoolExecutor(32) as pool:
        replies = list(pool.map(lambda t: post_json(server.url + "/v1/predict", {"text": t}),
                                texts))
    assert [r[0] for r in replies] == [200] * 32
    assert [r[2]["results"][0]["text"] for r in replies] == texts  # each got its own reading
    shared = [int(r[1]["x-psamf-batch-requests"]) for r in replies]
    assert max(shared) > 1, shared
    stats = get(server.url + "/v1/model")[2]["batching"]
    assert stats["max_requests_per_call"] > 1 and stats["model_calls"] < stats["requests"]


def test_sigterm_shuts_down_cleanly(run, tmp_path):
    srv = Server(run, tmp_path / "server.log")
    start = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(timeout=10) == 0
    assert time.monotonic() - start < 5
    assert "Shutting down" in (tmp_path / "server.log").read_text()


# --- the page -------------------------------------------------------------------------------


def test_page_loads_nothing_from_the_network():
    for page in STATIC.glob("*.html"):
        refs = re.findall(r'(?:src|href)="([^"]+)"', page.read_text())
        assert refs and all(r.startswith("/") for r in refs), (page.name, refs)
    for asset in STATIC.glob("*.[jc]s*"):
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", asset.read_text()), asset


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    driver_path = shutil.which("chromedriver")
    chrome = shutil.which("chromium")
    if not (driver_path and chrome):
        pytest.skip("chromium + chromium-driver are not installed (scripts/setup.sh installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = chrome
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1000,1400", "--disable-gpu"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver_path),
                              options=options)
    yield driver
    driver.quit()


def _wait_for_reading(browser, timeout: float):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def done(d):
        error = d.find_element(By.ID, "error")
        assert not error.is_displayed(), error.text
        return d.find_element(By.ID, "result").is_displayed() and \
            not d.find_element(By.ID, "text-button").get_attribute("disabled")

    WebDriverWait(browser, timeout).until(done)


def test_page_reads_a_text(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(server.url + "/")
    box = browser.find_element(By.ID, "text-input")
    assert browser.find_element(By.CSS_SELECTOR, "label[for=text-input]").text
    box.send_keys("an absolutely wonderful, moving film")
    box.send_keys(Keys.TAB)  # keyboard: the button follows the text box
    assert browser.switch_to.active_element.get_attribute("id") == "text-button"
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    _wait_for_reading(browser, 30)
    shown = float(browser.find_element(By.ID, "score").text.replace("−", "-"))
    api = post_json(server.url + "/v1/predict", {"text": "an absolutely wonderful, moving film"})
    assert shown == pytest.approx(api[2]["results"][0]["score"], abs=0.006)
    assert browser.find_element(By.ID, "class-label").text.startswith(
        api[2]["results"][0]["label"])
    assert browser.find_element(By.ID, "result").get_attribute("aria-live") == "polite"
    assert browser.find_elements(By.CSS_SELECTOR, "#scale svg circle")
    assert browser.save_screenshot(str(tmp_path / "page-text.png"))


def test_page_reads_a_clip(clip_server, browser, speech_clip, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(clip_server.url + "/")
    browser.find_element(By.ID, "clip-input").send_keys(str(speech_clip))
    browser.find_element(By.ID, "clip-button").click()
    _wait_for_reading(browser, 90)
    assert "movie" in browser.find_element(By.ID, "transcript").text.lower()
    assert browser.find_element(By.ID, "timeline-box").is_displayed()
    bars = browser.find_elements(By.CSS_SELECTOR, "#timeline svg rect")
    rows = browser.find_elements(By.CSS_SELECTOR, "#segments tbody tr")
    assert bars and len(bars) == len(rows)
    assert browser.save_screenshot(str(tmp_path / "page-clip.png"))


def test_page_shows_a_failed_clip_and_recovers(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00not a video" * 100)
    browser.get(server.url + "/")
    browser.find_element(By.ID, "clip-input").send_keys(str(bad))
    browser.find_element(By.ID, "clip-button").click()
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "error").is_displayed())
    assert browser.find_element(By.ID, "error").text.startswith("clip:")
    assert get(server.url + "/healthz")[2] == {"status": "ok"}


def test_api_reference_renders_offline(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server.url + "/docs")
    WebDriverWait(browser, 15).until(lambda d: "POST /v1/predict" in d.find_element(
        By.ID, "api").text)
    text = browser.find_element(By.ID, "api").text
    assert "POST /v1/predict/media" in text and "GET /v1/model" in text and "texts" in text
