"""Helpers for storage tests: an independent Python rendering of the manifest format."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import blake3

HEADER = b'{"pivot_manifest":1}\n'


def json_bytes(raw: bytes) -> bytes:
    """docs/formats.md string escaping: UTF-8 literal, controls escaped, bad bytes as \\udcXX."""
    text = raw.decode("utf-8", "surrogateescape")
    out = []
    short = {
        '"': '\\"',
        "\\": "\\\\",
        "\n": "\\n",
        "\r": "\\r",
        "\t": "\\t",
        "\b": "\\b",
        "\f": "\\f",
    }
    for ch in text:
        cp = ord(ch)
        if ch in short:
            out.append(short[ch])
        elif cp < 0x20 or 0x7F <= cp <= 0x9F or cp in (0xFFFE, 0xFFFF) or 0xDC80 <= cp <= 0xDCFF:
            out.append(f"\\u{cp:04x}")
        else:
            out.append(ch)
    return b'"' + "".join(out).encode("utf-8") + b'"'


def manifest_bytes(entries: Sequence[tuple[bytes, bytes, bool, bytes | None]]) -> bytes:
    """(path, content-or-link-target, exec, link) rows → canonical manifest bytes."""
    lines = [HEADER]
    for path, data, exe, link in sorted(entries):
        line = b'{"path":' + json_bytes(path)
        line += b',"hash":"' + blake3.blake3(data).hexdigest().encode() + b'"'
        line += b',"size":' + str(len(data)).encode()
        line += b',"exec":' + (b"true" if exe else b"false")
        if link is not None:
            line += b',"link":' + json_bytes(link)
        lines.append(line + b"}\n")
    return b"".join(lines)


def store_object(cache_dir: Path, data: bytes) -> str:
    h = blake3.blake3(data).hexdigest()
    p = cache_dir / "files" / h[:2] / h[2:]
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return h


def run_unprivileged(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a child that imports pivot, then drops to uid/gid 65534 (root ignores perms)."""
    prelude = (
        "import os, sys, pivot._native, pivot.exceptions\n"
        "if os.geteuid() == 0:\n    os.setgid(65534); os.setuid(65534)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + code, *args], capture_output=True, text=True, check=False
    )


def shared_tmpdir() -> Path:
    """A directory an unprivileged child can traverse (pytest's tmp_path is root-only)."""
    d = Path(tempfile.mkdtemp(prefix="pivot-test-"))
    d.chmod(0o755)
    return d


def env_with(**kv: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(kv)
    return env
