"""ISA pressure and inspired PO2 against the published standard-atmosphere table and physiology textbook values."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rasters.errors import ConfigError
from suitability.atmosphere import inspired_po2_kpa, pressure_kpa

# ICAO Standard Atmosphere (Doc 7488/3, 1993) = U.S. Standard Atmosphere 1976, geopotential altitude, table values
# in hPa: 0 m 1013.25, 3,000 m 701.08, 5,000 m 540.20 (rounded in the table to 0.01 hPa).
ISA_TABLE_KPA = {0.0: 101.325, 3000.0: 70.108, 5000.0: 54.020}


@pytest.mark.parametrize("h,expected", sorted(ISA_TABLE_KPA.items()))
def test_pressure_matches_standard_atmosphere_table(h, expected):
    assert pressure_kpa(h) == pytest.approx(expected, abs=0.005)


@pytest.mark.parametrize("h,p_table", sorted(ISA_TABLE_KPA.items()))
def test_inspired_po2_from_table_pressure(h, p_table):
    # PiO2 = F_O2 (P - P_H2O at 37 C): 0.2095 x (P - 6.28 kPa), evaluated on the table's pressure.
    assert inspired_po2_kpa(h) == pytest.approx(0.2095 * (p_table - 6.28), abs=0.002)


def test_inspired_po2_sea_level_textbook():
    # West, Respiratory Physiology: PiO2 = 0.21 x (760 - 47) mmHg ~ 149-150 mmHg at sea level; 1 mmHg = 0.133322 kPa.
    assert inspired_po2_kpa(0.0) == pytest.approx(149.7 * 0.133322, abs=0.1)
    assert inspired_po2_kpa(pressure=101.325) == inspired_po2_kpa(0.0)


def test_arrays_dask_nan_and_tropopause():
    h = np.array([[0.0, 3000.0], [np.nan, 12_000.0]])
    p = pressure_kpa(h)
    assert p[0, 0] == pytest.approx(101.325) and np.isnan(p[1, 0]) and np.isnan(p[1, 1])
    lazy = pressure_kpa(da.from_array(h, chunks=1))
    np.testing.assert_array_equal(lazy.compute(), p)
    np.testing.assert_array_equal(inspired_po2_kpa(da.from_array(h, chunks=1)).compute(), inspired_po2_kpa(h))


def test_po2_needs_exactly_one_input():
    with pytest.raises(ConfigError, match="exactly one"):
        inspired_po2_kpa()
    with pytest.raises(ConfigError, match="exactly one"):
        inspired_po2_kpa(100.0, pressure=90.0)


@given(st.floats(-400, 10_999), st.floats(1, 2000))
def test_pressure_decreases_with_altitude(h, dh):
    if h + dh <= 11_000:
        assert pressure_kpa(h + dh) < pressure_kpa(h)
