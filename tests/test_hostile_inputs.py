"""Hostile and damaged inputs through the command line (cases of issue 9 part 4 not already in test_cli.py,
test_config.py, test_raster_io.py or test_vectors.py). Each: exit code, one line naming the file/key, no output.
Plus ``validate --deep`` finding a corrupt tile in the middle of a GeoTIFF."""

from __future__ import annotations

import re

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from pipelines.cli import main
from tests._demo_core import core_raw
from tests.conftest import DATA
from tests.test_config import write_cfg

ARGS = ["--set", "grid.resolution_m=20000", "--set", "grid.chunk_size=64", "--no-cache", "-q"]


def _dem_copy(tmp_path, name="dem.tif", **changes):
    p = tmp_path / name
    with rasterio.open(DATA / "dem_5arcmin.tif") as src:
        prof, arr = src.profile, src.read(1)
    prof.update(changes)
    with rasterio.open(p, "w", **prof) as dst:
        dst.write(arr, 1)
    return p


def _rotated(tmp_path):
    with rasterio.open(DATA / "dem_5arcmin.tif") as src:
        t = src.transform
    return _dem_copy(tmp_path, transform=rasterio.Affine(t.a, 0.001, t.c, 0.001, t.e, t.f))


def _vrt(tmp_path):
    p = tmp_path / "dem.vrt"
    src = _dem_copy(tmp_path)
    with rasterio.open(src) as ds:
        w, h, t, wkt = ds.width, ds.height, ds.transform, ds.crs.to_wkt()
    gt = ", ".join(repr(v) for v in t.to_gdal())
    from xml.sax.saxutils import escape

    p.write_text(f'<VRTDataset rasterXSize="{w}" rasterYSize="{h}"><SRS>{escape(wkt)}</SRS>'
                 f'<GeoTransform>{gt}</GeoTransform><VRTRasterBand dataType="Int16" band="1">'
                 f'<SimpleSource><SourceFilename relativeToVRT="1">dem.tif</SourceFilename>'
                 f'<SourceBand>1</SourceBand></SimpleSource></VRTRasterBand></VRTDataset>')
    return p


def _vrt_renamed(tmp_path):
    p = _vrt(tmp_path)
    q = tmp_path / "innocent.tif"
    p.rename(q)
    return q


def _huge_claim(tmp_path):
    """A 64 x 64 uncompressed TIFF whose header claims 2,000,000 x 2,000,000 pixels."""
    p = _dem_copy(tmp_path, "small.tif", width=64, height=64, compress=None, tiled=False)
    b = bytearray(p.read_bytes())
    import struct

    n = struct.unpack_from("<H", b, 8)[0]
    for i in range(n):  # classic little-endian TIFF: patch ImageWidth (256) and ImageLength (257)
        off = 10 + 12 * i
        tag, typ = struct.unpack_from("<HH", b, off)
        if tag in (256, 257):
            if typ == 3:
                struct.pack_into("<HHIHH", b, off, tag, 4, 1, 0, 0)
            struct.pack_into("<I", b, off + 8, 2_000_000)
    p.write_bytes(bytes(b))
    return p


CASES = [
    ("rotated transform", 3, r"inputs\.elevation_m: .*dem\.tif: rotated/sheared geotransform"),
    ("vsicurl path", 2, r"inputs\.elevation_m\.raster: /vsicurl/https:/+example\.invalid/dem\.tif is a network "
                        r"path; set inputs\.elevation_m\.allow_remote: true"),
    ("vrt", 2, r"inputs\.elevation_m\.raster: .*dem\.vrt is a VRT .*allow_vrt: true"),
    ("vrt renamed to .tif", 2, r"inputs\.elevation_m\.raster: .*innocent\.tif is a VRT"),
    ("vector vrt", 2, r"inputs\.rivers\.vector: .*rivers\.vrt is a VRT"),
    ("huge claimed dimensions", 3, r"small\.tif: cannot read"),
    ("python tag", 2, r"cfg\.yaml:.*not valid YAML"),
]


@pytest.mark.parametrize("case, code, pattern", CASES, ids=[c[0] for c in CASES])
def test_hostile_input(tmp_path, capsys, case, code, pattern):
    raw = core_raw()
    inputs = raw["inputs"]
    if case == "rotated transform":
        inputs["elevation_m"]["raster"] = str(_rotated(tmp_path))
    elif case == "vsicurl path":
        inputs["elevation_m"]["raster"] = "/vsicurl/https://example.invalid/dem.tif"
    elif case == "vrt":
        inputs["elevation_m"]["raster"] = str(_vrt(tmp_path))
    elif case == "vrt renamed to .tif":
        inputs["elevation_m"]["raster"] = str(_vrt_renamed(tmp_path))
    elif case == "vector vrt":
        p = tmp_path / "rivers.vrt"
        p.write_text(f'<OGRVRTDataSource><OGRVRTLayer name="rivers"><SrcDataSource>{DATA / "rivers.gpkg"}'
                     f'</SrcDataSource></OGRVRTLayer></OGRVRTDataSource>')
        inputs["rivers"]["vector"] = str(p)
    elif case == "huge claimed dimensions":
        inputs["elevation_m"]["raster"] = str(_huge_claim(tmp_path))
    cfg = write_cfg(tmp_path, raw)
    if case == "python tag":
        cfg.write_text(cfg.read_text(encoding="utf-8") + "evil: !!python/object/apply:os.system ['touch pwned']\n",
                       encoding="utf-8")
    out = tmp_path / "out"
    got = main(["run", str(cfg), *ARGS, "--output-dir", str(out)])
    err = capsys.readouterr().err.strip()
    assert got == code, err
    assert err.count("\n") == 0 and err.startswith("suitability: error: "), err
    assert re.search(pattern, err), err
    assert not out.exists() or not any(out.iterdir())
    assert not (tmp_path / "pwned").exists()


def test_allow_vrt_reads_it(tmp_path):
    raw = core_raw()
    raw["inputs"]["elevation_m"]["raster"] = str(_vrt(tmp_path))
    raw["inputs"]["elevation_m"]["allow_vrt"] = True
    cfg = write_cfg(tmp_path, raw)
    assert main(["validate", str(cfg)]) == 0


def _corrupt_middle_tile(path):
    a = (np.arange(768 * 768).reshape(768, 768) % 251).astype("float32")
    with rasterio.open(path, "w", driver="GTiff", width=768, height=768, count=1, dtype="float32", crs="EPSG:4326",
                       transform=from_origin(90, 39, 0.01, 0.01), tiled=True, blockxsize=256, blockysize=256,
                       compress="deflate") as d:
        d.write(a, 1)
    with rasterio.open(path) as s:
        off = int(s.get_tag_item("BLOCK_OFFSET_1_1", "TIFF", bidx=1))
        size = int(s.get_tag_item("BLOCK_SIZE_1_1", "TIFF", bidx=1))
    b = bytearray(path.read_bytes())
    b[off + 10 : off + size - 10] = b"\x5a" * (size - 20)  # garbage inside the deflate stream of tile (1, 1)
    path.write_bytes(bytes(b))


def test_validate_deep_names_the_bad_tile(tmp_path, capsys):
    from rasters.deep_check import check_raster

    bad = tmp_path / "bad.tif"
    _corrupt_middle_tile(bad)
    raw = core_raw()
    raw["inputs"]["elevation_m"]["raster"] = str(bad)
    cfg = write_cfg(tmp_path, raw)
    assert main(["validate", str(cfg)]) == 0  # the header and the last block are fine
    capsys.readouterr()
    assert main(["validate", "--deep", str(cfg)]) == 3
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert re.search(r"inputs\.elevation_m: .*bad\.tif: band 1 block at window col 256, row 256, 256 x 256 pixels "
                     r"cannot be read", err), err
    # The good demo inputs pass, and every block is counted.
    capsys.readouterr()
    assert main(["validate", "--deep", str(write_cfg(tmp_path, core_raw()))]) == 0
    with rasterio.open(DATA / "dem_5arcmin.tif") as ds:
        assert check_raster(DATA / "dem_5arcmin.tif") == len(list(ds.block_windows(1)))
