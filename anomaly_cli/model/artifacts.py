"""Model artifacts: one folder per version under a model folder (``MODEL_DIR``).

``models/<version>/model.npz`` holds the fitted outlier model as named numpy arrays (scaler,
forest nodes, threshold; see :class:`~anomaly_cli.model.outlier.OutlierModel`);
``models/<version>/metadata.json`` holds what a human or a loader checks first: version, feature
names, rules and thresholds, training summary, library versions, artifact format. Loading checks the
metadata against the code (:data:`FORMAT`, ``features.FEATURE_NAMES``) and fails with a clear
:class:`~anomaly_cli.errors.ModelError`; nothing is guessed.

Decisions:
- The model the project ships is package data, ``anomaly_cli/models/<version>/``, found with
  :mod:`importlib.resources` (:func:`shipped_dir`), so ``anomaly score`` works in any folder after
  ``pip install``. ``MODEL_DIR`` empty (the default) means that folder; set, it replaces it
  (a relative ``MODEL_DIR`` is relative to the working directory, as any path an operator types).
- The version is the folder name; "newest" is the highest in natural order (``v2 < v10``), so
  operators can drop ``models/v2`` beside ``v1`` and the worker picks it up on restart.
- Features added to the code since a version was trained do not make it unloadable
  (:func:`check_metadata`); any other difference in the feature set does.
- The metadata is read before the arrays: a mismatch is reported without reading another
  version's payload.
- No pickle: the arrays are loaded with ``allow_pickle=False``, so a model folder cannot run
  code, and loading needs neither scikit-learn nor joblib (the screening processes load it).
  Format 1 (a joblib pickle of scikit-learn objects) is refused with a hint to retrain.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anomaly_cli.errors import ModelError

if TYPE_CHECKING:
    from anomaly_cli.model.outlier import OutlierModel

FORMAT = 2  #: bumped when the payload's shape changes (1: joblib pickle, 2: npz arrays)
MODEL_FILE = "model.npz"
META_FILE = "metadata.json"


def shipped_dir() -> Path:
    """The folder of model versions installed with the package (``anomaly_cli/models``).

    Package data is installed as plain files by pip (setuptools), so the folder is a real path;
    a zipped install, which cannot hold it, is reported as a :class:`ModelError` with a hint.
    """
    from importlib.resources import files

    folder = files("anomaly_cli") / "models"
    if not isinstance(folder, Path):
        raise ModelError(
            f"the shipped model is inside an archive ({folder}), which cannot be read as a folder",
            hint="install the package unzipped (pip does), or set MODEL_DIR to a folder of model versions",
        )
    return folder


def model_root(model_dir: str | Path | None) -> Path:
    """``model_dir`` as a path; empty or None means the shipped folder (:func:`shipped_dir`)."""
    if model_dir is None or str(model_dir) == "":
        return shipped_dir()
    return Path(model_dir)


def _natural(name: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def list_versions(model_dir: str | Path | None) -> list[str]:
    """Versions present under ``model_dir`` (folders with a metadata.json), oldest first."""
    root = model_root(model_dir)
    if not root.is_dir():
        return []
    return sorted((p.name for p in root.iterdir() if (p / META_FILE).is_file()), key=_natural)


def resolve(model_dir: str | Path | None, version: str | None = None) -> Path:
    """The folder of ``version`` (newest when None); :class:`ModelError` if there is none."""
    root = model_root(model_dir)
    versions = list_versions(root)
    if version:
        path = root / version
        if not (path / META_FILE).is_file():
            raise ModelError(
                f"model version {version!r} not found under {root} (have: {', '.join(versions) or 'none'})",
                hint="set MODEL_VERSION to one of the versions present, or train one with `anomaly model train`",
            )
        return path
    if not versions:
        raise ModelError(
            f"no model versions under {root.resolve()}",
            hint="set MODEL_DIR to a folder holding <version>/metadata.json (or unset it for the shipped model), "
            "or run `anomaly model train`",
        )
    return root / versions[-1]


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The parsed metadata.json of one version folder."""
    meta_path = Path(path) / META_FILE
    try:
        return json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot read {meta_path}: {e}") from e


def check_metadata(meta: dict[str, Any], feature_names: tuple[str, ...], where: Path) -> None:
    """Raise :class:`ModelError` when the artifact was made for other code.

    The model's feature names must be the code's, or the code's with features added since
    (in the same order otherwise): newer code that only *adds* features still loads an older
    version, which reads its own features by name (so results that name it can be re-checked).
    A feature the code does not compute, or another order, is refused.
    """
    if meta.get("format") != FORMAT:
        raise ModelError(
            f"{where}: artifact format {meta.get('format')!r}, this code reads format {FORMAT}",
            hint="retrain with `anomaly model train` using this version of the tool",
        )
    names = tuple(meta.get("feature_names") or ())
    known = set(names)
    if not names or names != tuple(n for n in feature_names if n in known):
        missing = [n for n in feature_names if n not in names]
        extra = [n for n in names if n not in feature_names]
        raise ModelError(
            f"{where}: feature names differ from the code's (missing {missing[:5]}, unknown {extra[:5]}"
            f"{', or another order' if not extra else ''})",
            hint="the model was trained with another feature set: retrain it with `anomaly model train`",
        )


def save(path: str | Path, model: "OutlierModel", metadata: dict[str, Any]) -> Path:
    """Write ``model.npz`` (compressed arrays) and ``metadata.json`` into ``path``."""
    import numpy as np

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    with (out / MODEL_FILE).open("wb") as f:
        np.savez_compressed(f, format=np.asarray(FORMAT), **model.arrays())  # type: ignore[arg-type]  # numpy's stub types **kwds as bool
    (out / META_FILE).write_text(
        json.dumps({"format": FORMAT, **metadata}, indent=2, ensure_ascii=False, sort_keys=False) + "\n",
        encoding="utf-8",
    )
    return out


def load(path: str | Path, feature_names: tuple[str, ...]) -> tuple["OutlierModel", dict[str, Any]]:
    """``(outlier model, metadata)`` of the version folder ``path``, after checking the metadata."""
    import numpy as np

    from anomaly_cli.model.outlier import OutlierModel

    path = Path(path)
    meta = read_metadata(path)
    check_metadata(meta, feature_names, path)
    try:
        with np.load(path / MODEL_FILE, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        if arrays.get("format") is None or int(arrays["format"]) != FORMAT:
            raise ValueError(f"not a format-{FORMAT} anomaly model")
        model = OutlierModel.from_arrays(arrays)
    except Exception as e:  # any failure to read the arrays is a broken artifact
        raise ModelError(
            f"cannot load {path / MODEL_FILE}: {type(e).__name__}: {e}",
            hint="the file is missing or damaged; retrain or restore it",
        ) from e
    return model, meta
