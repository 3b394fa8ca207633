"""Barometric pressure and inspired oxygen partial pressure at an altitude (international standard atmosphere).

What is computed
----------------
* ``pressure_kpa(h)``: the pressure of the ICAO / ISO 2533 standard atmosphere in its troposphere (0–11 km
  geopotential), P(h) = P₀ · (1 − L·h/T₀)^(g₀·M/(R·L)) with P₀ = 101.325 kPa, T₀ = 288.15 K, L = 0.0065 K/m, which
  is the familiar P(h) = 101.325 · (1 − 2.25577e-5 · h)^5.25588 kPa (L/T₀ = 2.25577e-5 /m, g₀M/(RL) = 5.25588).
  Table values of the standard (ICAO Doc 7488/3, 1993; identical in the U.S. Standard Atmosphere 1976 for
  geopotential altitude): 0 m 101.325 kPa, 3,000 m 70.108 kPa, 5,000 m 54.020 kPa.
* ``inspired_po2_kpa(h)``: the partial pressure of oxygen in air inspired and warmed to body temperature and fully
  saturated with water vapour in the airways, PiO₂ = F·(P − P_H₂O) with F = 0.2095 (the O₂ fraction of dry air)
  and P_H₂O = 6.28 kPa (47 mmHg, saturated water vapour at 37 °C), as in respiratory physiology texts (e.g.
  West, *Respiratory Physiology: The Essentials*: PiO₂ = 0.21 × (760 − 47) ≈ 150 mmHg at sea level). At sea level
  it is 19.91 kPa; at 4,270 m (the 玛多 seat) about 11.6 kPa, i.e. about 58 % of the sea-level figure.

The standard atmosphere is a yearly mid-latitude mean: real pressure at a plateau town is a little higher
(warmer, tropical-ish air column) and varies with season and weather by a few per cent. The formulas are meant
for comparing places, not for clinical use. Altitudes are metres above sea level (a DEM's orthometric heights;
the difference from geopotential height is < 0.1 % below 6 km and is ignored).

Elementwise: numpy scalars/arrays and dask arrays alike (float64 for numpy, the input's float dtype kept for
dask float32 rasters). Altitudes above the tropopause (11,000 m) are outside the formula and give NaN.
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np

from rasters.errors import ConfigError

__all__ = [
    "ISA_EXPONENT",
    "ISA_LAPSE_PER_M",
    "O2_FRACTION",
    "SEA_LEVEL_KPA",
    "TROPOPAUSE_M",
    "WATER_VAPOUR_37C_KPA",
    "inspired_po2_kpa",
    "pressure_kpa",
]

SEA_LEVEL_KPA = 101.325  # ISA P₀
ISA_LAPSE_PER_M = 2.25577e-5  # L / T₀ = 0.0065 / 288.15 per metre
ISA_EXPONENT = 5.25588  # g₀·M / (R·L)
TROPOPAUSE_M = 11_000.0  # the formula holds in the ISA troposphere only
O2_FRACTION = 0.2095  # dry air
WATER_VAPOUR_37C_KPA = 6.28  # saturated at 37 °C (47 mmHg)


def _lib(x: Any):
    return da if isinstance(x, da.Array) else np


def pressure_kpa(elevation_m: Any) -> Any:
    """ISA barometric pressure in kPa at ``elevation_m`` (metres above sea level); NaN stays NaN.

    P = 101.325 · (1 − 2.25577e-5 · h)^5.25588. Valid from below sea level (the Dead Sea, −430 m) up to the
    tropopause; above 11,000 m the result is NaN rather than a number from the wrong layer of the atmosphere.
    """
    lib = _lib(elevation_m)
    h = elevation_m if lib is da else np.asarray(elevation_m, dtype=np.float64)
    base = 1.0 - ISA_LAPSE_PER_M * h
    p = SEA_LEVEL_KPA * lib.power(lib.where(h <= TROPOPAUSE_M, base, np.nan), ISA_EXPONENT)
    return p if lib is da or np.ndim(p) else float(p)


def inspired_po2_kpa(elevation_m: Any = None, *, pressure: Any = None) -> Any:
    """Inspired oxygen partial pressure PiO₂ = 0.2095 · (P − 6.28) in kPa, at an altitude or a given pressure.

    Give ``elevation_m`` (the ISA pressure is used) or ``pressure`` in kPa, not both.
    """
    if (elevation_m is None) == (pressure is None):
        raise ConfigError("inspired_po2_kpa: give exactly one of elevation_m or pressure= (kPa)")
    p = pressure_kpa(elevation_m) if pressure is None else pressure
    lib = _lib(p)
    p = p if lib is da else np.asarray(p, dtype=np.float64)
    out = O2_FRACTION * (p - WATER_VAPOUR_37C_KPA)
    return out if lib is da or np.ndim(out) else float(out)
