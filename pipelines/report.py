"""report.html: a self-contained report a planner can read without GIS (maps, weights, tables, provenance).

Images are PNGs made with matplotlib (Agg) and embedded as base64, so the one file can be mailed. Maps are read
from the written GeoTIFFs at a reduced size (decimated reads use the COG overviews), so memory does not grow
with the grid. Chinese labels use Noto Sans CJK SC, shipped by the ``mplfonts`` package (SIL Open Font
License), so they render on machines without CJK fonts installed.
"""

from __future__ import annotations

import base64
import html
import io
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import Resampling

MAX_MAP_PX = 900


@lru_cache(maxsize=1)
def cjk_font_path() -> str:
    """Path of a font with CJK glyphs (Noto Sans CJK SC from mplfonts)."""
    import mplfonts

    p = Path(mplfonts.__file__).parent / "fonts" / "NotoSansCJKsc-Regular.otf"
    if not p.exists():  # pragma: no cover - a broken install
        raise FileNotFoundError(f"{p}: CJK font missing from the mplfonts package")
    return str(p)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    path = cjk_font_path()
    font_manager.fontManager.addfont(path)
    name = font_manager.FontProperties(fname=path).get_name()
    plt.rcParams["font.family"] = [name, "DejaVu Sans"]
    plt.rcParams["axes.unicode_minus"] = False
    return plt


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def read_small(path: Path) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The raster at most MAX_MAP_PX on its long side (nearest from overviews), nodata as NaN/0 kept."""
    with rasterio.open(path) as ds:
        f = max(1, int(np.ceil(max(ds.width, ds.height) / MAX_MAP_PX)))
        shape = (max(1, ds.height // f), max(1, ds.width // f))
        a = ds.read(1, out_shape=shape, resampling=Resampling.nearest)
        b = ds.bounds
        return a, (b.left, b.right, b.bottom, b.top)


def _outline(ax, zones, label_field: str | None) -> None:
    if zones is None or len(zones) == 0:
        return
    zones.boundary.plot(ax=ax, color="#444444", linewidth=0.4)
    if label_field and label_field in zones.columns:
        for _, row in zones.iterrows():
            p = row.geometry.representative_point()
            ax.annotate(str(row[label_field]), (p.x, p.y), fontsize=5, ha="center", va="center", color="#222222")


def map_continuous(path: Path, title: str, zones=None, label_field=None, cmap="RdYlGn", vmin=None, vmax=None,
                   units: str = "") -> str:
    plt = _pyplot()
    a, extent = read_small(path)
    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    im = ax.imshow(np.ma.masked_invalid(a.astype(float)), extent=extent, cmap=cmap, vmin=vmin, vmax=vmax)
    _outline(ax, zones, label_field)
    fig.colorbar(im, ax=ax, shrink=0.75, label=units)
    ax.set_title(title)
    ax.set_axis_off()
    return _png(fig)


def map_classes(path: Path, title: str, scheme_record: dict, zones=None, label_field=None) -> str:
    plt = _pyplot()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    a, extent = read_small(path)
    classes = scheme_record["classes"]
    cmap = ListedColormap([c["color"] for c in classes])
    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    ax.imshow(np.ma.masked_equal(a, 0), extent=extent, cmap=cmap, vmin=0.5, vmax=len(classes) + 0.5,
              interpolation="nearest")
    _outline(ax, zones, label_field)
    handles = [Patch(color=c["color"], label=f"{c['label']} ({c['label_en']})") for c in reversed(classes)]
    ax.legend(handles=handles, loc="lower left", fontsize=7, frameon=True)
    ax.set_title(title)
    ax.set_axis_off()
    return _png(fig)


def bar_chart(values: dict[str, float], title: str) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 0.4 * len(values) + 1.2))
    names = list(values)
    ax.barh(names, [values[n] for n in names], color="#2c7fb8")
    for i, n in enumerate(names):
        ax.text(values[n], i, f" {values[n]:.3f}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_title(title)
    ax.set_xlim(0, max(values.values()) * 1.25 if values else 1)
    return _png(fig)


def table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    if not rows:
        return "<p><em>(none)</em></p>"
    columns = columns or list(rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in columns) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    return "" if v is None else str(v)


CSS = """
body{font-family:"Noto Sans CJK SC","Microsoft YaHei","PingFang SC",sans-serif;max-width:1000px;margin:2em auto;
color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
img{max-width:100%}.small{font-size:.8em;color:#555}code{font-size:.85em}
"""


def render(sections: list[tuple[str, str, str]], title: str) -> str:
    """sections: (id, heading, html body)."""
    toc = "".join(f'<li><a href="#{sid}">{html.escape(h)}</a></li>' for sid, h, _ in sections)
    body = "".join(f'<section id="{sid}"><h2>{html.escape(h)}</h2>{content}</section>' for sid, h, content in sections)
    return (f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1><ol>{toc}</ol>{body}</body></html>\n")


def img(b64: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


# ------------------------------------------------------------------------------------------------ assembly
def report_zones(built):
    """(name, GeoDataFrame) of the zones the report tabulates, or (None, None)."""
    cfg = built.plan.config
    name = cfg.report.zones or cfg.grid.mask
    if name is None:
        return None, None
    return name, built.vectors.get(name)


def class_area_rows(zones_gdf, areas_km2: np.ndarray, scheme_record: dict, zone_name: str) -> list[dict]:
    """One row per zone: km² in each class (areas_km2 is (n_zones + 1, n_classes + 1); row 0 = outside)."""
    rows = []
    labels = [c["label"] for c in scheme_record["classes"]]
    names = zones_gdf[zone_name].astype(str).tolist() if zone_name in zones_gdf.columns else \
        [f"zone {i + 1}" for i in range(len(zones_gdf))]
    for i, nm in enumerate(names, start=1):
        r = {"zone": nm}
        total = 0.0
        for k, lab in enumerate(labels, start=1):
            r[f"{lab} km²"] = float(areas_km2[i, k])
            total += float(areas_km2[i, k])
        r["total km²"] = total
        top = float(areas_km2[i, len(labels) - 1] + areas_km2[i, len(labels)])
        r["较高+高 %"] = 100.0 * top / total if total else float("nan")
        rows.append(r)
    return rows


def build_report(built, record: dict, outs, extra: dict) -> str:
    cfg = built.plan.config
    folder = built.plan.loaded.output_folder
    p = record["properties"]
    zname, zones = report_zones(built)
    label_field = cfg.report.zone_name
    title = cfg.report.title or f"{cfg.name}: 用地适宜性评价 / land suitability"
    sections: list[tuple[str, str, str]] = []

    # Overview
    st = record["assets"]["suitability"]["raster:bands"][0].get("statistics", {})
    overview = (
        f"<p>Grid: {html.escape(built.grid.describe())}.</p>"
        f"<p>Suitability 0–1 (weighted {html.escape(cfg.combine.method)} of {len(cfg.criteria)} criteria; "
        f"weights by <b>{html.escape(cfg.weights.method)}</b>); valid cells {st.get('valid_percent', 0):.1f} % of the "
        f"grid, mean {st.get('mean', float('nan')):.3f}.</p>"
    )
    if p["suitability:warnings"]:
        overview += "<p><b>Warnings</b></p><ul>" + "".join(
            f"<li>{html.escape(w)}</li>" for w in p["suitability:warnings"]) + "</ul>"
    sections.append(("overview", "概况 Overview", overview))

    # Maps
    maps = img(map_continuous(folder / cfg.outputs.suitability, "适宜性 Suitability (0–1)", zones, label_field,
                              vmin=0, vmax=1), "suitability map")
    if cfg.outputs.classes:
        maps += img(map_classes(folder / cfg.outputs.classes, "适宜性等级 Suitability classes",
                                built.scheme.as_record(), zones, label_field), "class map")
    sections.append(("maps", "适宜性地图 Suitability maps", maps))
    crit_imgs = ""
    for o in outs:
        if o.path.stem.startswith("criterion_"):
            crit_imgs += img(map_continuous(o.path, f"准则 {o.path.stem[10:]} (0–1)", zones, None, vmin=0, vmax=1),
                             o.path.stem)
    if crit_imgs:
        sections.append(("criteria", "准则 Criteria", crit_imgs))

    # Weights
    w = p["suitability:weights"]
    wtxt = img(bar_chart(w["weights"], f"权重 Weights ({w['method']})"), "weights")
    if "cr" in w:
        wtxt += (f"<p>AHP derivation <b>{html.escape(str(w.get('derivation')))}</b>: λmax = {w['lambda_max']:.4f}, "
                 f"CI = {w['ci']:.4f}, RI = {w['ri']:.2f} ({html.escape(str(w.get('ri_table')))}), "
                 f"<b>CR = {w['cr']:.4f}</b> ({'consistent' if w.get('consistent') else 'NOT consistent'}, "
                 f"limit {w.get('max_cr')}).</p>")
        names = list(w["weights"])
        mrows = [{"": n, **{m: f"{v:.3g}" for m, v in zip(names, row, strict=True)}}
                 for n, row in zip(names, w["matrix"], strict=True)]
        wtxt += table(mrows)
    details = {k: v for k, v in w.items() if k not in ("weights", "matrix", "raw") and not isinstance(v, dict | list)}
    wtxt += table([{"key": k, "value": v} for k, v in details.items()])
    fitted = p.get("suitability:fitted_parameters", {})
    if fitted:
        wtxt += "<p>Transforms as applied (fitted = parameters estimated from the data):</p>" + table(
            [{"criterion": c, **{k: (json_short(v)) for k, v in t.items()}} for c, t in fitted.items()])
    sections.append(("weights", "权重与变换 Weights and transforms", wtxt))

    # Class areas per zone
    if "class_areas" in extra and zones is not None:
        rows = class_area_rows(zones, extra["class_areas"], built.scheme.as_record(), label_field)
        rows.sort(key=lambda r: -(r["较高+高 %"] if r["较高+高 %"] == r["较高+高 %"] else -1))
        sections.append(("class-areas", f"分区适宜性面积 Class areas by zone ({zname})", table(rows)))

    # Water / carrying / conflicts
    for fname, heading in (("water_zones.csv", "水资源承载 Water budgets (四水四定)"),
                           ("carrying.csv", "承载规模 Carrying scale (短板原理)"),
                           ("conflicts.csv", "现状问题 Conflicts (现状问题识别)")):
        f = folder / fname
        if f.exists():
            import pandas as pd

            df = pd.read_csv(f, encoding="utf-8-sig")
            keep = [c for c in df.columns if c not in ("lon", "lat", "per_capita_source")][:12]
            sections.append((fname[:-4], heading, table(df[keep].to_dict("records"))))

    # Sites and stability
    sites = getattr(built, "sites", None)
    if sites is not None:
        t = sites.ranking.sort_values("rank")
        cols = [c for c in ("rank", "name", "origin", "score", "suitability_mean", "reasons",
                            "stability_by_suitability", "p_top_k_by_suitability", "sensitive_to_weights",
                            "position_is_approximate") if c in t.columns]
        body = (f"<p>Ranking by {html.escape(cfg.sites.ranking.method)} over "
                f"{html.escape(', '.join(cfg.sites.ranking.columns))}; candidates and new regions side by side."
                "</p>" + table(t[cols].head(40).to_dict("records")))
        sections.append(("sites", "城镇选址排序 Site ranking", body))
        if sites.verdict is not None:
            mc = folder / "mc_suitability_cv.tif"
            body = (f"<p>{cfg.sites.sensitivity.draws} Dirichlet weight draws (concentration "
                    f"{cfg.sites.sensitivity.concentration}, seed {cfg.sites.sensitivity.seed}) and one-at-a-time "
                    "changes of each weight; sites ranked by the mean suitability of their catchment.</p>")
            if mc.exists():
                body += img(map_continuous(mc, "变异系数 Coefficient of variation of suitability", zones, None,
                                           cmap="magma_r"), "Monte Carlo CV map")
            body += table(sites.verdict.sort_values("base_rank").head(20).to_dict("records"))
            sections.append(("sensitivity", "稳定性 Sensitivity and stability", body))

    # Relocation
    rel = getattr(built, "relocation", None)
    if rel is not None:
        src = rel.sources
        cols = [c for c in ("zone", "population", "density_per_km2", "seat_elevation_m", "seat_pio2_kpa",
                            "share_above_4000_m", "conditions_met", "flag") if c in src.columns]
        body = "<p>Source counties and the conditions of the rule each meets:</p>" + table(
            src[cols].to_dict("records"))
        body += "<p>Scenarios:</p>" + table(rel.comparison.drop(columns=["binding"], errors="ignore")
                                            .to_dict("records"))
        last = list(rel.results)[-1]
        flows = rel.results[last].flows
        body += f"<p>Flows in scenario {html.escape(last)}:</p>" + table(flows.to_dict("records"))
        cons = rel.results[last].constraints
        if "binds" in cons.columns:
            body += "<p>Binding capacities and what one more unit is worth (LP duals):</p>" + table(
                cons.loc[cons["binds"].astype(bool)].to_dict("records"))
        sections.append(("relocation", "搬迁情景 Relocation scenarios", body))

    # Provenance
    v = p["suitability:versions"]
    prov = (f"<p>Run <code>{html.escape(p['suitability:run_id'])}</code> at {html.escape(p['datetime'])} from "
            f"<code>{html.escape(p['suitability:config_file'])}</code>, config SHA-256 "
            f"<code>{html.escape(p['suitability:config_sha256'])}</code>. Rerun with "
            "<code>suitability rerun run.json</code>.</p>")
    prov += table([{"component": k, "version": val} for k, val in v.items()])
    prov += table([{"input": k, "path": i["path"], "sha256": i.get("sha256", "")[:16] + "…"}
                   for k, i in p["suitability:inputs"].items()])
    prov += table([{"step": k, "seconds": s} for k, s in p["suitability:timings_s"].items()])
    sections.append(("provenance", "数据来源与可复现性 Provenance", prov))
    return render(sections, title)


def json_short(v: Any) -> str:
    import json

    s = json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v
    return s if len(s) < 60 else s[:57] + "…"
