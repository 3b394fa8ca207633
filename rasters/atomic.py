"""Atomic output files: write to a temporary file in the destination folder, then ``os.replace`` it into
place, so a failed or interrupted run never leaves a half-written file under the final name."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def _default_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def temp_beside(path: Path, suffix: str = ".tmp") -> Path:
    """An empty temporary file next to ``path`` with the permissions a normal new file would get (mkstemp
    alone makes it 0600, which other users of a shared project folder could not read)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix, dir=path.parent)
    os.fchmod(fd, _default_mode())
    os.close(fd)
    return Path(tmp)


def write_text_atomic(path: Path, text: str) -> None:
    tmp = temp_beside(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
