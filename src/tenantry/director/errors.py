"""The Director's errors: one type the API turns into an HTTP answer."""

from __future__ import annotations


class DirectorError(Exception):
    """An operation was refused; ``status`` is the HTTP status the API answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
