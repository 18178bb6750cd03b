"""Duplicate matching on real recorded speech (issue 17): recall per transform, false links among
different recordings and voices, an estimate at 10^6 recordings, and the cost of a lookup.

For every original (real speech, ``bench/speech.py``) and every transform, a copy is made and
judged the way the worker judges it: *found* when the copy's lookup keys (``fp_query``: its stored
keys plus those of three sub-hop phases) share >= 1 key with the original's stored keys (the
indexed candidate query) **and** the fingerprints align at BER <= MATCH_BER; *both orders* also
asks it of the original looked up against the copy's stored keys (the copy screened first);
*sweep* asks it of the stored keys alone (``results dedupe``).

Distinct pairs: every original against every other original, every copy against every other
original, and five espeak-ng Marathi voices reading one passage against each other. For the
estimate at 10^6 recordings, each distinct pair's BER over all its offsets is summarised by its
mean and standard deviation; the chance that the best of its offsets falls to MATCH_BER is bounded
by (offsets) x P(Z <= z) with z = (MATCH_BER - mean) / std (a normal tail, union bound).

Run: ``.venv/bin/python bench/bench_duplicates.py`` (~5-10 min on 2 loaded cores; fetches the
speech once). Writes ``bench/sections/duplicates.md``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import speech
from common import machine, write_section

from anomaly_cli.audio import fingerprint as fp
from anomaly_cli.audio.decode import decode_bytes
from anomaly_cli.audio.formats import encode

SR = speech.SR


def _codec(fmt: str):
    def f(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        d = decode_bytes(encode(x * 10 ** (rng.uniform(-3, 3) / 20), SR, fmt))
        return d.samples, d.sample_rate

    return f


def _resample(rate: int):
    def f(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        from anomaly_cli.audio.resample import resample_poly

        g = np.gcd(rate, SR)
        return resample_poly(x, rate // g, SR // g).astype(np.float32), rate

    return f


def _gain(db: float):
    def f(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        y = x * 10 ** (db / 20)
        return np.clip(y, -1, 1).astype(np.float32), SR  # +10 dB clips the loudest peaks, as a phone would

    return f


def _silence(where: str):
    def f(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        pad = np.zeros(int(rng.uniform(0.2, 5.0) * SR), np.float32)
        pad += rng.standard_normal(pad.size).astype(np.float32) * 1e-4  # room tone, not digital zeros
        return (np.concatenate([pad, x]) if where == "lead" else np.concatenate([x, pad])), SR

    return f


def _trim(where: str):
    def f(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        n = int(rng.uniform(0.2, min(5.0, len(x) / SR / 3)) * SR)
        return (x[n:] if where == "start" else x[:-n]), SR

    return f


def _noise(snr_db: float):
    def f(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        p = float(np.mean(x**2))
        return (x + rng.standard_normal(x.size).astype(np.float32) * math.sqrt(p / 10 ** (snr_db / 10))), SR

    return f


TRANSFORMS = {
    "mp3": _codec("mp3"),
    "aac (m4a)": _codec("m4a"),
    "vorbis (ogg)": _codec("ogg"),
    "opus (ogg)": _codec("opus"),
    "opus (webm)": _codec("webm"),
    "amr-nb 8 kHz (3gp)": _codec("3gp"),
    "resample 44.1 kHz": _resample(44100),
    "resample 8 kHz": _resample(8000),
    "gain -10 dB": _gain(-10.0),
    "gain +10 dB": _gain(10.0),
    "leading silence <= 5 s": _silence("lead"),
    "trailing silence <= 5 s": _silence("trail"),
    "trim start <= 5 s": _trim("start"),
    "trim end <= 5 s": _trim("end"),
    "noise 20 dB SNR": _noise(20.0),
    "amr-nb + noise 20 dB": lambda x, rng: _codec("3gp")(_noise(20.0)(x, rng)[0], rng),
}


def _found(orig_fp, orig_keys, copy_fp, copy_keys) -> tuple[bool, float]:
    ber = fp.align(orig_fp, copy_fp).ber
    return bool(set(orig_keys) & set(copy_keys)) and ber <= fp.MATCH_BER, ber


def ber_curve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """BER at every offset with >= MIN_FRAMES frames of sound in both (the numbers align minimises)."""
    import scipy.fft

    sa, va = fp._planes(np.asarray(a, np.uint32))
    sb, vb = fp._planes(np.asarray(b, np.uint32))
    n = a.size + b.size - 1
    nfft = int(scipy.fft.next_fast_len(n, real=True))
    agree = scipy.fft.irfft((scipy.fft.rfft(sa, nfft, axis=0) * scipy.fft.rfft(sb[::-1], nfft, axis=0)).sum(1), nfft)
    ov = np.rint(scipy.fft.irfft(scipy.fft.rfft(va, nfft) * scipy.fft.rfft(vb[::-1], nfft), nfft))[:n]
    ok = ov >= fp.MIN_FRAMES
    return (0.5 - agree[:n] / (64.0 * np.maximum(ov, 1)))[ok]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=4, help="realisations of each random transform per original")
    ap.add_argument("--pool", type=int, default=150, help="synthetic readings for the lookup-volume estimate")
    ap.add_argument("--quick", action="store_true", help="1 trial, a pool of 10 (make bench --quick)")
    args = ap.parse_args()
    if args.quick:
        args.trials, args.pool = 1, 10
    t_start = time.perf_counter()
    rng = np.random.default_rng(20261202)

    origs = speech.recordings(15.0)
    print(
        f"{len(origs)} real recordings of {min(len(x) for _, x in origs) / SR:.1f}-"
        f"{max(len(x) for _, x in origs) / SR:.1f} s",
        file=sys.stderr,
    )
    ofp = [fp.compute(x) for _, x in origs]
    okeys = [fp.band_keys(f) for f in ofp]
    oquery = [fp.fingerprint_and_query_keys(x)[1] for _, x in origs]

    rows = []
    copies = []  # (orig index, copy fp)
    for tname, t in TRANSFORMS.items():
        live = both = sweep = n = 0
        worst = 0.0
        deterministic = tname.startswith(("resample", "gain"))
        for i, (_, x) in enumerate(origs):
            for _ in range(1 if deterministic else args.trials):
                y, sr = t(x, rng)
                cfp, cq = fp.fingerprint_and_query_keys(y, sr)
                ck = fp.band_keys(cfp)
                ok, ber = _found(ofp[i], okeys[i], cfp, cq)
                rev, _ = _found(cfp, ck, ofp[i], oquery[i])
                sw, _ = _found(ofp[i], okeys[i], cfp, ck)
                n += 1
                live += ok
                both += ok and rev
                sweep += sw
                worst = max(worst, ber)
                copies.append((i, cfp))
        rows.append((tname, n, live, both, sweep, worst))
        print(f"{tname}: {live}/{n} found, both orders {both}, sweep {sweep}, worst BER {worst:.3f}", file=sys.stderr)

    # a >= 10 s cut out of a longer recording (the original is the whole recording)
    longs = speech.long_recordings()
    lfp = [fp.compute(x) for _, x in longs]
    lkeys = [fp.band_keys(f) for f in lfp]
    lq = [fp.fingerprint_and_query_keys(x)[1] for _, x in longs]
    live = both = sweep = n = 0
    worst = 0.0
    for i, (_, x) in enumerate(longs):
        for _ in range(args.trials * 5):
            dur = rng.uniform(10.0, min(20.0, len(x) / SR - 1))
            a = int(rng.uniform(0, len(x) / SR - dur) * SR)
            cut = x[a : a + int(dur * SR)]
            cfp, cq = fp.fingerprint_and_query_keys(cut)
            ck = fp.band_keys(cfp)
            ok, ber = _found(lfp[i], lkeys[i], cfp, cq)
            rev, _ = _found(cfp, ck, lfp[i], lq[i])
            sw, _ = _found(lfp[i], lkeys[i], cfp, ck)
            n, live, both, sweep, worst = n + 1, live + ok, both + (ok and rev), sweep + sw, max(worst, ber)
    rows.append(("cut of 10-20 s out of a longer recording", n, live, both, sweep, worst))

    # distinct pairs
    distinct: list[float] = []
    estimates: list[float] = []
    for i in range(len(origs)):
        for j in range(len(origs)):
            if i < j:
                distinct.append(fp.align(ofp[i], ofp[j]).ber)
                c = ber_curve(ofp[i], ofp[j])
                if c.size > 10:
                    z = (fp.MATCH_BER - c.mean()) / c.std()
                    estimates.append(min(1.0, c.size * 0.5 * math.erfc(-z / math.sqrt(2))))
    cross = [fp.align(ofp[j], cfp).ber for i, cfp in copies for j in range(len(origs)) if j != i]
    voices = speech.espeak_readings()
    vfp = [fp.compute(x) for _, x in voices]
    same_text = [fp.align(vfp[i], vfp[j]).ber for i in range(len(vfp)) for j in range(i + 1, len(vfp))]
    sfp = [fp.compute(x) for _, x in speech.espeak_readings(same_pace=True)]
    same_pace = [fp.align(sfp[i], sfp[j]).ber for i in range(len(sfp)) for j in range(i + 1, len(sfp))]
    same_text_keys = [
        len(set(fp.band_keys(vfp[i])) & set(fp.band_keys(vfp[j])))
        for i in range(len(vfp))
        for j in range(i + 1, len(vfp))
    ]

    # lookup volume at 10^5 results: key-sharing among a pool of synthetic 30 s readings, scaled
    from anomaly_cli import synth

    pool_keys = []
    pool_q = []
    for s in range(args.pool):
        x = synth.set_level(synth.formant_speech(np.random.default_rng(10_000 + s), 30.0), SR, -20.0)
        f, q = fp.fingerprint_and_query_keys(x)
        pool_keys.append(set(fp.band_keys(f)))
        pool_q.append(set(q))
    real_sets = [set(k) for k in okeys]
    everyone = pool_keys + real_sets
    sharing = []
    entries = []
    for qi, q in enumerate(pool_q + [set(k) for k in oquery]):
        others = [k for ki, k in enumerate(everyone) if ki != qi]
        sharing.append(sum(1 for k in others if q & k) / len(others))
        entries.append(sum(len(q & k) for k in others) / len(others))
    n_big = 100_000
    docs_at = np.array(sharing) * n_big
    entries_at = np.array(entries) * n_big

    # cost per item (CPU, this process): fingerprint + stored keys vs + query keys; align per candidate
    x = synth.set_level(synth.formant_speech(np.random.default_rng(1), 60.0), SR, -20.0)
    reps = 5

    def timed(fn) -> float:
        fn()
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        return (time.perf_counter() - t0) / reps * 1000

    f60 = fp.compute(x)
    t_fp = timed(lambda: fp.band_keys(fp.compute(x)))
    t_q = timed(lambda: fp.fingerprint_and_query_keys(x))
    t_align = timed(lambda: fp.align(f60, f60))
    load = os.getloadavg()

    lines = [
        "## Duplicate matching on real speech (issue 17)",
        "",
        f"`.venv/bin/python bench/bench_duplicates.py --trials {args.trials} --pool {args.pool}` on {machine()}; "
        f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (machine shared with other engineers); "
        f"{time.perf_counter() - t_start:.0f} s.",
        "",
        f"Originals: {len(origs)} real recordings of {min(len(x) for _, x in origs) / SR:.0f}-"
        f"{max(len(x) for _, x in origs) / SR:.0f} s (Debian codec2-examples: studio, telephone and noisy HF-radio "
        "English, several speakers; the pyannote.audio sample: two-speaker telephone English); each random "
        f"transform {args.trials} times per original with its own draw (codecs also at a random gain of +-3 dB). "
        "*Found*: the copy's lookup keys share >= 1 stored key of the original and the fingerprints align at "
        f"BER <= {fp.MATCH_BER} (what the worker's live check asks); *both orders*: also the original looked up "
        "against the copy; *sweep*: stored keys on both sides (`results dedupe`).",
        "",
        "| transform | copies | found | both orders | sweep | worst BER |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for tname, n, live, both, sweep, worst in rows:
        lines.append(
            f"| {tname} | {n} | {live}/{n} ({live / n:.0%}) | {both / n:.0%} | {sweep / n:.0%} | {worst:.3f} |"
        )
    d = np.array(distinct)
    cr = np.array(cross)
    worst_est = max(estimates) if estimates else float("nan")
    lines += [
        "",
        f"Distinct recordings (different speakers and texts, and different parts of one speaker's recording): "
        f"{len(d)} pairs, lowest BER {d.min():.3f} (1st percentile {np.percentile(d, 1):.3f}); every copy against every "
        f"other original: {len(cr)} pairs, lowest {cr.min():.3f}; **false links: {int((d <= fp.MATCH_BER).sum())} "
        f"+ {int((cr <= fp.MATCH_BER).sum())}**.",
        f"Different voices reading the same Marathi passage (espeak-ng, synthetic: no real recordings of one text by "
        f"several speakers ship in a package), each at its own pace and pitch: {len(same_text)} pairs, lowest BER "
        + (f"{min(same_text):.3f}, keys shared at most {max(same_text_keys)}" if same_text else "n/a (no espeak-ng)")
        + f"; false links **{sum(b <= fp.MATCH_BER for b in same_text)}**. "
        + (
            f"The same five voices at one pace (every phoneme equally long in all five, which no two readers "
            f"manage): lowest BER {min(same_pace):.3f}, {sum(b <= fp.MATCH_BER for b in same_pace)} of "
            f"{len(same_pace)} pairs at or under {fp.MATCH_BER}: one synthesis re-timbred is a transformed copy to "
            "this fingerprint."
            if same_pace
            else ""
        ),
        "",
        "Estimate at 10^6 recordings: per distinct pair of real recordings, the BER over all its offsets has a mean "
        "and a standard deviation (correlated bits make it wider than independent bits would); the chance that the "
        f"best offset reaches {fp.MATCH_BER} is at most (offsets) x P(Z <= ({fp.MATCH_BER} - mean) / std). Worst pair: "
        f"{worst_est:.1e}, median {np.median(estimates):.1e}. A new recording verifies at most "
        "20 candidates, so 10^6 recordings make <= 2 x 10^7 verifications: <= "
        f"{min(1.0, 2e7 * worst_est):.1e} expected false links at the worst pair's rate (and at most 10^6 x 20 "
        "even if every test date held all 10^6).",
        "",
        f"Lookup volume with 10^5 results in a test date (key sharing among {args.pool} synthetic 30 s readings + the "
        f"real originals, scaled linearly): a lookup's keys meet a median {np.median(docs_at):.0f} "
        f"(95th percentile {np.percentile(docs_at, 95):.0f}) results and {np.median(entries_at):.0f} index entries "
        f"({np.percentile(entries_at, 95):.0f}); MongoDB ranks them by keys shared in the one aggregation and the "
        "worker verifies 20.",
        "",
        f"Cost per item (60 s reading, one core): fingerprint + stored keys {t_fp:.1f} ms; with the lookup keys of "
        f"four phases {t_q:.1f} ms ({t_q / t_fp:.2f}x); one alignment {t_align:.2f} ms, so 20 candidates "
        f"{20 * t_align:.0f} ms.",
    ]
    write_section("duplicates", "\n".join(lines))


if __name__ == "__main__":
    main()
