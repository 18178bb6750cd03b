"""Duplicate matching on real recorded speech (issue 17): recall per transform, false links among
different recordings and voices, an estimate at 10^6 recordings, and the cost of a lookup.

For every original (real speech, ``bench/speech.py``) and every transform, a copy is made and
judged the way the worker judges it: *found* when the copy's lookup keys (``fp_query``: its stored
keys, their variants with the least reliable bits flipped, and word keys) share >= 1 key with the
original's stored keys (the indexed candidate query) **and** the fingerprints align at BER <=
MATCH_BER; *both orders* also asks it of the original looked up against the copy's stored keys
(the copy screened first); *sweep* asks it of what a stored result gives without its audio
(``results dedupe``: stored keys plus the keys of its stored words). *Format 1* is the same
question with the keys stored before key format 2 (20-bit voted keys, four sub-hop query phases),
computed in the same run on the same copies: the before/after comparison.

Distinct pairs: every original against every other original, every copy against every other
original, and five espeak-ng Marathi voices reading one passage against each other. For the
estimate at 10^6 recordings, each distinct pair's BER over all its offsets is summarised by its
mean and standard deviation; the chance that the best of its offsets falls to MATCH_BER is bounded
by (offsets) x P(Z <= z) with z = (MATCH_BER - mean) / std (a normal tail, union bound).

Lookup volume with 10^5 results: every recording's stored keys (real originals, a pool of
synthetic readings) go into an inverted index (key -> results, what the multikey index holds)
filled to 10^5 results by repeating the pool; each recording's lookup keys are asked of it
(its own copies left out) and the results met are counted, in format 2 and format 1.

Run: ``.venv/bin/python bench/bench_duplicates.py`` (~5-10 min on 2 cores; fetches the speech
once). Writes ``bench/sections/duplicates.md``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"  # one thread per process, as the worker's screening processes run

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import speech  # noqa: E402
from common import machine, write_section  # noqa: E402

from anomaly_cli.audio import fingerprint as fp  # noqa: E402
from anomaly_cli.audio.decode import decode_bytes  # noqa: E402
from anomaly_cli.audio.formats import encode  # noqa: E402

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


def sweep_keys(f: np.ndarray) -> list[int]:
    """What ``results dedupe`` looks a stored result up with (repository.fp_lookup_keys)."""
    return sorted(set(fp.band_keys(f)) | set(fp.lookup_keys_of_words(f)))


def format1_query(y: np.ndarray, sr: int) -> list[int]:
    """Format 1's lookup keys: its 20-bit keys of the audio at four sub-hop phases (as before)."""
    x = fp._at_rate(y, sr)
    step = fp.HOP // 4
    keys: set[int] = set()
    for p in range(4):
        keys.update(fp.legacy_keys(fp._words(x[p * step :])))
    return sorted(keys)


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
    o1keys = [fp.legacy_keys(f) for f in ofp]

    rows = []
    copies = []  # (orig index, copy fp)
    misses = []  # (transform, original, BER, keys shared) of copies not found
    for tname, t in TRANSFORMS.items():
        live = both = sweep = n = f1 = 0
        worst = 0.0
        deterministic = tname.startswith(("resample", "gain"))
        for i, (_, x) in enumerate(origs):
            for _ in range(1 if deterministic else args.trials):
                y, sr = t(x, rng)
                cfp, cq = fp.fingerprint_and_query_keys(y, sr)
                ck = fp.band_keys(cfp)
                ok, ber = _found(ofp[i], okeys[i], cfp, cq)
                rev, _ = _found(cfp, ck, ofp[i], oquery[i])
                sw, _ = _found(ofp[i], okeys[i], cfp, sweep_keys(cfp))
                old = ber <= fp.MATCH_BER and bool(set(o1keys[i]) & set(format1_query(y, sr)))
                n += 1
                live += ok
                both += ok and rev
                sweep += sw
                f1 += old
                worst = max(worst, ber)
                copies.append((i, cfp))
                if not ok:
                    misses.append((tname, origs[i][0], ber, len(set(okeys[i]) & set(cq)), ofp[i].steady))
        rows.append((tname, n, live, both, sweep, worst, f1))
        print(
            f"{tname}: {live}/{n} found, both orders {both}, sweep {sweep}, format 1 {f1}, worst BER {worst:.3f}",
            file=sys.stderr,
        )

    # a >= 10 s cut out of a longer recording (the original is the whole recording)
    longs = speech.long_recordings()
    lfp = [fp.compute(x) for _, x in longs]
    lkeys = [fp.band_keys(f) for f in lfp]
    lq = [fp.fingerprint_and_query_keys(x)[1] for _, x in longs]
    l1keys = [fp.legacy_keys(f) for f in lfp]
    live = both = sweep = n = f1 = 0
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
            sw, _ = _found(lfp[i], lkeys[i], cfp, sweep_keys(cfp))
            old = ber <= fp.MATCH_BER and bool(set(l1keys[i]) & set(format1_query(cut, SR)))
            n, live, both, sweep, worst = n + 1, live + ok, both + (ok and rev), sweep + sw, max(worst, ber)
            f1 += old
            if not ok:
                misses.append(("cut", longs[i][0], ber, len(set(lkeys[i]) & set(cq)), lfp[i].steady))
    rows.append(("cut of 10-20 s out of a longer recording", n, live, both, sweep, worst, f1))

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
    vfq = [fp.fingerprint_and_query_keys(x) for _, x in voices]
    vfp = [f for f, _ in vfq]
    same_text = [fp.align(vfp[i], vfp[j]).ber for i in range(len(vfp)) for j in range(i + 1, len(vfp))]
    sfp = [fp.compute(x) for _, x in speech.espeak_readings(same_pace=True)]
    same_pace = [fp.align(sfp[i], sfp[j]).ber for i in range(len(sfp)) for j in range(i + 1, len(sfp))]
    same_text_keys = [  # a lookup's keys (query) against another voice's stored keys
        len(set(vfq[i][1]) & set(fp.band_keys(vfp[j]))) for i in range(len(vfp)) for j in range(len(vfp)) if i != j
    ]

    # lookup volume at 10^5 results: an inverted index (key -> results) of 10^5 stored key sets
    from anomaly_cli import synth

    pool_x = [x for _, x in origs] + [
        synth.set_level(synth.formant_speech(np.random.default_rng(10_000 + s), 30.0), SR, -20.0)
        for s in range(args.pool)
    ]
    pool_x += [x for _, x in voices]
    pool_fp, pool_q, pool_q1 = [], [], []
    for x in pool_x:
        f, q = fp.fingerprint_and_query_keys(x)
        pool_fp.append(f)
        pool_q.append(q)
        pool_q1.append(format1_query(x, SR))
    n_big = 100_000
    n_pool = len(pool_x)
    volume = {}
    for label, stored_of, query_of in (
        ("format 2", lambda i: fp.band_keys(pool_fp[i]), lambda i: pool_q[i]),
        ("format 1", lambda i: fp.legacy_keys(pool_fp[i]), lambda i: pool_q1[i]),
    ):
        postings: dict[int, list[int]] = {}
        for d in range(n_big):  # result d holds pool recording d % n_pool's stored keys
            for k in stored_of(d % n_pool):
                postings.setdefault(k, []).append(d)
        met, touched, secs, met_steady = [], [], [], []
        for i in range(n_pool):
            t0 = time.perf_counter()
            hit: set[int] = set()
            entries = 0
            for k in query_of(i):
                ds = postings.get(k)
                if ds:
                    entries += len(ds)
                    hit.update(ds)
            secs.append(time.perf_counter() - t0)
            strangers = [d for d in hit if d % n_pool != i]  # its own repeats are copies, not strangers
            met.append(len(strangers))
            met_steady.append(sum(1 for d in strangers if pool_fp[d % n_pool].steady))
            touched.append(entries)
        volume[label] = (
            np.array(met),
            np.array(touched),
            np.array(secs),
            sum(len(v) for v in postings.values()),
            np.array(met_steady),
        )
        del postings
    steady_pool = sum(bool(f.steady) for f in pool_fp)
    q_sizes = np.array([len(q) for q in pool_q])
    s_sizes = np.array([len(fp.band_keys(f)) for f in pool_fp])

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
    xs = (x + np.random.default_rng(2).standard_normal(x.size).astype(np.float32) * float(np.std(x))).astype(np.float32)
    t_qs = timed(lambda: fp.fingerprint_and_query_keys(xs))  # 0 dB white noise: a steady recording
    t_align = timed(lambda: fp.align(f60, f60))
    load = os.getloadavg()

    lines = [
        "## Duplicate matching on real speech (issue 17)",
        "",
        f"`.venv/bin/python bench/bench_duplicates.py --trials {args.trials} --pool {args.pool}` on {machine()}, "
        f"one thread per process (as the worker's screening processes); load average {load[0]:.1f} / {load[1]:.1f} / "
        f"{load[2]:.1f} at the end; {time.perf_counter() - t_start:.0f} s.",
        "",
        f"Originals: {len(origs)} real recordings of {min(len(x) for _, x in origs) / SR:.0f}-"
        f"{max(len(x) for _, x in origs) / SR:.0f} s (Debian codec2-examples: studio, telephone and noisy HF-radio "
        "English, several speakers; the pyannote.audio sample: two-speaker telephone English); each random "
        f"transform {args.trials} times per original with its own draw (codecs also at a random gain of +-3 dB). "
        "*Found*: the copy's lookup keys share >= 1 stored key of the original and the fingerprints align at "
        f"BER <= {fp.MATCH_BER} (what the worker's live check asks); *both orders*: also the original looked up "
        "against the copy; *sweep*: a stored result's keys without its audio (`results dedupe`); *format 1*: "
        "found with the keys used before key format 2 (20-bit voted keys, four sub-hop query phases), same copies, "
        "same run.",
        "",
        f"| transform | copies | found (format {fp.KEY_FORMAT}) | both orders | sweep | format 1 (before) | worst BER |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for tname, n, live, both, sweep, worst, f1 in rows:
        lines.append(
            f"| {tname} | {n} | {live}/{n} ({live / n:.0%}) | {both / n:.0%} | {sweep / n:.0%} | "
            f"{f1}/{n} ({f1 / n:.0%}) | {worst:.3f} |"
        )
    total = sum(r[1] for r in rows)
    lines += [
        f"| **all** | {total} | {sum(r[2] for r in rows)}/{total} | {sum(r[3] for r in rows) / total:.1%} | "
        f"{sum(r[4] for r in rows) / total:.1%} | {sum(r[6] for r in rows)}/{total} | |",
        "",
        "Copies not found (transform, original, BER, keys shared with the original, original steady): "
        + (
            "; ".join(f"{t} of {o} at {b:.3f}, {k} keys{' (steady)' if st else ''}" for t, o, b, k, st in misses)
            if misses
            else "none"
        )
        + ".",
    ]
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
        + (
            f"{min(same_text):.3f}, lookup keys meeting another voice's stored keys at most {max(same_text_keys)}"
            if same_text
            else "n/a (no espeak-ng)"
        )
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
        f"Lookup volume with 10^5 results in one test date: an inverted index (key -> results, what the multikey "
        f"index holds) of 10^5 results, each holding the stored keys of one of {n_pool} distinct recordings (the "
        f"{len(origs)} real originals, {args.pool} synthetic 30 s readings, {len(voices)} espeak-ng voices; repeated to "
        f"10^5), asked with each recording's lookup keys (its own repeats left out). Format {fp.KEY_FORMAT}: "
        f"{np.median(s_sizes):.0f} stored and {np.median(q_sizes):.0f} lookup keys per recording (median); "
        f"{steady_pool} of {n_pool} recordings steady (they also store word keys).",
        "",
        "| keys | index entries at 10^5 | results met per lookup: median | mean | 95th pct | max | "
        "index entries read per lookup (median) | lookup in this Python index (ms, median) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, (met, touched, secs, size, _steady) in volume.items():
        lines.append(
            f"| {label} | {size:,} | {np.median(met):,.0f} | {met.mean():,.0f} | {np.percentile(met, 95):,.0f} | "
            f"{met.max():,} | {np.median(touched):,.0f} | {np.median(secs) * 1000:.2f} |"
        )
    met, _, _, _, met_steady = volume["format 2"]
    other = met - met_steady
    n_steady_docs = sum(1 for d in range(n_big) if pool_fp[d % n_pool].steady)
    lines += [
        "",
        f"Of the results a format-2 lookup meets, the steady ones (word keys; {n_steady_docs:,} of the 10^5 here): "
        f"mean {met_steady.mean():,.0f}, i.e. {met_steady.mean() / max(1, n_steady_docs):.0%} of them; the others "
        f"(energy keys): mean {other.mean():,.1f}, median {np.median(other):,.0f}, max {other.max():,}. "
        "Steady results are met only by the lookups of (nearly) steady recordings, which ask word keys; "
        "index entries read include the recording's own repeats.",
    ]
    lines += [
        "",
        f"Results met come in steps of 10^5 / {n_pool} = {n_big / n_pool:.0f} (each distinct recording is repeated); "
        "MongoDB ranks the results met by keys shared in the one aggregation and the worker verifies at most 20.",
        "",
        f"Cost per item (60 s reading, one core): fingerprint + stored keys {t_fp:.1f} ms; with the lookup keys "
        f"{t_q:.1f} ms ({t_q / t_fp:.2f}x; word keys at four sub-hop phases only for a steady recording, "
        f"{t_qs:.1f} ms for a steady one); one alignment {t_align:.2f} ms, so 20 candidates {20 * t_align:.0f} ms.",
    ]
    write_section("duplicates", "\n".join(lines))


if __name__ == "__main__":
    main()
