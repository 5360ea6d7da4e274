"""The data-file options validate and quantize share (the pipeline's [data] has the same keys): how a .csv becomes
windows (--window, --stride, --horizon, --group) and which columns are features and label (--features, --target)."""

from __future__ import annotations

from typing import Any

import typer

WindowOpt: Any = typer.Option(None, "--window", metavar="T", show_default=False,
                              help="CSV: rows per window (one sequence the model sees).")
StrideOpt: Any = typer.Option(1, "--stride", metavar="S", min=1,
                              help="CSV: rows from one window's start to the next (1: every row starts one).")
HorizonOpt: Any = typer.Option(0, "--horizon", metavar="H", min=0,
                               help="CSV with --target: the label is the target H rows after the window's last row "
                                    "(0: at its last row; forecasting H steps ahead).")
GroupOpt: Any = typer.Option(None, "--group", metavar="COLUMN", show_default=False,
                             help="CSV: the column that says which sequence a row belongs to (e.g. a unit or "
                                  "recording id); windows never cross a change of its value. Without it the whole "
                                  "file is one sequence.")
FeaturesOpt: Any = typer.Option(None, "--features", metavar="a,b", show_default=False,
                                help="CSV: feature columns by name or index, comma-separated (default: every column "
                                     "but --target and --group).")
TargetOpt: Any = typer.Option(None, "--target", metavar="COLUMN", show_default=False,
                              help="CSV: the label column (its value at each window's last row, or --horizon rows "
                                   "later).")
