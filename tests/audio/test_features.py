"""Features: finite on edge inputs, and each one moves the right way on simple signals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from anomaly_cli import synth
from anomaly_cli.audio.features import FEATURE_DOCS, FEATURE_NAMES, extract

SR = 16_000


def _tone(f: float = 440.0, s: float = 5.0, amp: float = 0.3) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * f * np.arange(int(s * SR)) / SR)).astype(np.float32)


def _noise(s: float = 5.0, amp: float = 0.05, seed: int = 0) -> np.ndarray:
    return (amp * np.random.default_rng(seed).standard_normal(int(s * SR))).astype(np.float32)


def _speechlike(s: float = 5.0, seed: int = 0) -> np.ndarray:
    """Noise under a 4 Hz syllable envelope with pauses: the rhythm speech has and noise lacks."""
    t = np.arange(int(s * SR)) / SR
    env = np.clip(np.sin(2 * np.pi * 4.0 * t), 0, None) ** 2 * (np.sin(2 * np.pi * 0.4 * t) > -0.3)
    return (_noise(s, 0.2, seed) * env).astype(np.float32)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return synth.set_level(synth.formant_speech(np.random.default_rng(3), 8.0), SR, -20.0)


EDGE_INPUTS = {
    "empty": np.zeros(0, np.float32),
    "one_sample": np.array([0.5], np.float32),
    "zeros": np.zeros(SR, np.float32),
    "short_zeros": np.zeros(100, np.float32),
    "tone": _tone(),
    "square_full_scale": np.sign(_tone(100.0, 2.0, 1.0)).astype(np.float32),
    "dc_only": np.full(SR, 0.5, np.float32),
    "nan_inf": np.array([np.nan, np.inf, -np.inf, 0.1] * 1000, np.float32),
    "stereo": np.stack([_noise(1.0), _noise(1.0, seed=1)], axis=1),
}


@pytest.mark.parametrize("name", list(EDGE_INPUTS))
def test_every_feature_finite_on_edge_inputs(name: str) -> None:
    f = extract(EDGE_INPUTS[name])
    assert tuple(f) == FEATURE_NAMES
    bad = {k: v for k, v in f.items() if not (isinstance(v, float) and math.isfinite(v))}
    assert not bad


def test_names_are_documented_and_stable() -> None:
    assert set(FEATURE_NAMES) == set(FEATURE_DOCS) and len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    # names other modules and stored models rely on
    for name in (
        "duration_s",
        "rms_dbfs",
        "peak_dbfs",
        "level_p95_dbfs",
        "dynamic_range_db",
        "speech_ratio",
        "modulation_2_8hz",
        "snr_db",
        "clip_ratio",
        "dc_offset",
        "tail_energy_db",
        "mfcc12_std",
    ):
        assert name in FEATURE_NAMES


def test_levels_follow_gain_and_silence_is_floor() -> None:
    x = _speechlike()
    a, b = extract(x), extract(x * 0.1)
    assert b["rms_dbfs"] == pytest.approx(a["rms_dbfs"] - 20.0, abs=0.1)
    assert b["level_p95_dbfs"] == pytest.approx(a["level_p95_dbfs"] - 20.0, abs=0.1)
    assert b["peak_dbfs"] == pytest.approx(a["peak_dbfs"] - 20.0, abs=0.1)
    z = extract(np.zeros(3 * SR, np.float32))
    assert z["level_p95_dbfs"] == -120.0 and z["silence_ratio"] == 1.0 and z["speech_ratio"] == 0.0
    assert extract(np.zeros(3 * SR, np.float32))["duration_s"] == 3.0


def test_rhythm_and_activity_separate_speech_from_noise_and_tone(speech: np.ndarray) -> None:
    sp, mod, noise, tone = extract(speech), extract(_speechlike()), extract(_noise()), extract(_tone())
    for f in (sp, mod):
        assert f["speech_ratio"] > 0.2
        assert f["dynamic_range_db"] > 20.0
        assert f["modulation_2_8hz"] > 0.4
        assert f["low_energy_ratio"] > 0.3
        assert f["snr_db"] > 15.0
    for f in (noise, tone):
        assert f["speech_ratio"] < 0.05
        assert f["dynamic_range_db"] < 5.0
        assert f["low_energy_ratio"] < 0.1
        assert f["snr_db"] < 3.0
    assert noise["flatness_mean"] > 0.5 > tone["flatness_mean"]
    assert tone["stationary_tone_ratio"] > 0.9 and sp["stationary_tone_ratio"] < 0.2
    assert tone["tonal_peak_ratio"] > 0.9 > noise["tonal_peak_ratio"]
    assert sp["periodicity_mean"] > noise["periodicity_mean"] + 0.2
    assert sp["pitch_std_semitones"] > 0.5 > tone["pitch_std_semitones"]


def test_spectral_centroid_and_rolloff_track_frequency() -> None:
    lo, hi = extract(_tone(300.0)), extract(_tone(3000.0))
    assert lo["centroid_hz_mean"] == pytest.approx(300.0, abs=40.0)
    assert hi["centroid_hz_mean"] == pytest.approx(3000.0, abs=40.0)
    assert lo["rolloff_hz_mean"] < hi["rolloff_hz_mean"]
    assert lo["zcr_mean"] == pytest.approx(2 * 300 / SR, rel=0.05)


def test_hard_clipping_counts_plateau_runs(speech: np.ndarray) -> None:
    clean = extract(speech)
    gain = 1.0 / np.percentile(np.abs(speech), 95)
    clipped = extract(np.clip(speech * gain, -1.0, 1.0))
    assert clean["clip_ratio"] == 0.0
    assert clipped["clip_hard_ratio"] > 0.01 and clipped["clip_ratio"] >= clipped["clip_hard_ratio"]
    # isolated full-scale samples (no run of 3) are not clipping
    spikes = np.zeros(SR, np.float32)
    spikes[::100] = 1.0
    assert extract(spikes)["clip_hard_ratio"] == 0.0


def test_clipping_survives_lossy_reencoding(speech: np.ndarray) -> None:
    from anomaly_cli.audio.decode import decode_bytes
    from anomaly_cli.audio.formats import encode

    gain = 1.0 / np.percentile(np.abs(speech), 95)
    clipped = np.clip(speech * gain, -1.0, 1.0).astype(np.float32)
    for fmt in ("mp3", "m4a"):
        lossy = decode_bytes(encode(clipped * 0.8, SR, fmt)).samples  # plateau no longer at full scale
        f = extract(lossy)
        assert f["clip_hard_ratio"] < 0.001, fmt
        assert f["clip_plateau_ratio"] > 0.01 and f["clip_ratio"] > 0.01, fmt
        clean = extract(decode_bytes(encode(speech * 2.0, SR, fmt)).samples)
        assert clean["clip_ratio"] < 0.002, fmt


def test_dc_offset_is_the_mean_and_does_not_raise_level(speech: np.ndarray) -> None:
    a, b = extract(speech), extract(speech + 0.1)
    assert b["dc_offset"] == pytest.approx(0.1, abs=1e-3) and abs(a["dc_offset"]) < 1e-3
    assert b["rms_dbfs"] == pytest.approx(a["rms_dbfs"], abs=0.01)


def test_timing_features(speech: np.ndarray) -> None:
    pad = np.zeros(2 * SR, np.float32)
    f = extract(np.concatenate([pad, speech, pad]))
    assert f["leading_silence_s"] == pytest.approx(2.0, abs=0.4)
    assert f["longest_pause_s"] < 3.0
    assert f["tail_energy_db"] < -40.0  # ends in silence
    cut = extract(np.concatenate([pad, _speechlike(3.0)]))
    loud_end = extract(np.concatenate([pad, _noise(3.0, 0.1)]))
    assert loud_end["tail_energy_db"] > -3.0 > f["tail_energy_db"]
    gap = extract(np.concatenate([_speechlike(2.0), np.zeros(3 * SR, np.float32), _speechlike(2.0)]))
    assert 3.0 <= gap["longest_pause_s"] <= 4.0  # the pause plus the syllable troughs around it
    assert cut["duration_s"] == pytest.approx(5.0, abs=0.01)


def test_music_with_a_beat_has_regular_onsets(speech: np.ndarray) -> None:
    music = extract(synth.music(np.random.default_rng(0), 10 * SR, SR))
    assert music["flux_periodicity"] > 0.25 > extract(speech)["flux_periodicity"]


def test_mfcc_means_differ_between_timbres() -> None:
    a, b = extract(_noise()), extract(_tone())
    assert abs(a["mfcc1_mean"] - b["mfcc1_mean"]) > 5.0
    assert all(extract(_noise())[f"mfcc{i}_std"] >= 0.0 for i in range(13))


@pytest.mark.parametrize("kind", ["pink", "brown", "music", "hum", "chime"])
def test_coloured_noise_music_and_hum_are_not_speech(kind: str, speech: np.ndarray) -> None:
    rng = np.random.default_rng(4)
    n = 8 * SR
    x = synth.coloured_noise(rng, n, kind) if kind in ("pink", "brown") else getattr(synth, kind)(rng, n, SR)
    f = extract(synth.set_level(x, SR, -20.0))
    assert f["speech_ratio"] < 0.15 < extract(speech)["speech_ratio"]
    if kind in ("pink", "brown"):
        # in the speech band, noise has no syllable rhythm (broadband its low-frequency swell does)
        assert f["modulation_2_8hz"] < 0.25 < extract(speech)["modulation_2_8hz"]


def test_one_voice_is_periodic_at_its_loudest_and_other_voices_at_its_level_hide_that(speech: np.ndarray) -> None:
    # five other (formant) talkers at once, mixed by speech-band SNR over the reader's active frames
    babble = sum(synth.formant_speech(np.random.default_rng(10 + i), 8.0)[: speech.size] for i in range(5))
    mixes = (speech, synth.mix_at_snr(speech, babble, 10.0), synth.mix_at_snr(speech, babble, 0.0))
    clean, over, buried = (extract(x) for x in mixes)
    assert clean["voice_hnr_db"] > over["voice_hnr_db"] > buried["voice_hnr_db"] + 4.0
    # the pitch of the loudest frames hops between talkers only when they share the reader's level
    assert clean["voice_pitch_jumps"] < 0.05 and over["voice_pitch_jumps"] < 0.15 < buried["voice_pitch_jumps"]
    assert over["voice_clarity_db"] > 30.0 > 25.0 > buried["voice_clarity_db"]
    for f in (clean, over, buried):
        assert f["voice_clarity_db"] == pytest.approx(f["dominance_db"] + f["voice_hnr_db"])
    steady = extract(_noise())  # steady noise has no active frames: no voice to judge
    assert steady["voice_hnr_db"] == 0.0 and steady["voice_pitch_jumps"] == 0.0


def _tune(rng: np.random.Generator, s: float = 8.0, tuning: float = 0.0) -> np.ndarray:
    """Notes of 0.15-0.6 s, each a whole number of semitones from one reference (``tuning`` semitones off A)."""
    out = []
    while sum(x.size for x in out) < s * SR:
        f = 220.0 * 2 ** ((int(rng.integers(0, 13)) + tuning) / 12)
        t = np.arange(int(rng.uniform(0.15, 0.6) * SR)) / SR
        note = sum(0.6**k * np.sin(2 * np.pi * f * (k + 1) * t) for k in range(4)) * np.exp(-t * 2.0)
        out.append(note)
    return synth.set_level(np.concatenate(out)[: int(s * SR)].astype(np.float32), SR, -20.0)


@pytest.mark.parametrize("tuning", [0.0, 0.37])
def test_the_notes_of_a_tune_sit_on_a_12_tone_grid_and_speech_does_not(tuning: float, speech: np.ndarray) -> None:
    # the grid is the tune's own: any reference pitch (a detuned instrument) gives it
    assert extract(_tune(np.random.default_rng(5), tuning=tuning))["pitch_grid"] > 0.8
    assert extract(speech)["pitch_grid"] < 0.3
    # too little voicing to judge (< 0.5 s of voiced frames): 0
    assert extract(_tune(np.random.default_rng(5), s=0.3))["pitch_grid"] == 0.0
    assert extract(_noise())["pitch_grid"] == 0.0


def test_what_fills_the_median_frame_tells_a_buried_reader_from_one_over_quiet_babble(speech: np.ndarray) -> None:
    # a sparse reading (half of it pauses) under five other (formant) talkers
    sparse = np.concatenate([speech, np.zeros_like(speech)])
    babble = sum(synth.formant_speech(np.random.default_rng(20 + i), 16.0)[: sparse.size] for i in range(5))
    over, buried = (extract(synth.mix_at_snr(sparse, babble, snr))["loud_over_median_db"] for snr in (10.0, 0.0))
    assert over > 14.0 and buried < 12.0
    assert extract(_noise())["loud_over_median_db"] < 3.0  # steady noise: its level hardly moves
