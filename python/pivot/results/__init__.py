"""Reviewing results across git revisions: metrics, params, plots, output diffs, `get`, and the
run history (docs/architecture.md, "Reviewing results"). Modules import lazily: nothing here is
loaded by `pivot repro` except `history`."""
