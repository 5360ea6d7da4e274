"""The CLI: a thin Typer shell around the stage functions (one module per command)."""
