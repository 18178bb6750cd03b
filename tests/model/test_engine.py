"""The engine facade with the shipped model: every reason code from generated audio."""

from __future__ import annotations

import pickle
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

import numpy as np
import pytest

from anomaly_cli import errors, synth
from anomaly_cli.audio.formats import encode
from anomaly_cli.model import engine
from anomaly_cli.screening import REASON_CODES
from tests.model.conftest import MODELS

# label, variant, format, seed: one recording per reason code and per rule-fooling variant
CASES = [
    ("silent", "zero", "wav", 1),
    ("silent", "hiss", "mp3", 2),
    ("low_volume", "far", "m4a", 3),
    ("no_speech", "pink", "ogg", 4),
    ("no_speech", "hum", "wav", 5),
    ("no_speech", "music", "mp3", 6),
    ("no_speech", "chime", "m4a", 7),
    ("no_speech", "tone", "flac", 8),
    ("noisy", "white", "wav", 9),
    ("noisy", "babble", "opus", 10),
    ("clipped", "hard", "wav", 11),
    ("clipped", "lossy", "mp3", 12),
    ("dc_offset", "offset", "wav", 13),
    ("too_short", "short", "3gp", 14),
    ("truncated", "cut", "wav", 15),
    ("corrupt", "html", "wav", 16),
    ("corrupt", "random", "mp3", 17),
    ("corrupt", "empty", "wav", 18),
    ("corrupt", "header", "m4a", 19),
]


@pytest.mark.parametrize("label,variant,fmt,seed", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_every_reason_code_from_generated_audio(shipped_model, make_audio, label, variant, fmt, seed):
    s = engine.screen_bytes(make_audio(label, seed, variant, fmt), shipped_model)
    assert s.is_anomaly and s.reason_codes[0] == label, s.reasons
    first = s.reasons[0]
    if label not in ("corrupt", "truncated"):
        assert first.value is not None and first.threshold is not None
    assert 0.5 <= s.anomaly_score <= 1.0


@pytest.mark.parametrize("variant", synth.VARIANTS["normal"])
def test_hard_but_fine_normals_pass(shipped_model, make_audio, variant):
    s = engine.screen_bytes(make_audio("normal", 40, variant, "m4a"), shipped_model)
    assert not s.is_anomaly, s.reasons
    assert 0.0 <= s.anomaly_score < 0.5


def test_screening_carries_decode_facts_hashes_fingerprint_and_timings(shipped_model, make_audio):
    import hashlib

    from anomaly_cli.audio import fingerprint

    data = make_audio("normal", 3, "plain", "mp3")
    s = engine.screen_bytes(data, shipped_model)
    a = s.audio
    assert a["format"] == "mp3" and a["channels"] == 1 and a["bytes"] == len(data)
    assert a["sha256"] == hashlib.sha256(data).hexdigest() and len(a["pcm_sha256"]) == 64
    assert a["truncated"] is False and 5 < a["duration_s"] < 31 and a["sample_rate"] > 0
    assert fingerprint.from_text(a["fingerprint"]).size > 0 and a["fp_bands"]
    assert set(s.timings_ms) == {"decode", "features", "inference"}
    assert s.model_version == shipped_model.version and set(s.features) >= {"duration_s"}
    assert pickle.loads(pickle.dumps(s)) == s


def test_re_encoded_copy_is_a_duplicate_by_fingerprint(shipped_model):
    from anomaly_cli.audio import fingerprint

    clip = synth.make_clip("normal", np.random.default_rng(21), variant="plain", duration_s=12)
    other = synth.make_clip("normal", np.random.default_rng(22), variant="plain", duration_s=12)
    fps = [
        engine.screen_bytes(encode(x, 16000, fmt), shipped_model).audio["fingerprint"]
        for x, fmt in ((clip.samples, "wav"), (clip.samples * 0.7, "mp3"), (other.samples, "wav"))
    ]
    a, b, c = (fingerprint.from_text(t) for t in fps)
    assert fingerprint.is_match(a, b) and not fingerprint.is_match(a, c)


def test_decode_failures_are_answers_not_exceptions(shipped_model, make_audio):
    html = engine.screen_bytes(make_audio("corrupt", 1, "html"), shipped_model)
    assert html.status == "failed" and html.reason_codes == ["corrupt"]
    assert html.error["stage"] == "decode" and html.error["code"] == "not_audio"
    assert html.audio["bytes"] > 0 and len(html.audio["sha256"]) == 64
    # an m4a cut before its index (moov at the end) cannot be decoded but is reported as truncated
    clip = synth.make_clip("normal", np.random.default_rng(5), variant="plain", duration_s=8)
    m4a = encode(clip.samples, clip.sr, "m4a", faststart=False)
    cut = engine.screen_bytes(m4a[: len(m4a) // 2], shipped_model)
    assert cut.reason_codes == ["truncated"] and cut.status == "failed"


def test_duration_cap_is_too_long_and_failed(shipped_model, make_audio):
    s = engine.screen_bytes(make_audio("normal", 2, "plain", "flac"), shipped_model, max_duration_s=3.0)
    assert s.status == "failed" and s.error["code"] == "duration_over_cap" and s.reason_codes == ["too_long"]
    assert s.audio["duration_s"] <= 3.01


def test_long_recording_under_the_cap_is_too_long_by_rule(shipped_model):
    # a recorder left running: 20 s of reading repeated past 4 minutes (8 kHz keeps the file small)
    x = np.tile(synth.make_clip("normal", np.random.default_rng(3), variant="plain", duration_s=20).samples[::2], 13)
    s = engine.screen_bytes(encode(x, 8000, "flac"), shipped_model)
    assert s.status == "ok" and "too_long" in s.reason_codes


@pytest.mark.parametrize(
    "exc",
    [
        errors.NotFound("no such key"),
        errors.AccessDenied("403"),
        errors.TooLarge("over the cap"),
        errors.UrlNotAllowed("not allowed"),
    ],
)
def test_fetch_errors_are_unavailable(exc):
    s = engine.screen_fetch_error(exc, "v9")
    assert s.status == "failed" and s.reason_codes == ["unavailable"]
    assert s.error == {"code": exc.code, "message": str(exc), "stage": "fetch"} and s.model_version == "v9"


def test_outlier_only_when_no_rule_explains(shipped_model, make_audio):
    strict = replace(shipped_model, outlier=replace(shipped_model.outlier, threshold=-10.0))
    ok = engine.screen_bytes(make_audio("normal", 8, "plain"), strict)
    assert ok.reason_codes == ["outlier"] and ok.reasons[0].threshold == -10.0
    silent = engine.screen_bytes(make_audio("silent", 8, "zero"), strict)
    assert silent.reason_codes == ["silent"]  # a rule explains it: no extra 'outlier'
    assert set(ok.reason_codes + silent.reason_codes) <= set(REASON_CODES)


def test_mismatched_artifact_fails_clearly(tmp_path, shipped_model):
    import json
    import shutil

    shutil.copytree(shipped_model.path, tmp_path / "v1")
    meta = json.loads((tmp_path / "v1" / "metadata.json").read_text())
    meta["feature_names"] = [*meta["feature_names"], "no_such_feature"]
    (tmp_path / "v1" / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(errors.ModelError, match=r"feature names differ.*unknown \['no_such_feature'\]"):
        engine.load_model(tmp_path)
    meta["feature_names"] = shipped_model.metadata["feature_names"]
    del meta["rules"]
    (tmp_path / "v1" / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(errors.ModelError, match="no valid 'rules'"):
        engine.load_model(tmp_path, "v1")


def test_screen_in_worker_processes(make_audio):
    datas = [make_audio("normal", 1, "plain"), make_audio("silent", 1, "zero")]
    with ProcessPoolExecutor(max_workers=1, initializer=engine.init_process, initargs=(str(MODELS), None)) as pool:
        got = list(pool.map(engine.screen_in_process, datas, [600.0, 600.0]))
    assert [g.is_anomaly for g in got] == [False, True] and got[1].reason_codes == ["silent"]


@pytest.mark.parametrize("fmt,level", [("3gp", -20.0), ("wav", -52.0)])
def test_quiet_noise_is_low_volume_and_no_speech_quiet_speech_only_low_volume(shipped_model, fmt, level):
    # Brown noise at -20 dBFS through AMR-NB (3gp) loses its rumble and is left at ~-54 dBFS: it
    # must still be told from quiet speech, by activity and rhythm (relative to the recording's
    # own floor), not by level.
    rng = np.random.default_rng(21)
    noise = synth.set_level(synth.coloured_noise(rng, 16000 * 12, "brown"), 16000, level)
    s = engine.screen_bytes(encode(noise, 16000, fmt), shipped_model)
    assert s.reason_codes[:2] == ["low_volume", "no_speech"], s.reasons  # level first, then content
    quiet = synth.set_level(synth.speech(rng, 12.0, 16000), 16000, -52.0)
    s = engine.screen_bytes(encode(quiet, 16000, fmt), shipped_model)
    assert s.reason_codes == ["low_volume"], s.reasons
