"""A small synthetic dataset shaped like CMU-MOSI, built in memory from a seed.

It exists so that every part of psamf (trainer, model, CLI, tests) can run end to end without the
real corpora, and so that "did the model learn anything" has an answer: the sentiment is a known
function of the words (polarity adjectives scaled by intensifiers, flipped and damped by negation,
two clauses joined by "but" weighted towards the second) plus small noise, and the audio and vision
frames carry a weaker copy of the label in a few dimensions. Same seed, same data; nothing on disk.
"""

from __future__ import annotations

import numpy as np

from psamf.data.dataset import LABEL_MAX, LABEL_MIN, ModalityFeatures, MultimodalDataset, SplitData
from psamf.errors import InputError

_SUBJECTS = (
    "the movie", "the acting", "the plot", "the soundtrack", "this film", "the ending",
    "the dialogue", "the cast", "the story", "the camera work", "the script", "the pacing",
)
_VERBS = ("was", "is", "felt", "seemed")
_ADJECTIVES: dict[str, float] = {
    "good": 1.0, "great": 2.0, "wonderful": 2.5, "amazing": 2.5, "nice": 1.0, "enjoyable": 1.5,
    "decent": 0.5, "brilliant": 2.5, "fun": 1.5, "solid": 1.0,
    "bad": -1.0, "terrible": -2.5, "awful": -2.5, "boring": -1.5, "dull": -1.0, "weak": -1.0,
    "horrible": -2.5, "mediocre": -0.5, "disappointing": -1.5, "annoying": -1.5,
}
_INTENSIFIERS: dict[str, float] = {
    "": 1.0, "really ": 1.3, "very ": 1.3, "extremely ": 1.5, "somewhat ": 0.6, "a bit ": 0.5,
}
_NEGATION_FACTOR = -0.6  # "not great" is mildly negative, not the opposite of great
_NEUTRAL = (
    "i saw it on a friday night", "it is about a family in a small town",
    "the movie runs for about two hours", "i went with my brother", "it came out last year",
    "there are a lot of characters in it",
)
_FILLERS = ("", "", "", "honestly ", "i think ", "overall ", "to be fair ")


def _clause(rng: np.random.Generator) -> tuple[str, float]:
    """One opinion clause and its sentiment score."""
    subject = _SUBJECTS[rng.integers(len(_SUBJECTS))]
    verb = _VERBS[rng.integers(len(_VERBS))]
    adjective = list(_ADJECTIVES)[rng.integers(len(_ADJECTIVES))]
    negated = rng.random() < 0.2
    # "not somewhat good" is not English: negations take only "", "really", "very".
    choices = list(_INTENSIFIERS)[: 3 if negated else len(_INTENSIFIERS)]
    intensifier = choices[rng.integers(len(choices))]
    score = _ADJECTIVES[adjective] * _INTENSIFIERS[intensifier]
    if negated:
        score *= _NEGATION_FACTOR
    words = f"{subject} {verb} {'not ' if negated else ''}{intensifier}{adjective}"
    return words, score


def _utterance(rng: np.random.Generator) -> tuple[str, float]:
    """A transcript and its noiseless sentiment."""
    draw = rng.random()
    if draw < 0.12:
        return _NEUTRAL[rng.integers(len(_NEUTRAL))], 0.0
    filler = _FILLERS[rng.integers(len(_FILLERS))]
    first, s1 = _clause(rng)
    if draw < 0.85:
        return filler + first, s1
    second, s2 = _clause(rng)
    return f"{filler}{first} but {second}", 0.3 * s1 + 0.7 * s2


def _frames(
    rng: np.random.Generator,
    labels: np.ndarray,
    lengths: np.ndarray,
    *,
    width: int,
    max_frames: int,
    signal_dims: int,
    signal: float,
) -> np.ndarray:
    """Noise frames (N, T, d), zero beyond each length, with ``signal * label`` in a few dims."""
    n = len(labels)
    feats = rng.normal(0.0, 1.0, size=(n, max_frames, width)).astype(np.float32)
    feats[:, :, :signal_dims] += (signal * labels)[:, None, None].astype(np.float32)
    mask = np.arange(max_frames)[None, :] < lengths[:, None]  # (N, T)
    return feats * mask[:, :, None]


def _split(
    rng: np.random.Generator,
    prefix: str,
    n: int,
    *,
    audio_dim: int,
    vision_dim: int,
    max_frames: int,
    missing_vision: float,
    noise: float,
) -> SplitData:
    texts, scores = zip(*(_utterance(rng) for _ in range(n)), strict=True)
    labels = np.clip(
        np.asarray(scores) + rng.normal(0.0, noise, size=n), LABEL_MIN, LABEL_MAX
    ).astype(np.float32)
    audio_len = rng.integers(max(1, max_frames // 4), max_frames + 1, size=n).astype(np.int64)
    vision_len = rng.integers(max(1, max_frames // 5), max_frames + 1, size=n).astype(np.int64)
    vision_len[rng.random(n) < missing_vision] = 0
    audio = _frames(rng, labels, audio_len, width=audio_dim, max_frames=max_frames,
                    signal_dims=2, signal=0.12)
    vision = _frames(rng, labels, vision_len, width=vision_dim, max_frames=max_frames,
                     signal_dims=1, signal=0.1)
    ids = [f"{prefix}{i // 6:03d}$_${i % 6 + 1}" for i in range(n)]  # ~6 clips per "video"
    return SplitData(
        ids=ids,
        texts=list(texts),
        labels=labels,
        modalities={
            "audio": ModalityFeatures(audio, audio_len),
            "vision": ModalityFeatures(vision, vision_len),
        },
    )


def make_sample_dataset(
    seed: int = 0,
    *,
    n_train: int = 400,
    n_valid: int = 100,
    n_test: int = 200,
    audio_dim: int = 12,
    vision_dim: int = 10,
    max_frames: int = 20,
    missing_vision: float = 0.1,
    noise: float = 0.2,
) -> MultimodalDataset:
    """The synthetic MOSI-shaped dataset; ``missing_vision`` is the share with no vision frames."""
    if min(n_train, n_valid, n_test) < 1 or min(audio_dim, vision_dim, max_frames) < 1:
        raise InputError("sample sizes, widths and max_frames must all be at least 1")
    if not 0.0 <= missing_vision <= 1.0:
        raise InputError(f"missing_vision must be in [0, 1], got {missing_vision}")
    rng = np.random.default_rng(seed)
    kwargs = {"audio_dim": audio_dim, "vision_dim": vision_dim, "max_frames": max_frames,
              "missing_vision": missing_vision, "noise": noise}
    splits = {
        name: _split(rng, f"s{name[:2]}", n, **kwargs)
        for name, n in (("train", n_train), ("valid", n_valid), ("test", n_test))
    }
    return MultimodalDataset(
        name="sample (synthetic)", splits=splits, source=f"make_sample_dataset(seed={seed})",
        synthetic=True,
    )
