"""The `dunning` command line (typer)."""
