"""The wire between Director and Transporter: TLS + reverse HTTP/2 channels and their messages."""

from __future__ import annotations
