"""An acoustic fingerprint for duplicate search, robust to re-encoding and gain.

Haitsma-Kalker style (Haitsma & Kalker, "A Highly Robust Audio Fingerprinting System", 2002):
the audio is decimated to 8 kHz, cut into 128 ms Hann frames every 32 ms, and each frame's power
spectrum is summed into 33 log-spaced bands from 300 to 3000 Hz (the speech band, where lossy
codecs keep the most). Bit m of frame n is 1 when the energy difference between bands m and m+1
grew since frame n-1: ``(E[n,m]-E[n,m+1]) - (E[n-1,m]-E[n-1,m+1]) > 0``. Signs of differences do
not change with gain and survive MP3/AAC/Opus coding. One 32-bit word per 32 ms: ~7.5 KB a minute
raw, ~10 KB as text.

Quiet frames (more than 45 dB under the recording's loud frames, or digital silence) carry no
information and would *agree* between any two recordings with pauses; they are stored as the word
0 and left out of every comparison (a real word is 0 with probability 2**-32).

Decisions:
- :data:`MATCH_BER` = 0.35. Measured (FACTS.md, tests and ``bench/bench_duplicates.py`` on real
  recorded speech): re-encoded, resampled, gain-changed, trimmed and noisy copies sit at 0.00-0.30,
  different recordings at >= 0.43 (independent bits give 0.5). 0.35 is Haitsma-Kalker's own
  threshold; over >= 1 s of overlap (>= 1000 bits) chance agreement of unrelated audio is many
  standard deviations away (the bench writes the estimate down for 10^6 recordings).
- :func:`align` compares two fingerprints at *every* relative offset (one FFT cross-correlation of
  the +-1 bit planes, a few ms a pair): leading or trailing silence, trims of seconds at either end,
  codec delays and a 10 s cut out of a longer recording all line up, which a small shift window
  (the old +-8 frames) could not.
- :func:`band_keys` gives shift-invariant keys for a Mongo multikey index (see its docstring);
  :func:`fingerprint_and_query_keys` adds the keys of the same audio at sub-frame offsets, so a copy
  trimmed by a fraction of the 32 ms hop still shares keys with its original.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.fft

from anomaly_cli.audio.resample import resample_poly

RATE = 8000
FRAME = 1024  # 128 ms at 8 kHz
HOP = 256  # 32 ms
N_BANDS = 33  # -> 32 bits
F_LO, F_HI = 300.0, 3000.0
QUIET_DB = 45.0
#: Old best-of-shifts range (frames), still accepted by :func:`bit_error_rate`'s ``max_shift``.
MAX_SHIFT = 8
#: Fewest valid overlapping frames (~1 s) for a comparison to count; fewer gives 0.5 (no evidence).
MIN_FRAMES = 32
#: Bit-error rate at or under which two fingerprints are the same recording (see module docstring).
MATCH_BER = 0.35
#: band_keys: frames pooled per key (256 ms), bits per key, bit subsets, 1 in KEY_SAMPLING kept, cap.
KEY_WINDOW = 8
KEY_BITS = 20
KEY_SUBSETS = 2
KEY_SAMPLING = 8
MAX_KEYS = 1024
#: Sub-hop offsets (of HOP / QUERY_PHASES samples each) whose keys a new recording looks up with.
QUERY_PHASES = 4


def compute(samples: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
    """The fingerprint of ``samples`` (mono float): one uint32 word per 32 ms frame, 0 = quiet."""
    return _words(_at_rate(samples, sample_rate))


def fingerprint_and_query_keys(samples: np.ndarray, sample_rate: int = 16000) -> tuple[np.ndarray, list[int]]:
    """The fingerprint and the keys to look its copies up with: :func:`band_keys` of the audio
    started at each of :data:`QUERY_PHASES` sub-hop offsets (0, 8, 16, 24 ms), merged.

    A copy trimmed by a whole number of frames shares the stored keys as they are; one trimmed by
    a fraction of a hop has every frame straddling two of the original's, and ~4 in 5 of its keys
    change (measured: trims at random offsets shared >= 2 keys in 79 % of real-speech cases with
    phase 0 alone, 100 % with four phases). Only the stored fingerprint and its phase-0 keys are
    kept; the query keys cost ~3 more frame passes (the 8 kHz resample is shared).
    """
    x = _at_rate(samples, sample_rate)
    fp = _words(x)
    keys = set(band_keys(fp))
    step = HOP // QUERY_PHASES
    for p in range(1, QUERY_PHASES):
        keys.update(band_keys(_words(x[p * step :]), sampling=key_sampling(sound_frames(fp))))
    return fp, sorted(keys)


def _at_rate(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mono float32 at :data:`RATE`, NaN-free."""
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim > 1:
        x = x.mean(axis=-1)  # (n, channels) -> mono
    x = np.nan_to_num(x.ravel())
    sr = int(sample_rate)
    if sr != RATE and x.size:
        g = np.gcd(sr, RATE)
        x = resample_poly(x, RATE // g, sr // g).astype(np.float32)
    return x


def _words(x: np.ndarray) -> np.ndarray:
    if x.size == 0:
        return np.zeros(0, dtype=np.uint32)
    if x.size < FRAME:
        x = np.pad(x, (0, FRAME - x.size))
    bands = _band_energies(x)  # (n, 33)
    diff = bands[:, :-1] - bands[:, 1:]
    bits = (diff[1:] - diff[:-1]) > 0  # (n-1, 32)
    words = np.packbits(bits, axis=1, bitorder="big").view(">u4").ravel().astype(np.uint32)
    total = bands.sum(axis=1)
    db = 10.0 * np.log10(total + 1e-20)
    loud = np.percentile(db, 95)
    quiet = (db < loud - QUIET_DB) | (total <= 1e-12)
    words[quiet[1:] | quiet[:-1]] = 0
    return words


_CHUNK = 256  # frames per FFT block (~1 MB of spectrum): working memory stays flat in the duration


def _band_energies(x: np.ndarray) -> np.ndarray:
    """Energy of each 128 ms frame in the 33 bands, computed block by block.

    A whole minute framed at once is ~8 MB of frames plus ~8 MB of spectrum per screening
    process; blocks of :data:`_CHUNK` frames keep it near 1 MB with the same numbers (each
    frame's FFT and band sums do not depend on its neighbours).
    """
    view = np.lib.stride_tricks.sliding_window_view(x, FRAME)[::HOP]
    n = view.shape[0]
    win, bm = _window(), _band_matrix()
    bands = np.empty((n, N_BANDS), dtype=np.float32)
    for a in range(0, n, _CHUNK):
        b = min(n, a + _CHUNK)
        power = np.abs(scipy.fft.rfft(view[a:b] * win, axis=1, workers=1)) ** 2
        bands[a:b] = power @ bm
    return bands


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    return np.hanning(FRAME).astype(np.float32)


@lru_cache(maxsize=1)
def _band_matrix() -> np.ndarray:
    """(FRAME//2+1, 33) 0/1 matrix summing FFT bins into log-spaced bands 300-3000 Hz."""
    edges = np.geomspace(F_LO, F_HI, N_BANDS + 1)
    freqs = np.fft.rfftfreq(FRAME, 1.0 / RATE)
    m = np.zeros((freqs.size, N_BANDS), dtype=np.float32)
    for b in range(N_BANDS):
        m[(freqs >= edges[b]) & (freqs < edges[b + 1]), b] = 1.0
    return m


def to_text(fp: np.ndarray) -> str:
    """Compact text form (base64 of little-endian uint32 words) for JSON and Mongo."""
    return base64.b64encode(np.asarray(fp, dtype="<u4").tobytes()).decode("ascii")


def from_text(s: str) -> np.ndarray:
    """Inverse of :func:`to_text`; ``ValueError`` for text that is not a fingerprint."""
    try:
        raw = base64.b64decode(s.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise ValueError(f"not a fingerprint: {e}") from e
    if len(raw) % 4:
        raise ValueError(f"not a fingerprint: {len(raw)} bytes is not a whole number of 32-bit words")
    return np.frombuffer(raw, dtype="<u4").astype(np.uint32)


@dataclass(frozen=True)
class Alignment:
    """How two fingerprints line up best: ``b`` starts ``offset`` frames after ``a`` (negative:
    before), over ``overlap`` frames that are sound in both, with bit-error rate ``ber``."""

    ber: float
    offset: int
    overlap: int

    @property
    def offset_s(self) -> float:
        """The offset in seconds (32 ms a frame)."""
        return self.offset * HOP / RATE


def _planes(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(+-1 bit planes with quiet frames as 0, (n, 32) float32; 0/1 sound mask, (n,) float32)."""
    valid = (w != 0).astype(np.float32)
    bits = np.unpackbits(w.astype(">u4").view(np.uint8).reshape(-1, 4), axis=1, bitorder="big")
    return (bits.astype(np.float32) * 2.0 - 1.0) * valid[:, None], valid


def align(a: np.ndarray, b: np.ndarray, *, max_shift: int | None = None) -> Alignment:
    """The best alignment of ``b`` against ``a`` over every offset (or +-``max_shift`` frames).

    Agreement of the two bit planes at all offsets is one FFT cross-correlation (summed over the
    32 bit positions), the number of frames sound in both is another; an offset counts only with
    >= :data:`MIN_FRAMES` such frames. Without any, the answer is BER 0.5 (no evidence).
    """
    a = np.asarray(a, dtype=np.uint32)
    b = np.asarray(b, dtype=np.uint32)
    if a.size == 0 or b.size == 0:
        return Alignment(0.5, 0, 0)
    sa, va = _planes(a)
    sb, vb = _planes(b)
    n = a.size + b.size - 1
    nfft = int(scipy.fft.next_fast_len(n, real=True))
    fa = scipy.fft.rfft(sa, nfft, axis=0, workers=1)
    fb = scipy.fft.rfft(sb[::-1], nfft, axis=0, workers=1)
    agree = scipy.fft.irfft((fa * fb).sum(axis=1), nfft, workers=1)[:n]
    overlap = np.rint(scipy.fft.irfft(scipy.fft.rfft(va, nfft) * scipy.fft.rfft(vb[::-1], nfft), nfft)[:n])
    # index i <-> b shifted so that b[0] sits at a[i - (len(b) - 1)]
    offsets = np.arange(n) - (b.size - 1)
    ok = overlap >= MIN_FRAMES
    if max_shift is not None:
        ok &= np.abs(offsets) <= max_shift
    if not ok.any():
        return Alignment(0.5, 0, 0)
    ber = np.where(ok, 0.5 - agree / (64.0 * np.maximum(overlap, 1.0)), 1.0)
    i = int(np.argmin(ber))
    return Alignment(float(min(0.5, max(0.0, ber[i]))), int(offsets[i]), int(overlap[i]))


def bit_error_rate(a: np.ndarray, b: np.ndarray, max_shift: int | None = None) -> float:
    """Fraction of differing bits at the best alignment (0 same, ~0.5 unrelated); see :func:`align`."""
    return align(a, b, max_shift=max_shift).ber


def is_match(a: np.ndarray, b: np.ndarray) -> bool:
    """True when ``a`` and ``b`` are fingerprints of the same recording (BER <= :data:`MATCH_BER`)."""
    return bit_error_rate(a, b) <= MATCH_BER


def sound_frames(fp: np.ndarray) -> int:
    """Frames with sound (non-zero words): fewer than :data:`MIN_FRAMES` can never match."""
    return int(np.count_nonzero(np.asarray(fp)))


def key_sampling(sound: int) -> int:
    """1 in how many key values a fingerprint with ``sound`` frames of sound keeps: 8 from ~40 s of
    sound, 4 from ~20 s, 2 from ~10 s, every value below. Powers of two, so the kept sets nest: a
    value kept 1 in 8 is kept by every shorter recording too, and a short copy and its long
    original share the values the original kept (a short reading still has enough keys)."""
    seconds = sound * HOP / RATE
    return KEY_SAMPLING if seconds >= 40 else 4 if seconds >= 20 else 2 if seconds >= 10 else 1


@lru_cache(maxsize=1)
def _key_bit_sets() -> np.ndarray:
    """Fixed (seeded) choice of KEY_BITS bit positions per subset: part of the key format."""
    rng = np.random.default_rng(20261202)
    return np.stack([np.sort(rng.choice(32, size=KEY_BITS, replace=False)) for _ in range(KEY_SUBSETS)])


def band_keys(fp: np.ndarray, sampling: int | None = None) -> list[int]:
    """Shift-invariant sub-hashes for candidate lookup (a Mongo multikey index), at most :data:`MAX_KEYS`.

    Single 32-bit words rarely survive a re-encode intact (at BER 0.2, 0.8**32 < 0.1 %), so keys
    come from time-pooled bits: at *every* frame position, each of the 32 bit positions gets the
    majority vote of the next 8 frames (256 ms; >= 6 of them sound). A key is one of two fixed
    pseudo-random sets of 20 voted bits, as ``subset << 20 | bits``. Keys carry no frame index, so
    a copy that starts earlier or later (silence added, seconds trimmed, a cut of a longer
    recording) has the same keys at shifted positions. To keep the index small, a key is kept only
    when a hash of its *value* falls in 1 of :func:`key_sampling` buckets (1 in 8 for 40 s of sound
    and more; every value for under 10 s): the choice depends on the value alone, so whenever a
    copy has the value, both sides keep it (~6 keys a second of sound for long readings, a few
    hundred at most for short ones).
    Unrelated recordings collide on a key with probability ~2**-20 per pair of keys; a lookup
    ranks candidates by keys shared and :func:`is_match` decides.
    Measured while choosing (``bench/bench_duplicates.py``, real speech of 15-35 s, pooling 8/16,
    bits 12-32, sampling 1/2-1/32): every transform of the bench shared >= 2 keys with 20 bits, 2
    subsets, 1/8 and four query phases; 22+ bits lost AMR-NB copies, 16 bits or fewer multiplied
    the candidates of unrelated recordings.
    """
    w = np.asarray(fp, dtype=np.uint32)
    if w.size < KEY_WINDOW:
        return []
    valid = w != 0
    bits = np.unpackbits(w.astype(">u4").view(np.uint8).reshape(-1, 4), axis=1, bitorder="big").astype(np.int32)
    bits[~valid] = 0
    ones = np.cumsum(np.vstack([np.zeros((1, 32), np.int32), bits]), axis=0)
    ones = ones[KEY_WINDOW:] - ones[:-KEY_WINDOW]
    cnt = np.cumsum(np.concatenate([[0], valid.astype(np.int32)]))
    cnt = cnt[KEY_WINDOW:] - cnt[:-KEY_WINDOW]
    ok = cnt >= (3 * KEY_WINDOW) // 4
    # a tie (4 of 8) takes the middle frame's bit: "2 * ones > cnt" alone would make every tie a 0,
    # biasing keys towards mostly-zero values that unrelated recordings share (measured: the most
    # common keys of 26 recordings were all or nearly all zeros)
    middle = bits[KEY_WINDOW // 2 : KEY_WINDOW // 2 + ones.shape[0]]
    votes = ((2 * ones > cnt[:, None]) | ((2 * ones == cnt[:, None]) & (middle > 0)))[ok]  # (positions, 32)
    if votes.shape[0] == 0:
        return []
    weights = (1 << np.arange(KEY_BITS - 1, -1, -1)).astype(np.int64)
    keys: list[int] = []
    seen: set[int] = set()
    per_subset = [
        (t << KEY_BITS) | (votes[:, cols].astype(np.int64) @ weights) for t, cols in enumerate(_key_bit_sets())
    ]
    stacked = np.stack(per_subset, axis=1).ravel()  # time order, subsets interleaved
    h = (stacked * 0x9E3779B1) & 0xFFFFFFFF
    m = sampling if sampling is not None else key_sampling(int(valid.sum()))
    for k in stacked[(h >> 16) % m == 0].tolist():
        if k not in seen:
            seen.add(k)
            keys.append(int(k))
            if len(keys) == MAX_KEYS:
                break
    return keys


def pcm_sha256(samples: np.ndarray) -> str | None:
    """SHA-256 of the decoded audio quantised to int16: equal for exact-audio copies in other containers.

    Scale 32768 is the int16 <-> float convention of libsndfile and FFmpeg, so 16-bit audio decoded
    from WAV, FLAC or any lossless container maps back to its exact integers. ``None`` for digital
    silence (every sample 0 after quantising): two different files of zeros of one length are
    identical by construction, not by copying, so they must not match as PCM copies.
    """
    x = np.asarray(samples).ravel()
    h = hashlib.sha256()
    sound = False
    step = 1 << 16  # hashed block by block: no whole-file float64 / int16 copies (~20 MB a minute)
    for a in range(0, x.size, step):
        blk = np.nan_to_num(x[a : a + step].astype(np.float64))
        q = np.clip(np.round(blk * 32768.0), -32768, 32767).astype("<i2")
        sound = sound or bool(q.any())
        h.update(q.tobytes())
    return h.hexdigest() if sound else None
