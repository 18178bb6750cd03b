"""Real recorded human speech for the duplicate benchmark, fetched with the ordinary clients.

No children's recordings can be shipped, so the benchmark uses adult speech that Debian and PyPI
distribute: Debian ``codec2-examples`` (``/usr/share/codec2/raw/*.raw``, 8 kHz s16le English,
several speakers, studio, phone and noisy HF radio; ``speech_orig_16k.wav``) and the
``pyannote.audio`` wheel's ``sample.wav`` (30 s of two-speaker telephone English). They are
downloaded once (``apt-get download``, ``pip download --no-deps``) into ``DUPES_SPEECH_CACHE``
(default ``~/.cache/anomaly/dupes-speech``) and each file is checked against its SHA-256.

Different speakers reading the *same* text are not in either package; :func:`espeak_readings`
makes five Marathi voices of espeak-ng (a Debian package, synthetic) read one passage.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

import numpy as np

SR = 16_000
C2 = "codec2/usr/share/codec2/raw/"
#: name -> (path in the cache, sha256, rate of a headerless .raw, or 0 for a .wav)
FILES: dict[str, tuple[str, str, int]] = {
    "ve9qrp": (C2 + "ve9qrp.raw", "13a01d4d14cc4de472ac6b1902e5c93b3699090aa83058714b24269d84dc432e", 8000),
    "hts": (C2 + "hts.raw", "43cd36174591b0702cd7a33b0e46d6fe2fc5f65205a8e5c05d8d0dd886d6c712", 8000),
    "vk5qi": (C2 + "vk5qi.raw", "56fc8f236683d55d172880c5a0772bc9a9e063dca90e49f8aff7da7819c3af83", 8000),
    "cq_ref": (C2 + "cq_ref.raw", "f99d138f7ae80ff833b93ef65274d72387529b7f3d2500f550481e7c13da939d", 8000),
    "g3plx": (C2 + "g3plx.raw", "946317fb29a576c86b0eeae3b64bd8e19bb02c0378b665a494732ef9d0c40950", 8000),
    "kristoff": (C2 + "kristoff.raw", "d1a955308fd4fc08157e19a20322cd51074c74542b9184c6f49394d5e8bc87d7", 8000),
    "mmt1": (C2 + "mmt1.raw", "0bdc692df9369bc55f126dbb1bf018d8212dcd45c0486662e6b558b938064759", 8000),
    "cross": (C2 + "cross.raw", "bd4df63d014f613ea36ba5e6102099fba8f3d57f3c1602fa737622d63ac4995f", 8000),
    "big_dog": (C2 + "big_dog.raw", "df9e9377dadf17a3b97b944a1ecdec78251245e111ec10b34cfb44f595dace19", 8000),
    "morig": (C2 + "morig.raw", "eb79ab25c5e62a09d59478372b9776415231deab8bb4ec2726518116a13a427b", 8000),
    "forig": (C2 + "forig.raw", "5bab681113681268ca6e4e6778faf300b411dc249fc2b43c93eafb6fc6be8f60", 8000),
    "700d": (C2 + "700d_end_over.raw", "", 8000),
    "speech_orig": (C2 + "speech_orig_16k.wav", "", 0),
    "pyannote": ("pyannote/pyannote/audio/sample/sample.wav", "", 0),
}
PASSAGE = "एका गावात एक शेतकरी राहत होता. त्याच्याकडे एक सुंदर गाय होती. रोज सकाळी तो गायीला चरायला घेऊन जायचा."
ESPEAK_VOICES = ("mr", "mr+f3", "mr+m3", "mr+f5", "mr+m7")
#: words a minute and pitch (0-99) per voice: readers differ in pace and pitch
ESPEAK_STYLE = ((120, 50), (105, 65), (135, 35), (112, 75), (128, 40))


def cache_dir() -> Path:
    return Path(os.environ.get("DUPES_SPEECH_CACHE", Path.home() / ".cache" / "anomaly" / "dupes-speech"))


def fetch() -> Path:
    """Download and unpack the two packages into the cache (once); returns the cache folder."""
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    if not (root / C2).is_dir():
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["apt-get", "download", "codec2-examples"], cwd=tmp, check=True, capture_output=True)
            deb = next(Path(tmp).glob("codec2-examples_*.deb"))
            subprocess.run(["dpkg", "-x", str(deb), str(root / "codec2")], check=True)
    wav = root / FILES["pyannote"][0]
    if not wav.exists():
        with tempfile.TemporaryDirectory() as tmp:
            cmd = ["pip", "download", "--no-deps", "pyannote.audio==4.0.7", "-d", tmp, "-q"]
            subprocess.run(cmd, check=True, capture_output=True)
            whl = next(Path(tmp).glob("pyannote_audio-*.whl"))
            with zipfile.ZipFile(whl) as z:
                z.extract("pyannote/audio/sample/sample.wav", root / "pyannote")
    return root


def load(name: str) -> np.ndarray:
    """One source at 16 kHz mono float32 (checked against its SHA-256 where one is pinned)."""
    import soundfile as sf

    from anomaly_cli.audio.resample import resample_poly

    rel, sha, rate = FILES[name]
    path = fetch() / rel
    data = path.read_bytes()
    if sha and hashlib.sha256(data).hexdigest() != sha:
        raise RuntimeError(f"{path}: SHA-256 differs from the pinned one")
    if rate:
        x, sr = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0, rate
    else:
        x, sr = sf.read(path, dtype="float32")
        x = x.mean(axis=1) if x.ndim > 1 else x
    if sr != SR:
        g = np.gcd(SR, sr)
        x = resample_poly(x, SR // g, sr // g).astype(np.float32)
    return np.ascontiguousarray(x, dtype=np.float32)


def recordings(seconds: float = 15.0) -> list[tuple[str, np.ndarray]]:
    """Distinct recordings of ~``seconds`` (non-overlapping pieces of the sources; the short
    sources joined end to end with 0.5 s gaps so each piece has enough speech)."""
    out: list[tuple[str, np.ndarray]] = []
    n = int(seconds * SR)
    gap = np.zeros(SR // 2, np.float32)
    for name in ("ve9qrp", "pyannote", "hts", "700d"):
        x = load(name)
        for i in range(max(1, len(x) // n)):
            piece = x[i * n : (i + 1) * n]
            if len(piece) >= 0.6 * n:
                out.append((f"{name}@{i * seconds:g}s", piece))
    joined = np.concatenate([np.concatenate([load(k), gap]) for k in ("vk5qi", "cq_ref")])
    out.append(("vk5qi+cq_ref", joined))
    shorts = np.concatenate(
        [np.concatenate([load(k), gap]) for k in ("g3plx", "kristoff", "mmt1", "cross", "big_dog", "morig", "forig")]
    )
    out.append(("seven_short_sources", shorts))
    out.append(("speech_orig", load("speech_orig")))
    return out


def long_recordings() -> list[tuple[str, np.ndarray]]:
    """The sources long enough to cut a >= 10 s piece out of at many places."""
    return [("ve9qrp", load("ve9qrp")), ("pyannote", load("pyannote")), ("hts", load("hts"))]


def espeak_readings(same_pace: bool = False) -> list[tuple[str, np.ndarray]]:
    """Five espeak-ng Marathi voices reading :data:`PASSAGE` (empty without espeak-ng on PATH), each
    at its own pace and pitch (:data:`ESPEAK_STYLE`), or all at 120 words a minute with
    ``same_pace``: then every phoneme lasts the same in all five, which no two readers do."""
    import soundfile as sf

    from anomaly_cli.audio.resample import resample_poly

    exe = shutil.which("espeak-ng")
    if not exe:
        return []
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for v, (pace, pitch) in zip(ESPEAK_VOICES, ESPEAK_STYLE):
            path = Path(tmp) / f"{v}.wav"
            pace, pitch = (120, 50) if same_pace else (pace, pitch)
            cmd = [exe, "-v", v, "-s", str(pace), "-p", str(pitch), "-w", str(path), PASSAGE]
            subprocess.run(cmd, check=True, capture_output=True)
            x, sr = sf.read(path, dtype="float32")
            g = np.gcd(SR, sr)
            out.append((f"espeak:{v}", resample_poly(x, SR // g, sr // g).astype(np.float32)))
    return out
