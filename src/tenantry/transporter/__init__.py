"""The Transporter: a client site's (or the MSP's) agent: enrollment, the uplink, Direct Connect."""

from __future__ import annotations
