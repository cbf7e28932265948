"""Audio-like inputs for the Keras corpus: synthetic sounds (tones, chords, noise, babble) through the features
the models were trained on. Made on the fly with numpy, seeded; nothing is downloaded or committed.

* inaSpeechSegmenter: 68-frame patches of a log-mel spectrogram (16 kHz, 25 ms / 10 ms frames), each patch
  standardised to zero mean and unit variance, as ``inaSpeechSegmenter.segmenter._get_patches`` does.
* basic-pitch: raw 22.05 kHz mono windows of 43 844 samples, the input of its ``serving_default`` signature.
  Near-silent windows are included: real audio has them, and they stress the model's own normalisation.
"""

from __future__ import annotations

import numpy as np

SR_SEGMENTER = 16000
SR_PITCH = 22050


def _sound(kind: str, seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    if kind == "noise":
        x = rng.normal(0, 1, t.size) * rng.uniform(0.05, 0.5)
    elif kind == "chord":  # sustained harmonic notes: music-like
        x = sum(np.sin(2 * np.pi * f * k * t) / k for f in rng.uniform(110, 880, 3) for k in range(1, 6))
    elif kind == "babble":  # a voiced, pitch-gliding source switched on and off at syllable rate: speech-like
        f0 = rng.uniform(90, 250) * (1 + 0.2 * np.sin(2 * np.pi * rng.uniform(2, 5) * t))
        phase = 2 * np.pi * np.cumsum(f0) / sr
        x = sum(np.sin(k * phase) * np.exp(-k / 6) for k in range(1, 15))
        x = x * (np.sin(2 * np.pi * rng.uniform(3, 6) * t) > -0.2)
    else:  # silence with a faint hiss
        x = rng.normal(0, 1e-3, t.size)
    return (x / (np.abs(x).max() + 1e-9) * rng.uniform(0.1, 0.9)).astype(np.float32)


def _log_mel(signal: np.ndarray, sr: int, n_mels: int = 24) -> np.ndarray:
    win, hop, nfft = int(0.025 * sr), int(0.010 * sr), 512
    frames = np.lib.stride_tricks.sliding_window_view(signal, win)[::hop] * np.hamming(win)
    power = np.abs(np.fft.rfft(frames, nfft)) ** 2
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    edges = 700 * (10 ** (np.linspace(mel(0), mel(sr / 2), n_mels + 2) / 2595) - 1)
    bins = np.fft.rfftfreq(nfft, 1 / sr)
    bank = np.clip(np.minimum((bins - edges[:-2, None]) / (edges[1:-1, None] - edges[:-2, None]),
                              (edges[2:, None] - bins) / (edges[2:, None] - edges[1:-1, None])), 0, None)
    return np.log(power @ bank.T + 1e-10)


def segmenter_patches(count: int, n_mels: int, seed: int = 0) -> np.ndarray:
    """``(count, 68, n_mels)`` standardised log-mel patches from a mix of sound kinds."""
    rng = np.random.default_rng(seed)
    patches = []
    kinds = ("noise", "chord", "babble", "silence")
    while len(patches) < count:
        spec = _log_mel(_sound(kinds[len(patches) % 4], 1.2, SR_SEGMENTER, rng), SR_SEGMENTER)[:, :n_mels]
        start = int(rng.integers(0, spec.shape[0] - 68))
        patch = spec[start:start + 68]
        patches.append((patch - patch.mean()) / (patch.std() + 1e-9))
    return np.stack(patches).astype(np.float32)


def pitch_windows(count: int, seed: int = 0) -> np.ndarray:
    """``(count, 43844, 1)`` audio windows (chords, babble, noise, near-silence) for basic-pitch."""
    rng = np.random.default_rng(seed)
    kinds = ("chord", "babble", "noise", "silence")
    return np.stack([_sound(kinds[i % 4], 43844 / SR_PITCH, SR_PITCH, rng)[:43844, None] for i in range(count)])
