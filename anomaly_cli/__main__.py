"""``python -m anomaly_cli`` is the same as the ``anomaly`` command, and this is its entry point.

The console script imports only this module and ``main`` imports the CLI when it runs. Why:
multiprocessing re-imports the main script in every screening process it starts (as
``__mp_main__``); with the CLI imported at the script's top level, each of them would load
Typer, rich and every command module (~7 MB per process) that they never use.
"""


def main() -> None:
    """Console-script entry point: run the ``anomaly`` command."""
    from anomaly_cli.cli.app import main as run

    run()


if __name__ == "__main__":
    main()
