"""An acoustic fingerprint for duplicate search, robust to re-encoding and gain.

Haitsma-Kalker style (Haitsma & Kalker, "A Highly Robust Audio Fingerprinting System", 2002):
128 ms Hann frames every 32 ms, each frame's power spectrum summed into 33 log-spaced bands from
300 to 3000 Hz (the speech band, where lossy codecs keep the most). Bit m of frame n is 1 when the
energy difference between bands m and m+1 grew since frame n-1:
``(E[n,m]-E[n,m+1]) - (E[n-1,m]-E[n-1,m+1]) > 0``. Signs of differences do not change with gain
and survive MP3/AAC/Opus coding. One 32-bit word per 32 ms: ~7.5 KB a minute raw, ~10 KB as text.
The spectrum is taken at 16 kHz (2048-point frames, the decoder's analysis rate, so no resampling
for decoded audio); below 3 kHz that is the same spectrum as 1024 points at 8 kHz, which the
first format used (measured: the two give words at BER 0.0004 of each other on real speech), so
fingerprints stored before stay comparable.

Quiet frames (more than 45 dB under the recording's loud frames, or digital silence) carry no
information and would *agree* between any two recordings with pauses; they are stored as the word
0 and left out of every comparison (a real word is 0 with probability 2**-32).

Decisions:
- :data:`MATCH_BER` = 0.35. Measured (FACTS.md, tests and ``bench/bench_duplicates.py`` on real
  recorded speech): re-encoded, resampled, gain-changed, trimmed and noisy copies sit at 0.00-0.36,
  different recordings at >= 0.42 (independent bits give 0.5). 0.35 is Haitsma-Kalker's own
  threshold; over >= 1 s of overlap (>= 1000 bits) chance agreement of unrelated audio is many
  standard deviations away (the bench writes the estimate down for 10^6 recordings).
- :func:`align` compares two fingerprints at *every* relative offset (one FFT cross-correlation of
  the +-1 bit planes, a few ms a pair): leading or trailing silence, trims of seconds at either end,
  codec delays and a 10 s cut out of a longer recording all line up.
- Candidate keys (:data:`KEY_FORMAT` 2, see :func:`fingerprint_and_query_keys`): 48-bit keys from
  band energies pooled over 256 ms (selective: a lookup among 10^5 results meets a few hundred, not
  most of them), looked up with the 4 least reliable bits flipped; recordings whose pooled
  energies barely change (stationary noise, HF radio) also store coarser keys from the words.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import scipy.fft

from anomaly_cli.audio.resample import resample_poly

RATE = 16000
FRAME = 2048  # 128 ms at 16 kHz
HOP = 512  # 32 ms
N_BANDS = 33  # -> 32 bits
F_LO, F_HI = 300.0, 3000.0
QUIET_DB = 45.0
#: Old best-of-shifts range (frames), still accepted by :func:`bit_error_rate`'s ``max_shift``.
MAX_SHIFT = 8
#: Fewest valid overlapping frames (~1 s) for a comparison to count; fewer gives 0.5 (no evidence).
MIN_FRAMES = 32
#: Bit-error rate at or under which two fingerprints are the same recording (see module docstring).
MATCH_BER = 0.35

#: The stored key format (``audio.fp_bands``); each key carries its family in bits 56+ (below).
KEY_FORMAT = 2
#: Format-2 energy keys: frames pooled per block (256 ms), gap between compared blocks (frames),
#: bits per key (of the 64 two block differences give), least reliable bits flipped on lookup.
KEY_WINDOW = 8
KEY_GAP = 8
KEY_BITS = 48
QUERY_FLIPS = 4
#: 1 in KEY_SAMPLING key values kept (from 40 s of sound, fewer below: :func:`key_sampling`); cap.
KEY_SAMPLING = 8
MAX_KEYS = 1024
#: Median relative change of the pooled energies under which a recording is *steady* (stationary
#: noise, HF radio: its energy keys do not survive a codec) and also stores :func:`word_keys`.
STEADY_RELIABILITY = 0.12
#: A lookup asks word keys only when its own recording's median relative change is under this
#: (looser than STEADY_RELIABILITY: measured, copies of the steady original at 0.051-0.076, every
#: other copy at >= 0.146, every other recording at >= 0.21), so an ordinary recording's lookup does
#: not meet the coarse word keys of a date's steady recordings.
QUERY_WORDS_RELIABILITY = 0.2
#: Word keys (steady recordings): bits voted over 8 frames, bits per key, bit subsets.
WORD_KEY_BITS = 18
WORD_KEY_SUBSETS = 4
#: Sub-hop offsets (HOP / QUERY_PHASES samples each) a *steady* recording's word keys are
#: looked up with (a copy trimmed by a fraction of 32 ms straddles frames).
QUERY_PHASES = 4
#: Key families (bits 56-58 of a key): format-2 energy keys, format-2 word keys. Format-1 keys
#: (stored before format 2, :func:`legacy_keys`) are < 2**21 and carry no family.
FAMILY_ENERGY = 2
FAMILY_WORDS = 3
_FAMILY_SHIFT = 56


class Fingerprint(np.ndarray):
    """The fingerprint words (uint32, one per 32 ms) of audio analysed here, carrying the stored
    keys computed from its band energies (:func:`band_keys` returns them). Words read back from
    storage (:func:`from_text`) are a plain array: their energy keys cannot be recomputed."""

    keys: list[int] | None
    steady: bool

    def __array_finalize__(self, obj: Any) -> None:
        self.keys = None  # views and copies do not inherit the keys of the whole
        self.steady = False


def compute(samples: np.ndarray, sample_rate: int = 16000) -> Fingerprint:
    """The fingerprint of ``samples`` (mono float): one uint32 word per 32 ms frame, 0 = quiet."""
    return fingerprint_and_query_keys(samples, sample_rate, query=False)[0]


def fingerprint_and_query_keys(
    samples: np.ndarray, sample_rate: int = 16000, *, query: bool = True
) -> tuple[Fingerprint, list[int]]:
    """The fingerprint (with its stored keys, :func:`band_keys`) and the keys to look copies up with.

    Stored keys (format 2): the band energies of each 256 ms block (8 frames summed) are compared
    with the block 256 ms earlier, HK style (sign of the change of the difference of adjacent
    bands), which gives 32 bits per frame position; two such comparisons 256 ms apart give 64, of
    which a fixed (seeded) choice of :data:`KEY_BITS` is the key. Pooling energies, not bits, is
    what makes them survive: measured on real speech, a pooled-energy bit differs between a codec
    copy and its original 1-7 % of the time against 8-22 % for a vote of 8 word bits, and an error
    falls among the 4 least reliable bits of its key (smallest relative change) 53-87 % of the time.
    Keys carry no frame position (shift-invariant), and a sub-hop shift hardly moves a 256 ms sum,
    so the lookup needs no sub-frame phases. A key is kept when a hash of its value falls in 1 of
    :func:`key_sampling` buckets, so both sides of a copy keep the same values.

    Query keys: the stored ones plus each key with every combination of its :data:`QUERY_FLIPS`
    least reliable bits flipped (16 variants, each kept by the same value rule), plus, for a
    recording that is (nearly) steady itself (:data:`QUERY_WORDS_RELIABILITY`), the
    :func:`word_keys` of the audio (at :data:`QUERY_PHASES` sub-hop offsets when it is steady),
    which meet only the word keys that steady recordings store.
    ``query=False`` skips them (:func:`compute`).
    """
    x = _at_rate(samples, sample_rate)
    words, bands, sound = _analyse(x)
    fp = words.view(Fingerprint)
    m = key_sampling(sound_frames(words))
    d, rel_d, ok = _block_changes(bands, sound)  # one pass, for the keys and the steadiness
    bits, rel = _energy_bits(d, rel_d, ok)
    change = _median_change(rel_d, ok)
    steady = change < STEADY_RELIABILITY
    fp.steady = steady
    stored = _energy_keys(bits, rel, m, flips=0)
    if steady:
        stored += word_keys(words)
    fp.keys = _unique(stored)[:MAX_KEYS]
    if not query:
        return fp, []
    keys = set(fp.keys) | set(_energy_keys(bits, rel, m, flips=QUERY_FLIPS))
    if change < QUERY_WORDS_RELIABILITY:
        keys.update(word_keys(words))
    if steady:
        step = HOP // QUERY_PHASES
        for p in range(1, QUERY_PHASES):
            keys.update(word_keys(_analyse(x[p * step :])[0], sampling=m))
    return fp, sorted(keys)


def band_keys(fp: np.ndarray) -> list[int]:
    """The stored candidate keys (``audio.fp_bands``) of a fingerprint computed here.

    ``TypeError`` for plain words (read back from storage): format-2 energy keys need the audio.
    The duplicate sweep looks stored results up with their stored keys plus :func:`lookup_keys_of_words`.
    """
    keys = getattr(fp, "keys", None)
    if keys is None:
        raise TypeError("band_keys needs a fingerprint computed by fingerprint.compute (it carries the keys)")
    return list(keys)


def lookup_keys_of_words(fp: np.ndarray) -> list[int]:
    """Keys the stored words alone give, for looking up without the audio (``results dedupe``):
    :func:`word_keys` (they meet steady recordings) and :func:`legacy_keys` (they meet results
    stored in format 1, before format 2, whose ``fp_bands`` hold format-1 keys)."""
    w = np.asarray(fp, dtype=np.uint32)
    return sorted(set(word_keys(w)) | set(legacy_keys(w)))


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


def _analyse(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(words (n-1,) uint32 with 0 for quiet, band energies (n, 33), sound mask (n,) of frames)."""
    if x.size == 0:
        return np.zeros(0, dtype=np.uint32), np.zeros((0, N_BANDS), np.float32), np.zeros(0, bool)
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
    return words, bands, ~quiet


def _words(x: np.ndarray) -> np.ndarray:
    return _analyse(x)[0]


_CHUNK = 256  # frames per FFT block (~2 MB of spectrum): working memory stays flat in the duration


def _band_energies(x: np.ndarray) -> np.ndarray:
    """Energy of each 128 ms frame in the 33 bands, computed block by block.

    Only the FFT bins from 300 to 3000 Hz are summed (one matrix product per block of
    :data:`_CHUNK` frames); blocks keep the working memory near 2 MB at any duration.
    """
    view = np.lib.stride_tricks.sliding_window_view(x, FRAME)[::HOP]
    n = view.shape[0]
    win, (lo, hi, bm) = _window(), _band_matrix()
    bands = np.empty((n, N_BANDS), dtype=np.float32)
    for a in range(0, n, _CHUNK):
        b = min(n, a + _CHUNK)
        spec = scipy.fft.rfft(view[a:b] * win, axis=1, workers=1)[:, lo:hi]
        bands[a:b] = (spec.real**2 + spec.imag**2) @ bm
    return bands


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    return np.hanning(FRAME).astype(np.float32)


@lru_cache(maxsize=1)
def _band_matrix() -> tuple[int, int, np.ndarray]:
    """(first bin, end bin, (bins, 33) 0/1 matrix summing FFT bins into log-spaced bands 300-3000 Hz)."""
    edges = np.geomspace(F_LO, F_HI, N_BANDS + 1)
    freqs = np.fft.rfftfreq(FRAME, 1.0 / RATE)
    lo, hi = int(np.searchsorted(freqs, edges[0])), int(np.searchsorted(freqs, edges[-1]))
    m = np.zeros((hi - lo, N_BANDS), dtype=np.float32)
    for b in range(N_BANDS):
        m[(freqs[lo:hi] >= edges[b]) & (freqs[lo:hi] < edges[b + 1]), b] = 1.0
    return lo, hi, m


def _block_changes(bands: np.ndarray, sound: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame position i: the HK change between the 256 ms block at i + KEY_GAP and the one at
    i ((i, 32) float), its size relative to the blocks' energy, and whether both blocks have sound
    in >= 6 of their 8 frames."""
    w, g = KEY_WINDOW, KEY_GAP
    e = bands.astype(np.float64)
    if e.shape[0] < w + g:
        z = np.zeros((0, N_BANDS - 1))
        return z, z, np.zeros(0, bool)
    c = np.cumsum(np.vstack([np.zeros((1, N_BANDS)), e]), axis=0)
    p = c[w:] - c[:-w]  # (n-w+1, 33): block sums
    cs = np.cumsum(np.concatenate([[0], sound.astype(np.int64)]))
    s = cs[w:] - cs[:-w]
    dd = p[:, :-1] - p[:, 1:]
    d = dd[g:] - dd[:-g]
    rel = np.abs(d) / (p[g:, :-1] + p[g:, 1:] + p[:-g, :-1] + p[:-g, 1:] + 1e-20)
    ok = (s[g:] >= (3 * w) // 4) & (s[:-g] >= (3 * w) // 4)
    return d, rel, ok


def _median_change(rel: np.ndarray, ok: np.ndarray) -> float:
    """Median relative change of the pooled energies block to block (0 without blocks of sound),
    from :func:`_block_changes`.
    Under STEADY_RELIABILITY the recording is steady: measured, an HF-radio recording at 0.064
    against 0.21-0.38 for every other real and 0.32-0.49 for synthetic speech; its energy keys did
    not survive a single codec."""
    return float(np.median(rel[ok])) if ok.any() else 0.0


def _energy_bits(d: np.ndarray, rel: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions, KEY_BITS) key bits and their reliabilities, at every position with sound,
    from :func:`_block_changes`."""
    g = KEY_GAP
    n = d.shape[0] - g
    if n <= 0:
        return np.zeros((0, KEY_BITS), bool), np.zeros((0, KEY_BITS))
    both = ok[:n] & ok[g : g + n]
    cols = _energy_bit_set()
    bits = np.concatenate([d[:n] > 0, d[g : g + n] > 0], axis=1)[both][:, cols]
    r = np.concatenate([rel[:n], rel[g : g + n]], axis=1)[both][:, cols]
    return bits, r


@lru_cache(maxsize=1)
def _energy_bit_set() -> np.ndarray:
    """Fixed (seeded) choice of KEY_BITS of the 64 bits: part of the key format."""
    return np.sort(np.random.default_rng(20261202).choice(64, size=KEY_BITS, replace=False))


_U = np.uint64


def _weights(nbits: int) -> np.ndarray:
    return _U(1) << np.arange(nbits - 1, -1, -1, dtype=np.uint64)


def _kept(values: np.ndarray, m: int) -> np.ndarray:
    """The values whose hash falls in bucket 0 of ``m`` (the same rule for stored and query keys)."""
    if m <= 1:
        return values
    h = (values * _U(0x9E3779B97F4A7C15)) >> _U(40)  # wraps mod 2**64
    return values[(h % _U(m)) == 0]


def _energy_keys(bits: np.ndarray, rel: np.ndarray, m: int, flips: int) -> list[int]:
    """Energy keys in time order (``FAMILY_ENERGY << 56 | 48 bits``); with ``flips``, also every
    combination of each key's ``flips`` least reliable bits flipped."""
    if bits.shape[0] == 0:
        return []
    w = _weights(KEY_BITS)
    base = (bits.astype(np.uint64) * w).sum(axis=1, dtype=np.uint64) | (_U(FAMILY_ENERGY) << _U(_FAMILY_SHIFT))
    out = [base]
    if flips:
        idx = np.argsort(rel, axis=1, kind="stable")[:, :flips]
        wsel = w[idx]
        for r in range(1, flips + 1):
            for combo in itertools.combinations(range(flips), r):
                out.append(base ^ np.bitwise_or.reduce(wsel[:, list(combo)], axis=1))
    vals = np.stack(out, axis=1).ravel() if flips else base
    return [int(v) for v in _kept(vals, m).tolist()]


def _unique(keys: list[int]) -> list[int]:
    """``keys`` without repeats, in first-seen order."""
    return list(dict.fromkeys(keys))


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


@lru_cache(maxsize=4)
def _vote_bit_sets(seed: int, nbits: int, subsets: int) -> np.ndarray:
    """Fixed (seeded) choice of ``nbits`` bit positions per subset: part of the key format."""
    rng = np.random.default_rng(seed)
    return np.stack([np.sort(rng.choice(32, size=nbits, replace=False)) for _ in range(subsets)])


def _vote_keys(fp: np.ndarray, sets: np.ndarray, family: int | None, sampling: int | None) -> list[int]:
    """Keys of bits voted over 8 frames (256 ms; >= 6 sound), ``subset << nbits | bits``, in the
    given family (``None``: format 1's untagged keys), kept by value, at most MAX_KEYS."""
    w = np.asarray(fp, dtype=np.uint32)
    win = KEY_WINDOW
    if w.size < win:
        return []
    nbits = sets.shape[1]
    valid = w != 0
    bits = np.unpackbits(w.astype(">u4").view(np.uint8).reshape(-1, 4), axis=1, bitorder="big").astype(np.int32)
    bits[~valid] = 0
    ones = np.cumsum(np.vstack([np.zeros((1, 32), np.int32), bits]), axis=0)
    ones = ones[win:] - ones[:-win]
    cnt = np.cumsum(np.concatenate([[0], valid.astype(np.int32)]))
    cnt = cnt[win:] - cnt[:-win]
    ok = cnt >= (3 * win) // 4
    # a tie (4 of 8) takes the middle frame's bit: "2 * ones > cnt" alone would make every tie a 0,
    # biasing keys towards mostly-zero values that unrelated recordings share
    middle = bits[win // 2 : win // 2 + ones.shape[0]]
    votes = ((2 * ones > cnt[:, None]) | ((2 * ones == cnt[:, None]) & (middle > 0)))[ok]
    if votes.shape[0] == 0:
        return []
    weights = (1 << np.arange(nbits - 1, -1, -1)).astype(np.int64)
    tag = 0 if family is None else family << _FAMILY_SHIFT
    per_subset = [tag | (t << nbits) | (votes[:, cols].astype(np.int64) @ weights) for t, cols in enumerate(sets)]
    stacked = np.stack(per_subset, axis=1).ravel()  # time order, subsets interleaved
    m = sampling if sampling is not None else key_sampling(int(valid.sum()))
    if family is None:  # format 1's own value rule
        h = (stacked * 0x9E3779B1) & 0xFFFFFFFF
        kept = stacked[(h >> 16) % m == 0]
    else:
        kept = _kept(stacked.astype(np.uint64), m)
    return _unique([int(k) for k in kept.tolist()])[:MAX_KEYS]


def word_keys(fp: np.ndarray, sampling: int | None = None) -> list[int]:
    """Coarse keys from the words (format 2, family :data:`FAMILY_WORDS`): 4 fixed sets of 18 bits
    voted over 8 frames. Stored only by *steady* recordings (whose energy keys do not survive a
    codec, measured); a (nearly) steady recording's lookup asks them (and ``results dedupe``
    always), and they meet only those recordings' keys."""
    return _vote_keys(fp, _vote_bit_sets(20261203, WORD_KEY_BITS, WORD_KEY_SUBSETS), FAMILY_WORDS, sampling)


def legacy_keys(fp: np.ndarray) -> list[int]:
    """Format-1 keys (stored before format 2): 2 fixed sets of 20 voted bits, ``subset << 20 | bits``.
    Only ``results dedupe`` asks them, to reach results stored in format 1 (see docs/fingerprint.md)."""
    return _vote_keys(fp, _vote_bit_sets(20261202, 20, 2), None, None)


def is_legacy_key(key: int) -> bool:
    """A format-1 key (no family bits)."""
    return 0 <= key < (1 << _FAMILY_SHIFT)


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
