"""Test-only entry of the container test (mounted at /test, never part of the image).

The Mongo double (mongomock-ng, mounted at /test/lib) lives in one process, so this script is
that process: it fills the double from /test/source.json, runs the real ``anomaly work``
command in-process (the CLI's own ``main``, with the arguments given to this script), and when
the worker exits, however it exits, writes the result collection to /out/results.json. It
exits with the worker's exit code; tini (the image's PID 1) delivers the stop signal to it.
"""

import os
import sys

sys.path.append("/test/lib")

from bson import json_util

from anomaly_cli.adapters.mongo import connect


def main() -> int:
    db = connect(os.environ["MONGO_URI"])[os.environ.get("MONGO_DB_NAME", "nipun")]
    with open("/test/source.json", encoding="utf-8") as f:
        docs = json_util.loads(f.read())
    if docs:
        db[os.environ.get("MONGO_SOURCE_COLLECTION", "student_assessment_record")].insert_many(docs)
    from anomaly_cli.__main__ import main as anomaly

    sys.argv = ["anomaly", "work", *sys.argv[1:]]
    code = 1
    try:
        anomaly()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    finally:
        results = list(db[os.environ.get("MONGO_RESULT_COLLECTION", "anomaly_detection_results")].find({}))
        with open("/out/results.json.tmp", "w", encoding="utf-8") as f:
            f.write(json_util.dumps(results))
        os.replace("/out/results.json.tmp", "/out/results.json")
    return code


if __name__ == "__main__":
    sys.exit(main())
