"""Errors of the store, the same whichever backend runs (SQLite or PostgreSQL)."""

from __future__ import annotations


class SchemaError(RuntimeError):
    """The database cannot be used by this code (newer schema, broken migration)."""


class IntegrityError(Exception):
    """A constraint (unique, foreign key, not null) refused a write."""


class DatabaseUnavailable(ConnectionError):
    """The database server cannot be reached (PostgreSQL restarting, network away); retry later."""
