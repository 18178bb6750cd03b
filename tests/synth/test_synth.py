"""The synthetic generator: deterministic, every kind present, labels mean what they say."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest

from anomaly_cli import synth
from anomaly_cli.synth import sources


def _hashes(folder) -> dict[str, str]:
    # OGG streams get a random serial number from libsndfile: compare their decoded audio instead
    from anomaly_cli.audio.decode import decode_bytes

    def digest(p) -> str:
        data = p.read_bytes()
        if p.suffix in (".ogg", ".opus") and not p.stem.split("_")[1].startswith("corrupt"):
            data = decode_bytes(data).samples.tobytes()
        return hashlib.sha256(data).hexdigest()

    return {p.name: digest(p) for p in sorted(folder.iterdir())}


def test_make_dataset_is_deterministic_and_covers_every_label(tmp_path):
    # GIVEN the same seed twice, WHEN a dataset is written, THEN the bytes are identical
    # (too_long is left out here only because its 4-5 minute files are slow to write; see below)
    kinds = [k for k in synth.LABELS if k != "too_long"]
    a = synth.make_dataset(tmp_path / "a", 11, seed=5, formats=("wav", "ogg", "mp3"), kinds=kinds, duplicates=1)
    b = synth.make_dataset(tmp_path / "b", 11, seed=5, formats=("wav", "ogg", "mp3"), kinds=kinds, duplicates=1)
    assert _hashes(a.parent) == _hashes(b.parent)
    with a.open() as f:
        rows = list(csv.DictReader(f))
    assert set(rows[0]) == {"file", "label", "variant", "format", "source", "duplicate_of"}
    labels = {r["label"] for r in rows}
    assert labels == set(kinds)
    assert all((a.parent / r["file"]).exists() for r in rows)
    dups = [r for r in rows if r["duplicate_of"]]
    assert len(dups) == 1 and (a.parent / dups[0]["duplicate_of"]).exists()
    c = synth.make_dataset(tmp_path / "c", 10, seed=6, formats=("wav", "mp3"), kinds=kinds)
    assert _hashes(c.parent) != _hashes(a.parent)


@pytest.mark.parametrize(
    "label,variant,lo,hi",
    [
        ("normal", "plain", -32.5, -9.5),
        ("normal", "quiet", -38.5, -31.5),
        ("low_volume", "far", -56, -44),
        ("silent", "hiss", -200, -62),
        ("silent", "zero", -200, -119),
    ],
)
def test_levels_follow_the_label_boundaries(label, variant, lo, hi):
    for seed in range(3):
        clip = synth.make_clip(label, np.random.default_rng(seed), variant=variant)
        assert lo <= synth.frame_level_db(clip.samples, clip.sr) <= hi


def test_kinds_have_their_physical_property():
    rng = np.random.default_rng(0)
    long = synth.make_clip("too_long", rng)
    assert 250 <= len(long.samples) / long.sr <= 290
    short = synth.make_clip("too_short", rng)
    assert len(short.samples) / short.sr < 2.0
    clipped = synth.make_clip("clipped", rng, variant="hard")
    assert np.mean(np.abs(clipped.samples) >= 0.999) > 0.005
    dc = synth.make_clip("dc_offset", rng)
    assert abs(float(np.mean(dc.samples))) >= 0.04
    tel = synth.make_clip("normal", rng, variant="telephone")
    assert tel.sr == 8000
    speech = synth.formant_speech(rng, 10.0)
    assert np.isfinite(speech).all() and 0.99 <= np.max(np.abs(speech)) <= 1.0
    # speech has pauses: a good share of 32 ms frames is far below the loud ones
    fr = speech[: len(speech) // 512 * 512].reshape(-1, 512)
    e = np.sqrt(np.mean(fr**2, axis=1))
    assert 0.1 < np.mean(e < 0.05 * e.max()) < 0.7


def test_noisy_speech_is_mixed_at_or_below_zero_db():
    rng = np.random.default_rng(3)
    s = synth.formant_speech(rng, 5.0)
    noise = synth.coloured_noise(rng, len(s), "pink")
    mixed = synth.mix_at_snr(s, noise, -3.0)
    scaled_noise = mixed - s
    assert np.sqrt(np.mean(scaled_noise**2)) > 0.5 * np.sqrt(np.mean(s**2))


def test_file_level_kinds():
    from anomaly_cli.audio.decode import decode_bytes
    from anomaly_cli.errors import DecodeError

    rng = np.random.default_rng(1)
    html = synth.make_item("corrupt", rng, variant="html")
    assert html.data.startswith(b"<!DOCTYPE html>")
    assert synth.make_item("corrupt", rng, variant="empty").data == b""
    cut = synth.make_item("truncated", np.random.default_rng(2))
    assert cut.fmt in ("wav", "flac", "mp3")
    try:
        assert decode_bytes(cut.data).truncated
    except DecodeError as e:  # cut before any audio: the decoder says so
        assert e.code in ("truncated", "empty")
    lossy = synth.make_item("clipped", rng, variant="lossy")
    assert lossy.fmt in ("mp3", "m4a")
    dc = synth.make_item("dc_offset", rng)
    assert dc.fmt in ("wav", "flac")


def test_optional_sources_fail_clearly_when_missing(monkeypatch):
    monkeypatch.setattr(sources.shutil, "which", lambda name: None)
    assert not synth.espeak_available()
    with pytest.raises(RuntimeError, match="espeak-ng is not installed"):
        synth.espeak_speech(np.random.default_rng(0), 2.0)
    monkeypatch.setattr(sources, "ALSA_DIR", Path("/nonexistent-alsa"))
    assert synth.alsa_files() == []
    with pytest.raises(RuntimeError, match="no wav files"):
        synth.alsa_speech(np.random.default_rng(0), 2.0)


@pytest.mark.skipif(not synth.espeak_available(), reason="espeak-ng not installed (optional source)")
def test_espeak_speech_when_installed():
    x = synth.espeak_speech(np.random.default_rng(0), 3.0)
    assert len(x) == 3 * synth.SR and np.max(np.abs(x)) > 0.5
