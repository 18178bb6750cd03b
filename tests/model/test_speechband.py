"""Speech-band rhythm and SNR: speech hidden in noise is still told apart from noise alone."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly_cli import synth
from anomaly_cli.model.speechband import NAMES, measure


@pytest.mark.parametrize(
    "x",
    [
        np.zeros(0),
        np.zeros(1),
        np.zeros(16000),
        np.full(20000, np.nan),
        np.ones(16000),
        np.sign(np.sin(np.arange(32000) / 5.0)),
    ],
)
def test_finite_for_edge_inputs(x):
    got = measure(x.astype(np.float32))
    assert set(got) == set(NAMES) and all(np.isfinite(v) for v in got.values())


def test_rhythm_separates_buried_speech_from_noise_and_snr_from_tones():
    rng = np.random.default_rng(0)
    speech = synth.formant_speech(rng, 12.0)
    noise = synth.coloured_noise(rng, len(speech), "pink")
    clean, buried, alone = measure(speech), measure(synth.mix_at_snr(speech, noise, -2.0)), measure(noise)
    assert clean["band_rhythm_db"] > 12 and clean["band_snr_db"] > 30
    assert buried["band_rhythm_db"] > 3.2 > alone["band_rhythm_db"]  # the no_speech / noisy boundary
    assert 1.0 < buried["band_snr_db"] < 12.0  # the noisy threshold
    steady = synth.tone(rng, 16000 * 5, 16000)
    tone = measure(steady + 1e-3 * synth.coloured_noise(rng, len(steady)))  # a tone over a faint hiss
    assert tone["band_snr_db"] < 1.0 and tone["band_rhythm_db"] < 3.2
