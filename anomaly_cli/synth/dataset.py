"""Corpus building: a folder of labelled recordings and its ``manifest.csv`` (:func:`make_dataset`)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from anomaly_cli.synth.anomalies import LABELS, make_item

#: The columns of a labelled folder's ``manifest.csv``.
MANIFEST_FIELDS = ("file", "label", "variant", "format", "source", "duplicate_of")
DEFAULT_FORMATS: tuple[str, ...] = ("wav", "flac", "ogg", "mp3", "m4a", "3gp", "webm", "opus")
#: Relative frequency of each label in :func:`make_dataset` (normals are half the set).
WEIGHTS: dict[str, float] = {
    "normal": 10.0,
    "silent": 1.0,
    "low_volume": 1.0,
    "no_speech": 1.6,
    "noisy": 1.0,
    "clipped": 1.0,
    "dc_offset": 0.6,
    "too_short": 0.8,
    "too_long": 0.25,
    "truncated": 0.8,
    "corrupt": 0.8,
}


def _labels_for(n: int, rng: np.random.Generator, kinds: Sequence[str]) -> list[str]:
    w = np.array([WEIGHTS[k] for k in kinds], dtype=float)
    counts = np.floor(w / w.sum() * n).astype(int)
    if n >= len(kinds):  # every kind present when n allows
        counts = np.maximum(counts, 1)
    counts[np.argmax(w)] += n - counts.sum()
    labels = [k for k, c in zip(kinds, counts) for _ in range(c)]
    rng.shuffle(labels)
    return labels


def make_dataset(
    out_dir: str | Path,
    n: int,
    seed: int = 0,
    *,
    formats: Iterable[str] = DEFAULT_FORMATS,
    kinds: Iterable[str] | None = None,
    source: str = "formant",
    duplicates: int = 0,
) -> Path:
    """Write ``n`` labelled recordings (+ ``duplicates`` re-encoded copies) and ``manifest.csv``.

    The manifest has columns ``file,label,variant,format,source,duplicate_of``; ``duplicate_of``
    names the original of a re-encoded copy (the copy's own label is that of the original:
    duplication is a property of a pair, found across recordings by the worker). Returns the
    manifest path. Same arguments, same files, byte for byte, except OGG/Opus containers: libsndfile
    gives each OGG stream a random serial number, so only their audio is identical.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    fmts = list(formats)
    kinds = list(kinds or LABELS)
    rows: list[dict[str, str]] = []
    for i, label in enumerate(_labels_for(n, rng, kinds)):
        fmt = str(rng.choice(fmts))
        item = make_item(label, rng, fmt=fmt, source=source)
        name = f"{i:05d}_{label}_{item.variant}.{item.fmt}"
        (out / name).write_bytes(item.data)
        rows.append(
            {
                "file": name,
                "label": label,
                "variant": item.variant,
                "format": item.fmt,
                "source": source,
                "duplicate_of": "",
            }
        )
    originals = [r for r in rows if r["label"] == "normal"]
    for j in range(min(duplicates, len(originals))):
        from anomaly_cli.audio.formats import encode

        orig = originals[j]
        import soundfile as sf  # originals of duplicates are re-read, so copies are true re-encodes

        try:
            x, rate = sf.read(str(out / orig["file"]), dtype="float32")
        except Exception:  # noqa: BLE001 - formats libsndfile cannot read (m4a, 3gp, webm): skip
            continue
        x = x if x.ndim == 1 else x.mean(axis=1)
        fmt = "mp3" if orig["format"] != "mp3" else "m4a"
        name = f"dup{j:04d}_of_{Path(orig['file']).stem}.{fmt}"
        (out / name).write_bytes(encode(x * rng.uniform(0.6, 1.0), rate, fmt))
        rows.append({**orig, "file": name, "format": fmt, "duplicate_of": orig["file"]})
    return write_manifest(out, rows)


def write_manifest(out: Path, rows: Iterable[dict[str, str]]) -> Path:
    """Write ``out/manifest.csv`` (:data:`MANIFEST_FIELDS`, what ``model train`` / ``evaluate`` read)."""
    manifest = out / "manifest.csv"
    with manifest.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(MANIFEST_FIELDS))
        w.writeheader()
        w.writerows(rows)
    return manifest
