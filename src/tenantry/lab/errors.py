"""The lab's one exception type."""

from __future__ import annotations


class LabError(RuntimeError):
    """The lab cannot build, start or stop a simulator; the message says what to do."""
