"""Polyphase resampling in numpy: ``scipy.signal.resample_poly`` without importing ``scipy.signal``.

Why a copy of a scipy function: the screening processes decode and fingerprint every recording,
and ``scipy.signal`` is the heaviest import they would need (~50 MB resident, it pulls in
scipy.linalg, scipy.special, scipy.optimize ...) for two small functions, ``firwin`` and
``resample_poly``. The worker's memory goal (BENCHMARKS.md) counts every process, and the
screening processes each hold their own copy of whatever their imports touch, so the two
functions live here. They follow scipy 1.17's definitions (same filter, same output grid, same
length; tests compare them with scipy on the rate pairs the tool uses); sums run in another order,
so values agree to float rounding (float32: ~1e-7 relative), not bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

#: Output rows per matrix product: bounds the temporary copy numpy may make of a strided view.
ROWS = 4096


def lowpass_kaiser(numtaps: int, cutoff: float, beta: float = 5.0) -> np.ndarray:
    """``scipy.signal.firwin(numtaps, cutoff, window=("kaiser", beta))``: a linear-phase low-pass
    FIR filter, ``cutoff`` relative to Nyquist, scaled to unit gain at DC (float64)."""
    m = np.arange(numtaps, dtype=np.float64) - 0.5 * (numtaps - 1)
    h = cutoff * np.sinc(cutoff * m)
    h *= np.kaiser(numtaps, beta)
    return h / np.sum(h)


def default_filter(up: int, down: int) -> np.ndarray:
    """``resample_poly``'s own filter for ``up / down`` (already reduced): a Kaiser (beta 5)
    low-pass at ``1 / max(up, down)`` of Nyquist with ``10 * max(up, down)`` taps each side (float64)."""
    max_rate = max(up, down)
    return lowpass_kaiser(2 * 10 * max_rate + 1, 1.0 / max_rate)


def upfirdn(h: np.ndarray, x: np.ndarray, up: int, down: int) -> np.ndarray:
    """``scipy.signal.upfirdn(h, x, up, down)`` for 1-D inputs: upsample by ``up`` (zeros between
    samples), filter with ``h``, keep every ``down``-th sample.

    Polyphase: output ``n`` reads the input at ``i = n*down // up`` backwards with the taps
    ``h[t::up]`` of its phase ``t = n*down % up``; outputs of one phase are every ``up``-th one,
    and their inputs step by ``down``, so each phase is one product of a strided window view
    and a short filter (a few dozen taps), never the zero-stuffed signal.
    """
    h = np.asarray(h)
    x = np.asarray(x)
    up, down = int(up), int(down)
    dtype = np.result_type(h.dtype, x.dtype, np.float32)
    h = h.astype(dtype, copy=False)
    n_out = ((len(x) - 1) * up + len(h) - 1) // down + 1 if len(x) else 0
    y = np.zeros(n_out, dtype=dtype)
    if n_out == 0:
        return y
    taps = -(-len(h) // up)  # the longest phase filter
    # x with taps-1 zeros before (inputs before 0) and enough after (inputs past the end)
    last_i = ((n_out - 1) * down) // up
    xp = np.zeros(taps - 1 + max(len(x), last_i + 1), dtype=dtype)
    xp[taps - 1 : taps - 1 + len(x)] = x
    windows = np.lib.stride_tricks.sliding_window_view(xp, taps)  # windows[i] = x[i-taps+1 .. i]
    # phases[t] = h[t::up] reversed and zero-padded in front to ``taps``: aligned with windows[i],
    # whose last sample is x[i]
    flat = np.zeros(taps * up, dtype=dtype)
    flat[: len(h)] = h
    phases = flat.reshape(taps, up).T[:, ::-1]
    for n0 in range(min(up, n_out)):
        t, i0 = (n0 * down) % up, (n0 * down) // up
        count = len(range(n0, n_out, up))
        for a in range(0, count, ROWS):
            b = min(count, a + ROWS)
            rows = windows[i0 + a * down : i0 + (b - 1) * down + 1 : down]
            y[n0 + a * up : n0 + (b - 1) * up + 1 : up] = rows @ phases[t]
    return y


def resample_poly(x: np.ndarray, up: int, down: int, window: np.ndarray | None = None) -> np.ndarray:
    """``scipy.signal.resample_poly(x, up, down, window=window)`` for a 1-D signal, zero padding.

    ``window`` is the FIR filter itself (as in scipy when an array is given); None designs
    scipy's default, a Kaiser (beta 5) low-pass with ``10 * max(up, down)`` taps each side, in
    the signal's precision.
    """
    x = np.asarray(x)
    up, down = int(up), int(down)  # a numpy integer would promote a float32 filter to float64
    g = math.gcd(up, down)
    up, down = up // g, down // g
    if up == down == 1:
        return x.copy()
    n_in = len(x)
    n_out = -(-n_in * up // down)
    if window is None:
        h = default_filter(up, down)
        if np.issubdtype(x.dtype, np.floating):
            h = h.astype(x.dtype)  # as scipy: the designed filter takes the signal's precision
    else:
        h = np.array(window)
    half_len = (h.size - 1) // 2
    h = h * up
    n_pre_pad = down - half_len % down
    n_pre_remove = (half_len + n_pre_pad) // down
    n_post_pad = 0
    while _output_len(len(h) + n_pre_pad + n_post_pad, n_in, up, down) < n_out + n_pre_remove:
        n_post_pad += 1
    h = np.concatenate([np.zeros(n_pre_pad, h.dtype), h, np.zeros(n_post_pad, h.dtype)])
    return upfirdn(h, x, up, down)[n_pre_remove : n_pre_remove + n_out]


def resample(x: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``x`` at ``rate`` Hz as float32 samples at ``target`` Hz (:func:`resample_poly` by the reduced
    ratio): the one resampler of whole signals, for training and the synthetic generator alike."""
    if rate == target:
        return np.asarray(x, dtype=np.float32)
    return resample_poly(x, target, rate).astype(np.float32)


def _output_len(len_h: int, in_len: int, up: int, down: int) -> int:
    return ((in_len - 1) * up + len_h - 1) // down + 1
