"""The `--display tui` front-end (needs the optional `tui` extra: textual)."""
