"""The runbook: for each processing error code a result can carry, what an operator should do.

One line per code, written for the person who reads the report and has to act; the codes are the
stable ones of :mod:`anomaly_cli.errors` and of the decoder (``processing.error.code``). A code
missing here (a new one, or one from an older deployment) gets :data:`UNKNOWN_ACTION`, never an
empty cell. Operator instructions stay in English on a Marathi page (commands and setting names are
English anyway); the page marks them ``lang="en"``.
"""

from __future__ import annotations

RUNBOOK: dict[str, str] = {
    # fetch
    "not_found": "The recording is not in storage: ask the school to upload it again; "
    "`anomaly results show ID` names the URL.",
    "access_denied": "The worker may not read the bucket: check its IAM role/bucket policy "
    "(`anomaly doctor`), then `anomaly rescreen` the date.",
    "credentials_problem": "Many access-denied answers in a row: the worker's credentials or role are wrong; "
    "fix them (`anomaly doctor`) and rescreen.",
    "url_not_allowed": "The URL is outside AUDIO_URL_ALLOWLIST: add the bucket if it is yours, else the upload "
    "is not from the app; rescreen after.",
    "invalid_url": "The source row's audio_url is not a URL: fix the row in the source collection, then rescreen.",
    "too_large": "The file is over the size cap (MAX_AUDIO_BYTES): listen to it; raise the cap only if real "
    "readings are that big.",
    "fetch_failed": "The download failed for good: open the URL with `anomaly results show ID`; rescreen if "
    "storage was at fault.",
    "fetch_transient": "Storage kept timing out: check its health and S3 timeouts, then `anomaly rescreen` the date.",
    "tls_error": "TLS to the storage host failed: check its certificate and the worker's CA bundle, then rescreen.",
    "too_many_redirects": "The URL redirects in a loop: fix the link in the source row, then rescreen.",
    "read_failed": "The download stopped half way: check the network to storage, then rescreen.",
    "archived": "The object is in an archive storage class: restore it (S3 Glacier) before rescreening.",
    # decode
    "undecodable": "The file is damaged or in a codec the decoder cannot read: ask for a re-upload; "
    "report the app version if many.",
    "empty": "The upload holds no audio (0 bytes or no frames): the app saved nothing; ask for a re-recording.",
    "not_audio": "The upload is not audio (often an HTML error page): the app uploaded the wrong thing; "
    "ask for a re-upload.",
    "truncated": "The upload was cut short: ask for a re-upload; many from one school point at its network.",
    "unsupported_rate": "Sample rate outside 4-384 kHz: the recorder is misconfigured; report the device.",
    "nonfinite_samples": "The file decodes to invalid samples (NaN/inf): damaged upload; ask for a re-recording.",
    "duration_over_cap": "Longer than MAX_DURATION_SECONDS: a recorder left running; listen, then ask for a "
    "re-recording.",
    # pipeline
    "malformed_message": "A queue message was not a valid work item: check what sent it (`anomaly replay-dlq "
    "--dry-run`).",
    "model_error": "The model could not be loaded: check MODEL_DIR / MODEL_VERSION (`anomaly doctor`), then rescreen.",
    "internal_error": "An unexpected error: look up the worker's logs around processed_at and file a bug; "
    "rescreen after the fix.",
}

#: What the page says for a code the runbook does not know.
UNKNOWN_ACTION = "Not in the runbook: look at one result with `anomaly results show ID` and the worker's logs."


def action_for(code: str | None) -> str:
    """The runbook line of an error code (:data:`UNKNOWN_ACTION` when there is none)."""
    return RUNBOOK.get(code or "", UNKNOWN_ACTION)
