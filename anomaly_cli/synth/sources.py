"""Speech sources beside the built-in voice: espeak-ng and alsa-utils' recorded words.

- ``espeak``: Marathi text spoken by ``espeak-ng -v mr`` (a different synthesis), run as a
  subprocess, if installed.
- ``alsa``: real human speech from ``/usr/share/sounds/alsa/*.wav`` (alsa-utils), if present,
  words concatenated with pauses into a reading-length recording.

Both are resampled to the generator's rate by the pipeline's own resampler (audio/resample.py).
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np

from anomaly_cli.audio.resample import resample
from anomaly_cli.synth.formant import formant_speech
from anomaly_cli.synth.signals import SR

ALSA_DIR = Path("/usr/share/sounds/alsa")
MARATHI_LINES = (
    "एक होता राजा. त्याला तीन मुले होती.",
    "आज शाळेत आम्ही नवीन गाणे शिकलो.",
    "माझे नाव राम आहे. मी तिसरीत शिकतो.",
    "पाऊस पडला आणि सगळी झाडे हिरवी झाली.",
    "आई बाजारात गेली आणि तिने भाजी आणली.",
    "आमच्या गावात एक मोठी नदी आहे.",
    "ससा आणि कासव यांची शर्यत लागली.",
    "मला आंबा खूप आवडतो.",
    "शिक्षक वर्गात गोष्ट सांगत होते.",
    "सकाळी लवकर उठून मी शाळेत जातो.",
)


def espeak_available() -> bool:
    """True when ``espeak-ng`` is on PATH (optional)."""
    return shutil.which("espeak-ng") is not None


def espeak_speech(rng: np.random.Generator, duration_s: float, sr: int = SR) -> np.ndarray:
    """Marathi sentences by espeak-ng (``-v mr`` voices) joined with pauses, resampled to ``sr``."""
    import soundfile as sf

    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed")
    parts: list[np.ndarray] = []
    total = 0.0
    voice = str(rng.choice(["mr", "mr+f3", "mr+f4", "mr+m3", "mr+f2"]))
    speed = int(rng.integers(110, 160))
    pitch = int(rng.integers(50, 90))
    while total < duration_s:
        text = str(rng.choice(MARATHI_LINES))
        wav = subprocess.run(
            [exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text],
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout
        x, rate = sf.read(io.BytesIO(wav), dtype="float32")
        x = resample(x if x.ndim == 1 else x.mean(axis=1), rate, sr)
        pause = np.zeros(int(rng.uniform(0.2, 0.9) * sr), dtype=np.float32)
        parts += [x, pause]
        total += (len(x) + len(pause)) / sr
    y = np.concatenate(parts)[: int(duration_s * sr)]
    return (y / max(np.max(np.abs(y)), 1e-9)).astype(np.float32)


def alsa_files() -> list[Path]:
    """Real human speech shipped by alsa-utils, if present."""
    # Noise.wav is the speaker-test pink noise, not speech.
    return sorted(p for p in ALSA_DIR.glob("*.wav") if p.stem != "Noise") if ALSA_DIR.is_dir() else []


def alsa_speech(rng: np.random.Generator, duration_s: float, sr: int = SR) -> np.ndarray:
    """Real words from ``/usr/share/sounds/alsa`` in random order with reading-like pauses."""
    import soundfile as sf

    files = alsa_files()
    if not files:
        raise RuntimeError(f"no wav files in {ALSA_DIR}")
    parts: list[np.ndarray] = []
    total = 0.0
    while total < duration_s:
        x, rate = sf.read(str(files[int(rng.integers(len(files)))]), dtype="float32")
        x = resample(x if x.ndim == 1 else x.mean(axis=1), rate, sr) * rng.uniform(0.5, 1.0)
        pause = np.zeros(int(rng.uniform(0.15, 0.8) * sr), dtype=np.float32)
        parts += [x, pause]
        total += (len(x) + len(pause)) / sr
    y = np.concatenate(parts)[: int(duration_s * sr)]
    return (y / max(np.max(np.abs(y)), 1e-9)).astype(np.float32)


def speech(
    rng: np.random.Generator, duration_s: float, sr: int = SR, *, source: str = "formant", hesitations: float = 0.1
) -> np.ndarray:
    """Speech from one of the sources (``formant``, ``espeak``, ``alsa``)."""
    if source == "espeak":
        return espeak_speech(rng, duration_s, sr)
    if source == "alsa":
        return alsa_speech(rng, duration_s, sr)
    return formant_speech(rng, duration_s, sr, hesitations=hesitations)
