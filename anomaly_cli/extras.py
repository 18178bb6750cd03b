"""Optional parts of the install, named where they are needed.

``anomaly demo``, ``anomaly sandbox`` and ``MONGO_URI=mongomock://`` run on the embedded stack: a
moto server (moto with its Flask server) and the in-process MongoDB double (mongomock-ng). They
are the ``demo`` extra, not dependencies of the tool: a production install (``pip install
anomaly-cli``, ``pipx install .``) has no use for them. Two commands draw or fit with a library the
fleet never imports: ``anomaly results report`` draws its charts with matplotlib (the ``report``
extra, ~90 MB installed) and ``anomaly model train`` fits with scikit-learn (the ``train`` extra,
~42 MB); the worker image leaves both out (docs/deployment/container.md). Without its extra a command
stops with a :class:`~anomaly_cli.errors.ConfigError` that says which extra to install, instead of
a traceback.
"""

from __future__ import annotations

import importlib.util

from anomaly_cli.errors import ConfigError

#: import name -> distribution, for the embedded stack (the ``demo`` extra)
DEMO_MODULES = {"moto": "moto[server]", "flask": "moto[server]", "mongomock_ng": "mongomock-ng"}
DEMO_HINT = "pip install 'anomaly-cli[demo]' (from a clone: make install, or pip install -e '.[demo]')"


def missing(modules: dict[str, str]) -> list[str]:
    """The distributions of ``modules`` whose import name cannot be found (deduplicated, in order)."""
    out: list[str] = []
    for module, dist in modules.items():
        if importlib.util.find_spec(module) is None and dist not in out:
            out.append(dist)
    return out


def require_demo(what: str) -> None:
    """Raise :class:`ConfigError` when the embedded stack that ``what`` runs on is not installed."""
    absent = missing(DEMO_MODULES)
    if absent:
        raise ConfigError(
            f"{what} runs on the embedded stack: {' and '.join(absent)} {'is' if len(absent) == 1 else 'are'} "
            "not installed (the 'demo' extra)",
            hint=DEMO_HINT,
        )


#: extra -> (import name -> distribution), for the commands that need one library the fleet does not
OPTIONAL = {
    "report": {"matplotlib": "matplotlib"},
    "train": {"sklearn": "scikit-learn"},
}


def require(extra: str, what: str) -> None:
    """Raise :class:`ConfigError` when ``extra`` (``report`` or ``train``), which ``what`` needs, is
    not installed."""
    absent = missing(OPTIONAL[extra])
    if absent:
        raise ConfigError(
            f"{what} needs {' and '.join(absent)}, which {'is' if len(absent) == 1 else 'are'} not installed "
            f"(the '{extra}' extra)",
            hint=f"pip install 'anomaly-cli[{extra}]' (from a clone: make install; the container image: "
            f"build it with --build-arg EXTRAS={extra})",
        )
