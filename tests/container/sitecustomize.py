"""Test-only (mounted at /test/lib with PYTHONPATH, never part of the image): every Python process
of the container run (the worker, its forkserver, the screening processes) appends to
``$ANOMALY_TEST_COMPILED`` each module it compiles from source, i.e. finds without bytecode.

The image runs with ``PYTHONDONTWRITEBYTECODE`` on a read-only file system, so such a module is
compiled again at every start; the test expects none from the image's own files
(deploy/image/slim.py compiles them at build time). Python raises the ``compile`` audit event for
each source it compiles (importlib's ``source_to_code`` goes through ``compile()``).
"""

import os
import sys

_OUT = os.environ.get("ANOMALY_TEST_COMPILED")


def _hook(event, args):
    if event != "compile" or len(args) < 2 or not isinstance(args[1], str) or not args[1].endswith(".py"):
        return
    try:
        with open(_OUT, "a", encoding="utf-8") as f:
            f.write(f"{os.getpid()} {args[1]}\n")
    except OSError:
        pass


if _OUT:
    sys.addaudithook(_hook)
