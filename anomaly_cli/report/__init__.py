"""The HTML report of screening results (rendering only: the figures come from
:mod:`anomaly_cli.ops.report`). Imports no typer or rich."""
