"""The numpy polyphase resampler gives scipy.signal.resample_poly's output (the screening
processes use it so that they need not import scipy.signal)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from anomaly_cli.audio import resample


@pytest.mark.parametrize(("numtaps", "cutoff"), [(41, 0.5), (61, 1 / 3), (8821, 1 / 441), (6401, 1 / 320)])
def test_the_kaiser_lowpass_is_firwins(numtaps, cutoff):
    ours = resample.lowpass_kaiser(numtaps, cutoff)
    theirs = signal.firwin(numtaps, cutoff, window=("kaiser", 5.0))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-15)


# every source rate the decoder meets maps to 16 kHz by one of these; 16 k -> 8 k is the fingerprint's
@pytest.mark.parametrize(
    ("src", "dst"),
    [
        (44100, 16000),
        (48000, 16000),
        (22050, 16000),
        (8000, 16000),
        (11025, 16000),
        (32000, 16000),
        (24000, 16000),
        (16000, 8000),
    ],
)
@pytest.mark.parametrize("n", [0, 1, 7, 1000, 50_000])
def test_resample_poly_matches_scipy(src, dst, n):
    g = np.gcd(src, dst)
    up, down = dst // g, src // g
    x = np.random.default_rng(n + src).standard_normal(n).astype(np.float32)
    theirs = signal.resample_poly(x, up, down)
    ours = resample.resample_poly(x, up, down)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=2e-6)  # float32 sums in another order
    fir = signal.firwin(2 * 10 * max(up, down) + 1, 1.0 / max(up, down), window=("kaiser", 5.0)).astype(np.float32)
    np.testing.assert_allclose(
        resample.resample_poly(x, up, down, window=fir),
        signal.resample_poly(x, up, down, window=fir),
        rtol=0,
        atol=2e-6,
    )


def test_upfirdn_matches_scipy_when_phases_have_unequal_lengths():
    x = np.random.default_rng(2).standard_normal(3001)
    h = np.random.default_rng(3).standard_normal(37)  # 37 taps over 5 phases: 8 or 7 taps each
    np.testing.assert_allclose(resample.upfirdn(h, x, 5, 3), signal.upfirdn(h, x, 5, 3), rtol=0, atol=1e-12)


@pytest.mark.parametrize(("src", "dst"), [(22050, 16000), (48000, 16000), (16000, 8000), (16000, 16000)])
def test_resample_by_rates_is_resample_poly_by_the_reduced_ratio_in_float32(src, dst):
    # GIVEN a float64 signal (the generator's filters give float64), WHEN it is resampled by rates,
    # THEN it is scipy's resample_poly by the reduced ratio, as float32 (training and the generator's
    # espeak-ng, alsa and telephone paths use this one resampler)
    x = np.random.default_rng(src).standard_normal(3000)
    g = np.gcd(src, dst)
    ours = resample.resample(x, src, dst)
    theirs = signal.resample_poly(x, dst // g, src // g) if src != dst else x
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs.astype(np.float32), rtol=0, atol=1e-6)
