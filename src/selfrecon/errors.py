"""Errors that speak the user's language.

Every user-facing mistake raises a subclass of :class:`SelfreconError` with a one-line message
saying what is wrong and what to do (:class:`ConfigError` and :class:`DataError` are also
``ValueError`` subclasses, so ``except ValueError`` keeps working). The CLI turns them into
``selfrecon: <message>`` and exit code 2; any other exception is a bug in selfrecon: exit code 1,
"please report", and ``--debug`` for the traceback.
"""

from __future__ import annotations


class SelfreconError(Exception):
    """Base class for errors caused by user input (config, data, arguments)."""


class ConfigError(SelfreconError, ValueError):
    """A configuration value is missing, of the wrong type, or not allowed."""


class DataError(SelfreconError, ValueError):
    """A data file or folder cannot be used (missing, unreadable, wrong shape, NaN...)."""


class MissingDependencyError(SelfreconError, ImportError):
    """An optional package is needed; the message names the extra to install."""


def shape_str(shape) -> str:
    """Format a shape as ``(64, 60)`` the way users read it."""
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"
