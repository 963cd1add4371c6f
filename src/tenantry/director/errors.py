"""The Director's errors: one type the API turns into an HTTP answer."""

from __future__ import annotations


class DirectorError(Exception):
    """An operation was refused; ``status`` is the HTTP status the API answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SessionElsewhere(DirectorError):
    """The tenant's session (or tunnel) lives on another Director: the request is forwarded there.

    Answered 421 Misdirected Request with the owner's id in ``x-tenantry-owner``; the forwarding
    layer of the setup port catches that answer and serves the request from the owner instead
    (``director/cluster/forward.py``).  Raise it before changing anything.
    """

    def __init__(self, owner: str, what: str) -> None:
        super().__init__(421, f"{what} is served by another Director")
        self.owner = owner
