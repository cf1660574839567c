"""Visual frame features from MediaPipe FaceMesh: one row per video frame.

``facemesh`` (the only extractor; mediapipe 0.10.21 ships the model inside its wheel, Apache-2.0)
runs ``mediapipe.solutions.face_mesh.FaceMesh`` (one face) on frames sampled at ``fps`` (default
5) and gives, per frame:

- ``geometry`` — x, y of the 24 landmarks in ``LANDMARKS`` (brows, eye corners and lids, nose,
  mouth corners and lips, chin, cheeks), in pixels, minus the midpoint between the eye centres and
  divided by the inter-ocular distance: the same face anywhere in the picture and at any size
  gives the same numbers, so what is left is expression and pose.
- ``yaw``, ``pitch``, ``roll`` in degrees: the rotation that best fits six of FaceMesh's 3D
  landmarks to an approximate average head (``_HEAD_MM``; a rigid least-squares fit through
  scipy). About 0, 0, 0 for a face looking into the camera (a frontal photograph reads a pitch of
  about 10 to 15: the average head is not the subject's); rough, but they track turns and nods
  and do not change when the face moves across the picture.
- ``mouth_open`` — inner-lip gap over mouth width (about 0 closed, 0.5+ wide open).
- ``left_eye_open`` / ``right_eye_open`` — eye aspect ratios (lid gaps over eye width; about 0.25
  to 0.35 open, under 0.1 closed). Left and right are the subject's.

A frame where no face is found gives a row of zeros and ``False`` in the presence mask.

``tracking`` (default False) chooses FaceMesh's video mode, which finds the face once and then
follows it from frame to frame. It is made for 30 fps: at 5 fps a face that moves 28 px between
frames (of 640) pulled the tracked mesh out of shape (roll drifting from 1 to 22 degrees over 8
frames, landmarks off by 0.4 inter-ocular distances), while detecting afresh in every frame kept
them within 0.03. Detection costs about 4 ms a frame of 640x480 on one core against 3 ms for
tracking: under 0.02x real time at 5 fps either way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np

from psamf.errors import InputError
from psamf.media._optional import build_named, require

# FaceMesh landmark indices (canonical 468-point mesh). Subject's right eye is on image left.
_R_EYE = {"outer": 33, "inner": 133, "up1": 160, "up2": 158, "low1": 144, "low2": 153}
_L_EYE = {"outer": 263, "inner": 362, "up1": 387, "up2": 385, "low1": 373, "low2": 380}
_MOUTH = {"right": 61, "left": 291, "inner_up": 13, "inner_low": 14, "outer_up": 0, "outer_low": 17}
_NOSE_TIP, _CHIN = 1, 152
LANDMARKS: tuple[int, ...] = (
    70, 105, 107, 336, 334, 300,  # brows (right outer→inner, left inner→outer)
    *_R_EYE.values(), *_L_EYE.values(),
    _NOSE_TIP, _MOUTH["right"], _MOUTH["left"], _MOUTH["outer_up"], _MOUTH["outer_low"],
    _MOUTH["inner_up"], _MOUTH["inner_low"], _CHIN, 234, 454,  # 234/454: cheeks at eye level
)  # fmt: skip

# An approximate average adult head in millimetres, in FaceMesh's axes for a face looking into
# the camera (x to the image's right, y down, z away from the camera), for the landmarks the pose
# fit uses; the nose tip is the origin, so the rest of the face lies behind it (z > 0).
_HEAD_MM = {
    _NOSE_TIP: (0.0, 0.0, 0.0),
    _CHIN: (0.0, 65.0, 15.0),
    _R_EYE["outer"]: (-44.0, -33.0, 27.0),
    _L_EYE["outer"]: (44.0, -33.0, 27.0),
    _MOUTH["right"]: (-27.0, 28.0, 22.0),
    _MOUTH["left"]: (27.0, 28.0, 22.0),
}


@dataclass
class FaceMeshFeatures:
    """FaceMesh frame features (see the module docstring); every field is a setting."""

    fps: float = 5.0  # the frame rate callers sample video at; recorded in the profile
    refine_landmarks: bool = False  # 478 points with iris refinement; slower, same features
    tracking: bool = False  # FaceMesh video mode: faster, but drifts at low fps (see above)
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5

    name = "facemesh"

    def __post_init__(self) -> None:
        if not self.fps > 0:
            raise InputError(f"facemesh setting fps={self.fps} must be a positive frame rate")
        for field in ("min_detection_confidence", "min_tracking_confidence"):
            value = getattr(self, field)
            if not 0.0 <= value <= 1.0:
                raise InputError(f"facemesh setting {field}={value} must lie in [0, 1]")
        self._mesh: Any = None

    @property
    def feature_names(self) -> tuple[str, ...]:
        geometry = (f"lm{i}_{axis}" for i in LANDMARKS for axis in "xy")
        return (*geometry, "yaw", "pitch", "roll", "mouth_open", "left_eye_open", "right_eye_open")

    @property
    def dim(self) -> int:
        return 2 * len(LANDMARKS) + 6

    def describe(self) -> dict[str, Any]:
        mediapipe = require("mediapipe", purpose="facial features")
        return {
            "name": self.name,
            "version": mediapipe.__version__,
            "settings": {f.name: getattr(self, f.name) for f in dataclasses.fields(self)},
            "features": list(self.feature_names),
        }

    def _graph(self) -> Any:
        if self._mesh is None:
            mediapipe = require("mediapipe", purpose="facial features")
            self._mesh = mediapipe.solutions.face_mesh.FaceMesh(
                static_image_mode=not self.tracking,
                max_num_faces=1,
                refine_landmarks=self.refine_landmarks,
                min_detection_confidence=self.min_detection_confidence,
                min_tracking_confidence=self.min_tracking_confidence,
            )
        return self._mesh

    def extract(self, frames: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Features (T, dim) float32 and presence (T,) bool for RGB uint8 frames (H, W, 3).

        With ``tracking`` the frames are taken as consecutive frames of one video (the tracker
        carries over between them and between calls); ``close()`` starts afresh.
        """
        mesh = self._graph()
        rows: list[np.ndarray] = []
        present: list[bool] = []
        for index, frame in enumerate(frames):
            frame = _check_frame(frame, index)
            result = mesh.process(frame)
            faces = result.multi_face_landmarks
            if not faces:
                rows.append(np.zeros(self.dim, dtype=np.float32))
                present.append(False)
                continue
            height, width = frame.shape[:2]
            points = np.array(
                [(p.x * width, p.y * height, p.z * width) for p in faces[0].landmark]
            )  # (468|478, 3) in pixels; FaceMesh scales z like x
            row = _features(points)
            rows.append(row)
            present.append(bool(np.isfinite(row).all()))
            if not present[-1]:  # a degenerate mesh (zero-size eyes): treat as no face
                rows[-1] = np.zeros(self.dim, dtype=np.float32)
        features = np.stack(rows) if rows else np.zeros((0, self.dim), dtype=np.float32)
        return features.astype(np.float32), np.array(present, dtype=bool)

    def close(self) -> None:
        """Free the MediaPipe graph (native threads and buffers)."""
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None

    def __enter__(self) -> FaceMeshFeatures:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _check_frame(frame: np.ndarray, index: int) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise InputError(
            f"frame {index} has shape {frame.shape} and dtype {frame.dtype}; facial features "
            "need RGB uint8 frames of shape (H, W, 3)"
        )
    return np.ascontiguousarray(frame)


def _eye_open(xy: np.ndarray, eye: dict[str, int]) -> float:
    gap = np.linalg.norm(xy[eye["up1"]] - xy[eye["low1"]]) + np.linalg.norm(
        xy[eye["up2"]] - xy[eye["low2"]]
    )
    return float(gap / (2.0 * np.linalg.norm(xy[eye["outer"]] - xy[eye["inner"]])))


def _head_pose(points: np.ndarray) -> tuple[float, float, float]:
    """Yaw, pitch, roll in degrees: the rotation that best maps the average head onto the mesh.

    FaceMesh's 3D landmarks are (nearly) orthographic, so a rigid least-squares fit (Kabsch) of
    centred points needs no camera model and does not change when the face moves in the picture.
    """
    transform = require("scipy.spatial.transform", purpose="head pose (scipy ships with librosa)")
    model = np.array(list(_HEAD_MM.values()))  # (6, 3)
    observed = points[list(_HEAD_MM)]  # (6, 3)
    rotation, _ = transform.Rotation.align_vectors(
        observed - observed.mean(axis=0), model - model.mean(axis=0)
    )
    yaw, pitch, roll = rotation.as_euler("yxz", degrees=True)  # about image y, then x, then z
    return float(yaw), float(pitch), float(roll)


def _features(points: np.ndarray) -> np.ndarray:
    """One frame's feature row from FaceMesh landmarks in pixels, points (N, 3)."""
    xy = points[:, :2]
    right_eye = (xy[_R_EYE["outer"]] + xy[_R_EYE["inner"]]) / 2
    left_eye = (xy[_L_EYE["outer"]] + xy[_L_EYE["inner"]]) / 2
    inter_ocular = float(np.linalg.norm(left_eye - right_eye))
    if inter_ocular < 1e-6:
        return np.full(2 * len(LANDMARKS) + 6, np.nan)
    geometry = (xy[list(LANDMARKS)] - (left_eye + right_eye) / 2) / inter_ocular  # (K, 2)
    mouth_width = np.linalg.norm(xy[_MOUTH["left"]] - xy[_MOUTH["right"]])
    mouth_open = np.linalg.norm(xy[_MOUTH["inner_up"]] - xy[_MOUTH["inner_low"]]) / mouth_width
    return np.concatenate(
        [
            geometry.reshape(-1),
            _head_pose(points),
            [mouth_open, _eye_open(xy, _L_EYE), _eye_open(xy, _R_EYE)],
        ]
    )


FACE_EXTRACTORS: dict[str, Callable[..., FaceMeshFeatures]] = {"facemesh": FaceMeshFeatures}


def make_face(name: str = "facemesh", **settings: Any) -> FaceMeshFeatures:
    """Build the face extractor called ``name`` with ``settings`` (its dataclass fields)."""
    return build_named("face", FACE_EXTRACTORS, name, settings)
