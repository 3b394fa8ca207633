"""rasters.warning_state: a threaded compute cannot leave "ignore everything" behind.

Two tasks force the interleaving of ``catch_warnings`` that rasterio's in-memory datasets and shapely's predicates
hit by chance inside tasks (13 in 400 repetitions of a small zone check lost their warning before the guard): X
ignores everything, Y saves X's list, X exits, Y exits and restores X's list. A warning issued after the compute
must still be shown.
"""

from __future__ import annotations

import threading
import warnings

import dask
import pytest
from dask import delayed

import rasters  # noqa: F401  (installs the guard)
from rasters import warning_state

WAIT_S = 10.0


def _racing_tasks():
    x_in, y_in, x_out = threading.Event(), threading.Event(), threading.Event()

    def x_task():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x_in.set()
            assert y_in.wait(WAIT_S)
        x_out.set()
        return 1

    def y_task():
        assert x_in.wait(WAIT_S)
        with warnings.catch_warnings():
            y_in.set()
            assert x_out.wait(WAIT_S)
        return 2

    return delayed(x_task, pure=False)(), delayed(y_task, pure=False)()


def _warned_after_race(scheduler_kwargs: dict) -> list[str]:
    with warnings.catch_warnings(record=True) as log:
        warnings.simplefilter("always")
        assert dask.compute(*_racing_tasks(), **scheduler_kwargs) == (1, 2)
        warnings.warn("after the compute", UserWarning, stacklevel=1)
    return [str(w.message) for w in log]


def test_the_race_silences_warnings_without_the_guard():
    """The test can fail: without the guard the same interleaving drops the warning."""
    warning_state.uninstall()
    try:
        assert _warned_after_race({"scheduler": "threads", "num_workers": 2}) == []
    finally:
        warning_state.install()


def test_warnings_after_a_racing_threaded_compute_are_shown():
    assert _warned_after_race({"scheduler": "threads", "num_workers": 2}) == ["after the compute"]


def test_filters_restored_after_a_failed_compute():
    def boom():
        warnings.simplefilter("ignore")  # outside any catch_warnings: a task that changes the process's filters
        raise RuntimeError("task failed")

    with warnings.catch_warnings(record=True) as log:
        warnings.simplefilter("always")
        before = list(warnings.filters)
        with pytest.raises(RuntimeError, match="task failed"):
            dask.compute(delayed(boom, pure=False)(), scheduler="sync")
        assert warnings.filters == before
        warnings.warn("still shown", UserWarning, stacklevel=1)
    assert [str(w.message) for w in log] == ["still shown"]


def test_install_is_idempotent():
    from dask.callbacks import Callback

    warning_state.install()
    warning_state.install()
    assert sum(cb == warning_state._GUARD._callback for cb in Callback.active) == 1
