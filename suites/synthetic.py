"""Labelled data made offline, by construction, for the non-classifier suites.

No labelled speech or scanned text ships with any package here, so the suites make their own:
speech-like audio whose voiced spans are known (a glottal pulse train through vowel formants,
syllable envelopes), and text lines rendered at known positions. Deterministic by seed, seconds
to make. They are not a benchmark of the models; they are inputs whose right answer is known, so
an optimization that breaks the model shows up as a lower score.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np

SR = 16000  # Silero VAD's 16 kHz mode: 512-sample frames plus 64 samples of context
FRAME, CONTEXT = 512, 64
VOWELS = ((730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480))  # F1-F3 of a, i, u, e


def _resonate(signal: np.ndarray, freq: float, bandwidth: float) -> np.ndarray:
    from scipy.signal import lfilter

    r, theta = np.exp(-np.pi * bandwidth / SR), 2 * np.pi * freq / SR
    return np.asarray(lfilter([1 - r], [1, -2 * r * np.cos(theta), r * r], signal))


def _voiced(samples: int, rng: np.random.Generator) -> np.ndarray:
    """A pitch-varying harmonic source through one vowel's formants per quarter, in syllables."""
    t = np.arange(samples) / SR
    f0 = rng.uniform(100, 220) * (1 + 0.08 * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    source = sum(np.sin(k * phase) / k for k in range(1, 40))
    out = np.zeros(samples)
    quarter = samples // 4
    for i, formants in enumerate(VOWELS):
        part = np.asarray(source[i * quarter : (i + 1) * quarter])
        for freq, bandwidth in zip(formants, (80, 100, 120)):
            part = _resonate(part, freq, bandwidth)
        out[i * quarter : i * quarter + len(part)] = part
    envelope = np.clip(1.5 * 0.5 * (1 - np.cos(2 * np.pi * 4 * t)), 0, 1)
    return 0.5 * out * envelope / max(float(np.max(np.abs(out))), 1e-9)


def speech_audio(*, seed: int, spans: int = 6) -> Tuple[np.ndarray, np.ndarray]:
    """Audio alternating quiet noise and speech-like spans; a per-sample 0/1 speech label."""
    rng = np.random.default_rng(seed)
    audio: List[np.ndarray] = []
    labels: List[np.ndarray] = []
    for _ in range(spans):
        quiet, voiced = int(SR * rng.uniform(0.6, 1.0)), int(SR * rng.uniform(0.8, 1.4))
        audio += [0.003 * rng.standard_normal(quiet), _voiced(voiced, rng) + 0.003 * rng.standard_normal(voiced)]
        labels += [np.zeros(quiet), np.ones(voiced)]
    return np.concatenate(audio).astype(np.float32), np.concatenate(labels)


def vad_frames(model_path: str, *, seed: int) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
    """Each 512-sample frame with its 64 samples of context and the recurrent state the FP32
    model carries into it when streaming the audio (as silero_vad's wrapper does), batch-first;
    frames that straddle a speech boundary are left out, so every label is certain."""
    import onnxruntime as ort

    audio, labels = speech_audio(seed=seed)
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    state, context = np.zeros((2, 1, 128), np.float32), np.zeros(CONTEXT, np.float32)
    frames, states, frame_labels = [], [], []
    sr = np.array(SR, np.int64)
    for start in range(0, len(audio) - FRAME, FRAME):
        chunk = audio[start : start + FRAME]
        x = np.concatenate([context, chunk])[None]
        share = float(labels[start : start + FRAME].mean())
        if share in (0.0, 1.0):
            frames.append(x[0])
            states.append(state[:, 0])
            frame_labels.append(share)
        _, state = session.run(None, {"input": x, "state": state, "sr": sr})
        context = chunk[-CONTEXT:]
    inputs = {"input": np.stack(frames), "state": np.stack(states).astype(np.float32), "sr": sr}
    return inputs, np.asarray(frame_labels)


DB_SHRINK = 0.6  # DB's label shrink ratio (PP-OCR's detector is a DB net): its map marks box cores


def _db_inset(width: float, height: float) -> float:
    """The inset DB shrinks a text box by for its label, D = A (1 - r^2) / L: the detector's map
    covers that core (unshrunk boxes scored IoU 0.48 on FP32, shrunk ones about 0.77)."""
    return width * height * (1 - DB_SHRINK**2) / max(2 * (width + height), 1)


def text_images(*, count: int, seed: int, size: Tuple[int, int] = (160, 320)) -> Tuple[np.ndarray, np.ndarray]:
    """RGB pages of 2-4 text lines on plain, noisy or shaded backgrounds, normalized as PP-OCR's
    detector expects (NCHW, (x/255 - 0.5) / 0.5); the label is each page's text mask (1 inside
    the rendered lines' boxes, shrunk as DB's labels are)."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    height, width = size
    pages, masks = [], []
    words = ("EDGE", "model", "int8", "Latency", "2026", "pytest", "budget", "ONNX", "text", "Pi 5")
    for _ in range(count):
        background = rng.uniform(170, 255)
        page = Image.new("RGB", (width, height), tuple(int(background - rng.uniform(0, 30)) for _ in range(3)))
        draw, mask = ImageDraw.Draw(page), np.zeros((height, width), np.float32)
        y = int(rng.uniform(8, 20))
        while y < height - 36:
            font = ImageFont.load_default(size=int(rng.uniform(20, 30)))
            text = " ".join(rng.choice(words, size=int(rng.integers(1, 4))))
            x = int(rng.uniform(6, 40))
            ink = tuple(int(rng.uniform(0, 70)) for _ in range(3))
            draw.text((x, y), text, fill=ink, font=font)
            left, top, right, bottom = draw.textbbox((x, y), text, font=font)
            inset = _db_inset(right - left, bottom - top)
            mask[int(top + inset) : int(bottom - inset), int(left + inset) : min(int(right - inset), width)] = 1.0
            y = bottom + int(rng.uniform(10, 24))
        pixels = np.asarray(page, np.float32) + rng.normal(0, rng.uniform(0, 8), (height, width, 3))
        pages.append(((np.clip(pixels, 0, 255) / 255.0 - 0.5) / 0.5).transpose(2, 0, 1))
        masks.append(mask)
    return np.stack(pages).astype(np.float32), np.stack(masks)


def cartoon_faces(*, count: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """128x128 RGB scenes in [-1, 1] (MediaPipe's BlazeFace input, NHWC), every other one with a
    drawn face (a skin-toned ellipse, two eyes, a nose and a mouth at a random place and size);
    the label is 1 where a face was drawn. The short-range detector scores them 0.63-0.90 against
    0.05-0.34 for the empty scenes in FP32."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:128, 0:128].astype(np.float32)
    images, labels = [], []
    for i in range(count):
        scene = rng.uniform(0.1, 0.9, 3)[None, None, :] + 0.1 * rng.normal(size=(128, 128, 3))
        image = np.clip(scene, 0, 1).astype(np.float32)
        if i % 2 == 0:
            _draw_face(image, xx, yy, rng)
        images.append(image * 2 - 1)
        labels.append(1 - i % 2)
    return np.stack(images).astype(np.float32), np.asarray(labels)


def _draw_face(image: np.ndarray, xx: np.ndarray, yy: np.ndarray, rng: np.random.Generator) -> None:
    cx, cy = rng.uniform(45, 83, 2)
    r = rng.uniform(22, 34)
    skin = np.array([0.87, 0.67, 0.53]) * rng.uniform(0.6, 1.1)
    image[((xx - cx) / (0.8 * r)) ** 2 + ((yy - cy) / r) ** 2 < 1] = skin
    for dx in (-0.35, 0.35):
        image[(xx - (cx + dx * r)) ** 2 + (yy - (cy - 0.2 * r)) ** 2 < (0.12 * r) ** 2] = 0.05
    image[(np.abs(yy - (cy + 0.45 * r)) < 0.06 * r) & (np.abs(xx - cx) < 0.3 * r)] = (0.5, 0.1, 0.1)
    image[(np.abs(xx - cx) < 0.05 * r) & (yy > cy - 0.05 * r) & (yy < cy + 0.2 * r)] = skin * 0.7


def nonspeech_feature_stream(*, windows: int, seed: int) -> np.ndarray:
    """A stream of microWakeWord input windows (3 frames of 40 log-mel features each, the float
    values its int8 input quantizes, 0-26) from sounds that hold no wake word by construction:
    near silence, stationary noise with a spectral tilt, and hums. In stream order: the model
    carries its state from one window to the next."""
    rng = np.random.default_rng(seed)
    bins = np.arange(40)
    frames: List[np.ndarray] = []
    while len(frames) < windows * 3:
        kind, n = int(rng.integers(3)), int(rng.integers(30, 90))
        if kind == 0:
            segment = rng.uniform(0, 1.5, (n, 40))
        elif kind == 1:
            segment = rng.uniform(4, 12) + rng.uniform(-0.1, 0.05) * bins + rng.normal(0, 1.0, (n, 40))
        else:
            segment = rng.uniform(0, 2, (n, 40))
            low = int(rng.integers(2, 30))
            segment[:, low : low + 3] += rng.uniform(8, 16)
        frames.extend(np.clip(segment, 0, 26))
    return np.asarray(frames[: windows * 3], np.float32).reshape(windows, 3, 40)
