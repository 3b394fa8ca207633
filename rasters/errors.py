"""The exception hierarchy of the whole tool, in one place (the lowest floor, so every package can use it).

Each exception maps to one command-line exit code (see ``pipelines.cli``):

==================  =====  ==========================================================
exception           exit   meaning
==================  =====  ==========================================================
``ConfigError``     2      the config or the command line is wrong (user mistake)
``InputDataError``  3      an input file is missing, unreadable or unusable
``SuitabilityError``1      anything else the tool detected at run time
==================  =====  ==========================================================
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SuitabilityError(Exception):
    """Base class: a failure the tool detected and can describe in one line."""

    exit_code = 1


class ConfigError(SuitabilityError, ValueError):
    """The analysis was asked for something invalid (config key, parameter, usage)."""

    exit_code = 2


class InputDataError(SuitabilityError):
    """An input file is missing, unreadable, or cannot be used on the analysis grid."""

    exit_code = 3


def did_you_mean(name: str, valid: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest valid name, or a list of valid names."""
    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    if not valid:
        return ""
    shown = ", ".join(valid[:12]) + (", ..." if len(valid) > 12 else "")
    return f" (valid: {shown})"
