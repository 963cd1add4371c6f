"""The Director: the MSP's control plane (REST API and enrollment on 4443, tenant uplinks on 6702)."""

from __future__ import annotations
