"""The base of every config block: frozen, and unknown keys refused with the closest valid key named."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from rasters.errors import did_you_mean


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            valid = set(cls.model_fields)
            for key in data:
                if key not in valid:
                    raise ValueError(f"unknown key '{key}'{did_you_mean(str(key), valid)}")
        return data
