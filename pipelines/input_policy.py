"""Inputs a config may not name without saying so: network paths and VRT files.

A GDAL/OGR path can fetch from the network (``/vsicurl/``, ``/vsis3/``, ``http://``...), and a VRT is an XML file
that can point at any other file or URL; a config shared between offices should not read either silently. Each
input may opt in with ``allow_remote: true`` or ``allow_vrt: true``.
"""

from __future__ import annotations

from pathlib import Path

from rasters.errors import ConfigError

NETWORK = ("/vsicurl", "/vsis3", "/vsigs", "/vsiaz", "/vsiadls", "/vsioss", "/vsiswift", "/vsihdfs", "/vsiwebhdfs",
           "http://", "https://", "ftp://")


def is_remote(path: str) -> bool:
    s = str(path).lower()
    return any(s.startswith(n) or f"/{n.strip('/')}" in s and n.startswith("/vsi") for n in NETWORK)


def is_vrt(path: str, resolved: Path) -> bool:
    if str(path).lower().endswith(".vrt") or resolved.suffix.lower() == ".vrt":
        return True
    try:
        with open(resolved, "rb") as f:  # a VRT renamed to .tif is still a VRT
            head = f.read(256).lstrip()
    except OSError:
        return False
    return head.startswith((b"<VRTDataset", b"<OGRVRTDataSource"))


def check_input(config_path: Path, name: str, inp, attr: str, resolved: Path) -> None:
    """Raise ``ConfigError`` (one line, naming the key and the opt-in) for a network path or a VRT."""
    raw = str(getattr(inp, attr))
    if is_remote(raw) and not getattr(inp, "allow_remote", False):
        raise ConfigError(f"{config_path}: inputs.{name}.{attr}: {raw} is a network path; set "
                          f"inputs.{name}.allow_remote: true to read it")
    if is_vrt(raw, resolved) and not getattr(inp, "allow_vrt", False):
        raise ConfigError(f"{config_path}: inputs.{name}.{attr}: {raw} is a VRT (it can point at any file or URL); "
                          f"set inputs.{name}.allow_vrt: true to read it")
