# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the tenantry.msp collection: no compatibility promise to other callers.
"""Option sets shared by several modules, defined once (the connection options are documented in doc_fragments)."""

from __future__ import annotations

from typing import Any

from ansible.module_utils.basic import env_fallback


def vsphere_argument_spec() -> dict[str, Any]:
    """Options of ``tenantry.msp.vsphere`` doc fragment; secrets are ``no_log``."""
    return {
        "hostname": {"type": "str", "required": True, "fallback": (env_fallback, ["VMWARE_HOST"])},
        "username": {
            "type": "str",
            "required": True,
            "aliases": ["user"],
            "fallback": (env_fallback, ["VMWARE_USER"]),
        },
        "password": {
            "type": "str",
            "required": True,
            "aliases": ["pass"],
            "no_log": True,
            "fallback": (env_fallback, ["VMWARE_PASSWORD"]),
        },
        "port": {"type": "int", "default": 443, "fallback": (env_fallback, ["VMWARE_PORT"])},
        "validate_certs": {
            "type": "bool",
            "default": True,
            "fallback": (env_fallback, ["VMWARE_VALIDATE_CERTS"]),
        },
        "ca_file": {"type": "path", "fallback": (env_fallback, ["VMWARE_CA_FILE"])},
        "timeout": {"type": "int", "default": 60},
    }


def endpoint_argument_spec() -> dict[str, Any]:
    """A vSphere endpoint given as suboptions (a replication target): the connection options, no fallbacks."""
    return {
        "hostname": {"type": "str", "required": True},
        "port": {"type": "int", "default": 443},
        "username": {"type": "str", "required": True},
        "password": {"type": "str", "required": True, "no_log": True},
        "validate_certs": {"type": "bool", "default": True},
        "ca_file": {"type": "path"},
        "timeout": {"type": "int", "default": 60},
    }


def targets_argument_spec(**extra: dict[str, Any]) -> dict[str, Any]:
    """The ``targets`` option: a list of named replication targets, each a vSphere endpoint (plus ``extra``)."""
    return {
        "type": "list",
        "elements": "dict",
        "default": [],
        "options": {"name": {"type": "str", "required": True}, **extra, **endpoint_argument_spec()},
    }


def director_argument_spec() -> dict[str, Any]:
    """Options of the ``tenantry.msp.director`` doc fragment; the admin token is ``no_log``."""
    return {
        "director_url": {
            "type": "str",
            "required": True,
            "aliases": ["url"],
            "fallback": (env_fallback, ["TENANTRY_DIRECTOR_URL"]),
        },
        "admin_token": {
            "type": "str",
            "required": True,
            "aliases": ["token"],
            "no_log": True,
            "fallback": (env_fallback, ["TENANTRY_DIRECTOR_TOKEN"]),
        },
        "validate_certs": {
            "type": "bool",
            "default": True,
            "fallback": (env_fallback, ["TENANTRY_DIRECTOR_VALIDATE_CERTS"]),
        },
        "ca_file": {"type": "path", "fallback": (env_fallback, ["TENANTRY_DIRECTOR_CA_FILE"])},
        "timeout": {"type": "int", "default": 30},
    }
