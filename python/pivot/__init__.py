"""pivot: Python data pipelines with a Rust content-addressed core."""

from __future__ import annotations

__version__ = "0.1.0"
