"""Acoustic and facial frame features on real inputs made at test time.

Speech comes from espeak-ng, the tone and silence from numpy, the face from scikit-image's
astronaut photograph pasted on a canvas; the extractors run their real libraries.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

pytest.importorskip(
    "librosa", reason="the media extra is not installed: pip install 'psamf[media]'"
)
pytest.importorskip(
    "mediapipe", reason="the media extra is not installed: pip install 'psamf[media]'"
)

from psamf.errors import InputError  # noqa: E402
from psamf.media.acoustic import make_acoustic  # noqa: E402
from psamf.media.face import make_face  # noqa: E402

SR = 16000


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, int]:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (scripts/setup.sh installs it from Debian)")
    import soundfile

    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    text = "The weather was lovely today, and everyone seemed happy about it."
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
    audio, sr = soundfile.read(path, dtype="float32")
    return audio, sr


def _tone(hz: float, seconds: float = 2.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.fixture(scope="module")
def librosa_features() -> object:
    return make_acoustic("librosa")


def _column(extractor: object, name: str) -> int:
    return extractor.feature_names.index(name)  # type: ignore[attr-defined]


def test_librosa_shapes_and_frame_count(librosa_features, speech) -> None:
    audio, sr = speech
    out = librosa_features.extract(audio, sr)
    duration = len(audio) / sr
    assert out.dtype == np.float32 and out.shape[1] == librosa_features.dim
    assert abs(out.shape[0] - duration / librosa_features.hop_s) <= 1
    assert np.isfinite(out).all()


def test_librosa_speech_is_voiced_and_louder_than_silence(librosa_features, speech) -> None:
    audio, sr = speech
    voiced, energy = _column(librosa_features, "voiced"), _column(librosa_features, "log_rms_db")
    f0 = _column(librosa_features, "f0_hz")
    talk = librosa_features.extract(audio, sr)
    quiet = librosa_features.extract(np.zeros(2 * SR, dtype=np.float32), SR)
    assert np.isfinite(quiet).all()
    assert talk[:, voiced].mean() > 0.3  # a sentence is mostly voiced ...
    assert quiet[:, voiced].sum() == 0 and (quiet[:, f0] == 0).all()  # ... silence not at all
    assert np.median(talk[:, energy]) > quiet[:, energy].max() + 30  # dB
    unvoiced = talk[:, voiced] == 0
    assert (talk[unvoiced, f0] == 0).all()  # F0 is 0 where nothing is voiced
    assert 60 <= np.median(talk[~unvoiced, f0]) <= 300  # a speaking voice's pitch


def test_librosa_tone_pitch_and_noise_unvoiced(librosa_features) -> None:
    tone = librosa_features.extract(_tone(220.0), SR)
    f0, voiced = _column(librosa_features, "f0_hz"), _column(librosa_features, "voiced")
    assert tone[:, voiced].mean() > 0.9
    assert np.median(tone[:, f0]) == pytest.approx(220.0, abs=3.0)
    noise = np.random.default_rng(0).normal(0, 0.1, 2 * SR).astype(np.float32)
    assert librosa_features.extract(noise, SR)[:, voiced].mean() < 0.1


def test_librosa_resamples_other_rates(librosa_features) -> None:
    at_16k = librosa_features.extract(_tone(220.0), SR)
    t = np.arange(2 * 44100) / 44100
    at_44k = librosa_features.extract((0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 44100)
    assert abs(len(at_44k) - len(at_16k)) <= 1
    f0 = _column(librosa_features, "f0_hz")
    assert np.median(at_44k[:, f0]) == pytest.approx(220.0, abs=3.0)


def test_librosa_describe_holds_every_setting() -> None:
    extractor = make_acoustic("librosa", hop_s=0.02, n_mfcc=20)
    described = extractor.describe()
    assert described["name"] == "librosa" and described["version"]
    assert described["settings"]["hop_s"] == 0.02 and described["settings"]["n_mfcc"] == 20
    assert len(described["features"]) == extractor.dim == 20 + 9
    out = extractor.extract(_tone(220.0, seconds=1.0), SR)
    assert out.shape == (pytest.approx(50, abs=1), 29)


@pytest.mark.parametrize(
    ("name", "settings", "fragment"),
    [
        ("praat", {}, "unknown acoustic extractor"),
        ("librosa", {"hop": 0.01}, "no setting"),
        ("librosa", {"fmin": 600.0}, "fmin"),
        ("librosa", {"hop_s": 0.05}, "hop_s"),
    ],
)
def test_acoustic_refuses_bad_names_and_settings(name, settings, fragment) -> None:
    with pytest.raises(InputError, match=fragment):
        make_acoustic(name, **settings)


@pytest.mark.parametrize(
    ("audio", "fragment"),
    [
        (np.zeros((2, 100), dtype=np.float32), "mono"),
        (np.zeros(0, dtype=np.float32), "empty"),
        (np.array([0.0, np.nan] * 800, dtype=np.float32), "NaN"),
    ],
)
def test_acoustic_refuses_bad_audio(librosa_features, audio, fragment) -> None:
    with pytest.raises(InputError, match=fragment):
        librosa_features.extract(audio, SR)


def test_egemaps_low_level_descriptors(speech) -> None:
    pytest.importorskip("opensmile", reason="the egemaps extra is not installed")
    audio, sr = speech
    extractor = make_acoustic("egemaps")
    out = extractor.extract(audio, sr)
    assert out.shape[1] == extractor.dim == 25
    assert abs(out.shape[0] - len(audio) / sr / extractor.hop_s) <= 10  # openSMILE's edge frames
    assert np.isfinite(out).all() and out.std(axis=0).max() > 0
    described = extractor.describe()
    assert (
        described["settings"]["feature_set"] == "eGeMAPSv02" and "research" in described["licence"]
    )


# --- face -------------------------------------------------------------------------------------

CANVAS = (480, 640)


@pytest.fixture(scope="module")
def face_photo() -> np.ndarray:
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image is not installed")
    return skimage_data.astronaut()[0:320, 80:400]  # (320, 320, 3): head and shoulders


def _paste(photo: np.ndarray, x: int, y: int) -> np.ndarray:
    canvas = np.full((*CANVAS, 3), 40, dtype=np.uint8)
    canvas[y : y + photo.shape[0], x : x + photo.shape[1]] = photo
    return canvas


def _columns(extractor) -> dict[str, slice | int]:
    names = extractor.feature_names
    return {
        "geometry": slice(0, names.index("yaw")),
        **{n: names.index(n) for n in ("yaw", "pitch", "roll", "mouth_open")},
        **{n: names.index(n) for n in ("left_eye_open", "right_eye_open")},
    }


def test_face_moving_still_and_absent(face_photo) -> None:
    offsets = [(20 + 25 * i, 10 + 12 * i) for i in range(8)]  # 175 px right, 84 px down
    moving = [_paste(face_photo, x, y) for x, y in offsets]
    still = [_paste(face_photo, 100, 60)] * 4
    rng = np.random.default_rng(0)
    absent = [np.zeros((*CANVAS, 3), np.uint8), rng.integers(0, 256, (*CANVAS, 3), np.uint8)]
    with make_face("facemesh") as extractor:
        cols = _columns(extractor)
        moved, moved_present = extractor.extract(moving)
    with make_face("facemesh") as extractor:
        kept, kept_present = extractor.extract(still)
    with make_face("facemesh") as extractor:
        none, none_present = extractor.extract(absent)

    assert moved.shape == (8, extractor.dim) and moved.dtype == np.float32
    assert moved_present.all() and kept_present.all()
    assert not none_present.any() and (none == 0).all()
    assert np.isfinite(moved).all()

    # Normalisation: the face moved by up to 175 px (> 2 inter-ocular distances), yet its
    # centred, scaled landmarks barely change, and match the still face's.
    geometry = moved[:, cols["geometry"]]
    assert geometry.std(axis=0).max() < 0.05
    assert np.abs(geometry.mean(axis=0) - kept[:, cols["geometry"]].mean(axis=0)).max() < 0.05
    assert kept[:, cols["geometry"]].std(axis=0).max() < 0.02
    # The eyes' midpoint is the origin and they lie one unit apart.
    names = extractor.feature_names
    right_inner_x, left_inner_x = names.index("lm133_x"), names.index("lm362_x")
    assert (moved[:, right_inner_x] < 0).all() and (moved[:, left_inner_x] > 0).all()

    pose = moved[:, [cols["yaw"], cols["pitch"], cols["roll"]]]
    assert np.abs(pose).max() < 45  # a roughly frontal photograph
    assert pose.std(axis=0).max() < 5  # and moving it does not turn the head
    assert (moved[:, cols["mouth_open"]] >= 0.0).all() and (
        moved[:, cols["mouth_open"]] < 0.6
    ).all()
    for eye in ("left_eye_open", "right_eye_open"):
        assert (moved[:, cols[eye]] > 0.1).all() and (moved[:, cols[eye]] < 0.6).all()


def test_face_mirror_flips_yaw_and_roll(face_photo) -> None:
    with make_face("facemesh") as extractor:
        cols = _columns(extractor)
        original, found = extractor.extract([_paste(face_photo, 160, 80)])
    with make_face("facemesh") as extractor:
        mirrored, found_too = extractor.extract([_paste(face_photo[:, ::-1], 160, 80)])
    assert found.all() and found_too.all()
    # A mirror image turns and tilts the head the other way and keeps the nod.
    assert original[0, cols["pitch"]] == pytest.approx(mirrored[0, cols["pitch"]], abs=5)
    assert original[0, cols["roll"]] * mirrored[0, cols["roll"]] < 0


def test_face_describe_and_settings() -> None:
    with make_face("facemesh", fps=10.0, refine_landmarks=True) as extractor:
        described = extractor.describe()
        assert extractor.fps == 10.0
    assert described["settings"] == {
        "fps": 10.0,
        "refine_landmarks": True,
        "tracking": False,
        "min_detection_confidence": 0.5,
        "min_tracking_confidence": 0.5,
    }
    assert described["version"] and len(described["features"]) == extractor.dim
    with pytest.raises(InputError, match="unknown face extractor"):
        make_face("openface")
    with pytest.raises(InputError, match="fps"):
        make_face(fps=0)
    with pytest.raises(InputError, match="no setting"):
        make_face(max_faces=2)


def test_face_refuses_non_rgb_frames() -> None:
    with make_face() as extractor, pytest.raises(InputError, match="frame 0"):
        extractor.extract([np.zeros((48, 64), dtype=np.uint8)])


def test_face_tracking_mode_follows_a_still_face(face_photo) -> None:
    with make_face(tracking=True) as extractor:
        features, present = extractor.extract([_paste(face_photo, 100, 60)] * 3)
        assert extractor.describe()["settings"]["tracking"] is True
    assert present.all()
    geometry = features[:, _columns(extractor)["geometry"]]
    assert geometry.std(axis=0).max() < 0.05
