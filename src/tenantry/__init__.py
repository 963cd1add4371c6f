"""tenantry: Director and Transporter services for the tenantry.msp collection."""

from __future__ import annotations

__version__ = "0.1.0"
