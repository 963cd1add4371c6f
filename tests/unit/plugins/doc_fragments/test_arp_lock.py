"""The ARP-lock modules' O(config) fragment: the bindings are documented alike for both backends.

Each backend's whole O(config) is in plugins/doc_fragments/arp_lock.py (Ansible merges fragments one
level deep, ansible-test wants literal text); this holds the two to one wording but for the words that
name the backend (ansible-test validate-modules holds each to its argument spec).
"""

from __future__ import annotations

from typing import Any

import yaml

from ansible_collections.tenantry.msp.plugins.doc_fragments.arp_lock import ModuleDocFragment

# (option, suboption) whose description names the backend: a port's name, what the VLAN does, what a tenant has.
BACKEND_WORDS = {("bindings", "port"), ("bindings", "vlan"), ("tenants", None)}


def config(variant: str) -> dict[str, Any]:
    doc = yaml.safe_load(getattr(ModuleDocFragment, variant))
    assert list(doc["options"]) == ["config"]
    cfg: dict[str, Any] = doc["options"]["config"]
    return cfg


def without_backend_words(option: str, doc: dict[str, Any]) -> dict[str, Any]:
    doc = dict(doc)
    if (option, None) in BACKEND_WORDS:
        doc.pop("description")
    doc["suboptions"] = {
        name: {k: v for k, v in sub.items() if not ((option, name) in BACKEND_WORDS and k == "description")}
        for name, sub in doc.get("suboptions", {}).items()
    }
    return doc


def test_bindings_and_tenants_read_the_same_for_both_backends() -> None:
    ios, bridge = config("IOS"), config("BRIDGE")
    assert ios["description"] == bridge["description"] and ios["type"] == bridge["type"] == "dict"
    for option in ("bindings", "tenants"):
        assert without_backend_words(option, ios["suboptions"][option]) == without_backend_words(
            option, bridge["suboptions"][option]
        )
    # What differs is what only one backend has.
    assert set(ios["suboptions"]) - set(bridge["suboptions"]) == {"uplinks", "violation", "source_guard"}
    assert set(bridge["suboptions"]) - set(ios["suboptions"]) == set()
