"""Fingerprint: re-encoded and gain-changed copies match, different readings of one rhythm do not."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly_cli import synth
from anomaly_cli.audio import fingerprint as fp
from anomaly_cli.audio.decode import decode_bytes
from anomaly_cli.audio.formats import encode

SR = 16_000


def _reading(seed: int, seconds: float = 12.0) -> np.ndarray:
    return synth.set_level(synth.formant_speech(np.random.default_rng(seed), seconds), SR, -20.0)


def _reencode(x: np.ndarray, fmt: str, gain: float = 1.0) -> np.ndarray:
    return decode_bytes(encode(x * gain, SR, fmt)).samples


@pytest.fixture(scope="module")
def readings() -> list[np.ndarray]:
    return [_reading(s) for s in (11, 12, 13)]


@pytest.fixture(scope="module")
def copies(readings: list[np.ndarray]) -> dict[tuple[int, str], np.ndarray]:
    """Each reading through MP3 and AAC (m4a), the AAC one also 8 dB quieter."""
    return {
        (i, fmt): fp.compute(_reencode(x, fmt, 0.4 if fmt == "m4a" else 1.0))
        for i, x in enumerate(readings)
        for fmt in ("mp3", "m4a")
    }


def test_shape_and_text_round_trip(readings: list[np.ndarray]) -> None:
    f = fp.compute(readings[0])
    assert f.dtype == np.uint32 and abs(f.size - 12.0 / 0.032) < 8
    text = fp.to_text(f)
    assert isinstance(text, str) and len(text) < 2 * 4 * f.size
    assert np.array_equal(fp.from_text(text), f)
    with pytest.raises(ValueError):
        fp.from_text("not base64!")
    with pytest.raises(ValueError):
        fp.from_text("AAA=")  # 2 bytes: not whole words


def test_reencoded_and_gain_changed_copies_match(readings, copies) -> None:
    for i, x in enumerate(readings):
        orig = fp.compute(x)
        assert fp.bit_error_rate(orig, fp.compute(x * 0.25)) < 0.02  # gain alone changes (almost) nothing
        for fmt in ("mp3", "m4a"):
            ber = fp.bit_error_rate(orig, copies[(i, fmt)])
            assert ber < 0.2, (i, fmt, ber)
            assert fp.is_match(orig, copies[(i, fmt)]) and fp.is_match(copies[(i, fmt)], orig)
        assert fp.is_match(copies[(i, "mp3")], copies[(i, "m4a")])  # copy vs copy, two codecs


def test_different_readings_of_the_same_rhythm_do_not_match(readings, copies) -> None:
    # same generator, same syllable rate and pitch range: the "same passage" by other children
    for i in range(len(readings)):
        for j in range(len(readings)):
            if i != j:
                a, b = fp.compute(readings[i]), copies[(j, "mp3")]
                assert fp.bit_error_rate(a, b) > 0.42
                assert not fp.is_match(a, b)


def test_shifted_copy_is_found_by_the_shift_search(readings) -> None:
    f = fp.compute(readings[0])
    late = fp.compute(np.concatenate([np.zeros(int(0.1 * SR), np.float32), readings[0]]))
    assert fp.bit_error_rate(f, late, max_shift=0) > 0.3  # misaligned by 3 frames
    assert fp.bit_error_rate(f, late) < 0.15


@pytest.mark.parametrize(
    "how",
    ["lead_silence_4s", "trim_start_0.5s", "trim_start_4.3s", "trim_end_4.7s", "cut_12s_of_40s"],
)
def test_trimmed_padded_and_cut_copies_align_and_share_query_keys(how) -> None:
    """Keys carry no frame position and alignment searches every offset: trims of seconds, silence
    and cuts line up (the old +-8-frame search and block-indexed keys lost a 0.5 s trim)."""
    x = _reading(5, 40.0)
    s = lambda t: int(t * SR)  # noqa: E731
    y = {
        "lead_silence_4s": np.concatenate([np.zeros(s(4.0), np.float32), x]),
        "trim_start_0.5s": x[s(0.5) :],
        "trim_start_4.3s": x[s(4.3) :],
        "trim_end_4.7s": x[: -s(4.7)],
        "cut_12s_of_40s": x[s(17.37) : s(29.37)],
    }[how]
    orig, copy = fp.compute(x), fp.compute(y)
    a = fp.align(orig, copy)
    assert a.ber < 0.2 and fp.is_match(orig, copy), a
    _, query = fp.fingerprint_and_query_keys(y)
    assert len(set(fp.band_keys(orig)) & set(query)) >= 2
    other = fp.compute(_reading(6, 40.0))
    assert fp.align(other, copy).ber > 0.4


def test_silence_matches_nothing(readings) -> None:
    silent = fp.compute(np.zeros(10 * SR, np.float32))
    assert not silent.any()
    assert fp.bit_error_rate(silent, silent) == 0.5 and not fp.is_match(silent, silent)
    assert not fp.is_match(silent, fp.compute(readings[0]))
    assert fp.band_keys(silent) == []
    assert fp.compute(np.zeros(0, np.float32)).size == 0


def test_band_keys_find_copies_and_few_strangers(readings, copies) -> None:
    keys = [fp.band_keys(fp.compute(x)) for x in readings]
    for i, k in enumerate(keys):
        assert 0 < len(k) <= fp.MAX_KEYS and len(set(k)) == len(k)
        for fmt in ("mp3", "m4a"):
            shared = set(k) & set(fp.band_keys(copies[(i, fmt)]))
            assert len(shared) >= 3, (i, fmt, len(shared))  # recall with room to spare
        for j in range(len(readings)):
            if j != i:
                assert len(set(k) & set(keys[j])) <= 1
    assert len(fp.band_keys(fp.compute(_reading(1, 60.0)))) < fp.MAX_KEYS  # ~6 a second of sound


def test_pcm_sha256_equal_for_same_audio_in_other_container(readings) -> None:
    x = (np.round(readings[0] * 32768.0) / 32768.0).astype(np.float32)  # exactly 16-bit audio
    wav, flac = decode_bytes(encode(x, SR, "wav")).samples, decode_bytes(encode(x, SR, "flac")).samples
    assert fp.pcm_sha256(wav) == fp.pcm_sha256(flac)
    assert fp.pcm_sha256(wav) != fp.pcm_sha256(wav * 0.5)
    assert fp.pcm_sha256(wav) == fp.pcm_sha256(x)
    assert fp.pcm_sha256(np.zeros(0, np.float32)) is None  # no sound: nothing to be a copy of
    assert fp.pcm_sha256(np.zeros(SR, np.float32)) is None  # digital silence: equal by construction


def test_edge_inputs_give_empty_or_valid_fingerprints(readings) -> None:
    assert fp.compute(np.array([0.3], np.float32)).size == 0
    assert fp.bit_error_rate(np.zeros(0, np.uint32), np.zeros(0, np.uint32)) == 0.5
    x = readings[1][: 4 * SR]
    stereo = fp.compute(np.stack([x, x], axis=1))  # (n, channels) is downmixed, not interleaved
    assert fp.bit_error_rate(stereo, fp.compute(x)) < 0.01
    assert fp.from_text("").size == 0


def test_lookup_keys_meet_no_stranger_but_the_copies(readings, copies) -> None:
    """Key format 2 is selective: a reading's lookup keys (flipped variants included) meet none of
    another reading's stored keys, while its codec copies share several (format 1's 20-bit keys
    with four query phases met ~14 % of unrelated recordings, most of a 10^5-result date)."""
    prints = [fp.fingerprint_and_query_keys(x) for x in readings]
    for i, (f, query) in enumerate(prints):
        assert f.keys and all(k >> 56 == fp.FAMILY_ENERGY for k in f.keys), "stored keys carry their family"
        assert not f.steady and not any(k >> 56 == fp.FAMILY_WORDS for k in query)  # steady ones' keys not asked
        for fmt in ("mp3", "m4a"):
            assert len(set(fp.band_keys(copies[(i, fmt)])) & set(query)) >= 3, (i, fmt)
        for j, (g, _) in enumerate(prints):
            if j != i:
                assert not set(query) & set(fp.band_keys(g)), (i, j)


def test_steady_recording_stores_word_keys_and_its_copy_meets_them() -> None:
    """Speech under stationary noise (here white noise at 0 dB SNR) barely changes block to block:
    its energy keys are fragile, so it also stores word keys, which every lookup asks."""
    x = _reading(21)
    rng = np.random.default_rng(3)
    noisy = (x + rng.standard_normal(x.size).astype(np.float32) * np.sqrt(float(np.mean(x**2)))).astype(np.float32)
    f = fp.compute(noisy)
    assert f.steady and not fp.compute(x).steady
    words = set(fp.word_keys(f))
    assert words and words <= set(fp.band_keys(f))
    copy, query = fp.fingerprint_and_query_keys(_reencode(noisy, "opus", 0.7))
    assert fp.is_match(f, copy)
    assert set(query) & words


def test_plain_words_give_format_1_and_word_keys_but_not_energy_keys(readings, copies) -> None:
    """Read back from storage (no audio), a fingerprint gives the keys its words allow: format-1
    keys (< 2**21, as stored before key format 2, still shared with a copy's) and word keys."""
    f = fp.compute(readings[0])
    words = fp.from_text(fp.to_text(f))
    with pytest.raises(TypeError):
        fp.band_keys(words)
    legacy = fp.legacy_keys(words)
    assert legacy and all(fp.is_legacy_key(k) and k < 2**21 for k in legacy)
    assert set(legacy) & set(fp.legacy_keys(copies[(0, "m4a")]))
    assert set(fp.lookup_keys_of_words(words)) == set(legacy) | set(fp.word_keys(words))


def test_words_do_not_depend_on_the_input_rate(readings) -> None:
    """The spectrum is taken at 16 kHz; the same audio given at 8 kHz gives the same words (the
    bands end at 3 kHz), as fingerprints stored by the first format (8 kHz analysis) do."""
    x = readings[1]
    assert fp.align(fp.compute(x), fp.compute(_decimate(x), 8000), max_shift=0).ber < 0.02


def _decimate(x: np.ndarray) -> np.ndarray:
    from anomaly_cli.audio.resample import resample_poly

    return resample_poly(x, 1, 2).astype(np.float32)
