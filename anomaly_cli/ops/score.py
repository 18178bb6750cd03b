"""Scoring files and URLs directly (``anomaly score``): the worker's screening pool, outside SQS.

Inputs are expanded (:func:`expand_inputs`), fetched on threads (local files under the same byte
cap as downloads, remote ones through the worker's :class:`~anomaly_cli.adapters.storage.Fetcher`)
and screened in the worker's screening processes (:class:`~anomaly_cli.worker.pool.ScreenPool`:
forkserver children with the same allocator settings, one BLAS thread, the model loaded once),
so scoring a folder costs per item what the worker's bench measures. Rows come back in input
order, one per input, each an answer: a file that cannot be read is ``unavailable``, one that
cannot be decoded ``corrupt``; nothing raises for bad input.

Decision: ``SCORE_INLINE`` is not a setting; ``cpu_workers=0`` uses every core, as the worker does
(``CPU_WORKERS``). A single input is screened in one process like any other: the start-up of the
pool (~0.3 s) is paid once per command.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from concurrent.futures import Future

    from anomaly_cli.adapters.protocols import AudioFetcher
    from anomaly_cli.adapters.storage import FetchedAudio
    from anomaly_cli.config import Settings
    from anomaly_cli.model.engine import LoadedModel
    from anomaly_cli.screening import Screening
    from anomaly_cli.worker.pool import ItemScreening

#: Extensions picked up when a folder is given (a file named explicitly is always screened).
AUDIO_EXTENSIONS = {
    ".wav",
    ".flac",
    ".ogg",
    ".oga",
    ".opus",
    ".mp3",
    ".m4a",
    ".mp4",
    ".aac",
    ".3gp",
    ".amr",
    ".webm",
    ".wma",
}


def is_remote(item: str) -> bool:
    return "://" in item


def expand_inputs(items: Iterable[str], *, recursive: bool) -> Iterator[str]:
    """Inputs in order; folders become their audio files (sorted)."""
    for item in items:
        p = Path(item)
        if not is_remote(item) and p.is_dir():
            files = p.rglob("*") if recursive else p.iterdir()
            yield from (str(f) for f in sorted(files) if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS)
        else:
            yield item


class LocalOrRemote:
    """A fetcher for the pool: local paths read under the byte cap, URLs through ``remote``."""

    def __init__(self, max_bytes: int, remote: AudioFetcher | None = None):
        self.max_bytes = max_bytes
        self.remote = remote

    def fetch(self, item: str) -> FetchedAudio:
        from anomaly_cli.adapters import storage

        if is_remote(item):
            if self.remote is None:
                from anomaly_cli import errors

                raise errors.InvalidUrl(f"{item}: remote inputs need AUDIO_URL_ALLOWLIST")
            return self.remote.fetch(item)
        return storage.read_local(item, max_bytes=self.max_bytes)


def row_of(item: str, s: Screening) -> dict[str, Any]:
    """The JSON row of ``anomaly score --json`` for one screening."""
    from anomaly_cli.redact import redact_url

    row = {
        "input": redact_url(item) if is_remote(item) else item,
        "is_anomaly": s.is_anomaly,
        "anomaly_score": s.anomaly_score,
        "reasons": [r.to_dict() for r in s.reasons],
        "features": s.features,
        "model_version": s.model_version,
        "status": s.status,
        "thresholds": s.thresholds,
        "audio": {k: v for k, v in s.audio.items() if k not in ("fingerprint", "fp_bands")},
    }
    if s.error:
        row["error"] = s.error
    return row


def score(
    items: list[str], settings: Settings, model: LoadedModel, *, remote: AudioFetcher | None = None
) -> Iterator[dict[str, Any]]:
    """Screen ``items`` in the worker's pool; one row per item, in order.

    ``model`` is the loaded model (its version and thresholds are what the processes load).
    """
    from anomaly_cli.worker.pool import ScreenPool

    pool = ScreenPool(
        LocalOrRemote(settings.max_audio_bytes, remote),
        io_workers=max(1, min(settings.max_concurrency, 8)),
        model_version=model.version,
        max_duration_s=settings.max_duration_seconds,
        cpu_workers=settings.cpu_workers,
        model_dir=str(model.path.parent) if model.path is not None else settings.model_dir,
        model_ref=model.version,
        thresholds=dict(model.thresholds),
    )
    try:
        pool.warm_up()
        window = max(2, 2 * pool.cpu_workers + 2)
        pending: deque[tuple[str, Future[ItemScreening]]] = deque()
        it = iter(items)
        for item in it:
            pending.append((item, pool.submit(item)))
            if len(pending) >= window:
                yield _row(*pending.popleft(), model.version)
        while pending:
            yield _row(*pending.popleft(), model.version)
    finally:
        pool.close()


def _row(item: str, fut: Future[ItemScreening], version: str) -> dict[str, Any]:
    from anomaly_cli import errors
    from anomaly_cli.model import engine

    done = fut.result()
    if done.screening is not None:
        return row_of(item, done.screening)
    # a transient fetch error or a screening failure: still one answer per input
    err = done.error
    if isinstance(err, errors.FetchError):
        return row_of(item, engine.screen_fetch_error(err, version))
    from anomaly_cli.screening import Screening

    s = Screening.failed(
        code=errors.error_code(err) if isinstance(err, Exception) else "internal",
        message=f"{type(err).__name__}: {err}",
        stage=done.stage or "inference",
        reason="unavailable",
        model_version=version,
    )
    return row_of(item, s)
