"""``python -m anomaly_cli`` is the same as the ``anomaly`` command."""

from anomaly_cli.cli.app import main

if __name__ == "__main__":
    main()
