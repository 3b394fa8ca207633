"""The demo config reduced to its suitability core (grid, inputs, layers, criteria, constraints, water,
carrying, conflicts, outputs): the scheduler, cache and fault tests do not depend on the site-ranking and
relocation blocks, which are slower and change more often."""

from __future__ import annotations

import json

from tests.test_config import demo_raw

CORE = ("name", "grid", "inputs", "layers", "criteria", "weights", "constraints", "combine", "classes", "outputs",
        "water", "carrying", "conflicts", "report", "compute", "cache")


def core_raw() -> dict:
    raw = {k: v for k, v in demo_raw().items() if k in CORE}
    raw["report"] = {"enabled": False}
    # Drop inputs only the removed blocks used (the plan refuses unused inputs).
    rest = json.dumps({k: v for k, v in raw.items() if k != "inputs"}, ensure_ascii=False)
    raw["inputs"] = {n: i for n, i in raw["inputs"].items() if f'"{n}"' in rest}
    return raw
