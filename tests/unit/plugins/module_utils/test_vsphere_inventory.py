"""Pure helpers of the inventory reader."""

from __future__ import annotations

import pytest

from ansible_collections.tenantry.msp.plugins.module_utils.clients.vsphere_inventory import _folder_matches


@pytest.mark.parametrize(
    ("vm_folder", "wanted", "expected"),
    [
        ("/provider/vm/replication-targets", "replication-targets", True),
        ("/provider/vm/replication-targets/acme", "replication-targets", True),
        ("/provider/vm/replication-targets-old", "replication-targets", False),
        ("/provider/vm", "replication-targets", False),
        ("/provider/vm/replication-targets", "/provider/vm/replication-targets/", True),
        ("/other/vm/replication-targets", "/provider/vm/replication-targets", False),
        ("/provider/vm/a/b", "a/b", True),
        ("/provider/vm/a/bc", "a/b", False),
    ],
)
def test_folder_matches(vm_folder: str, wanted: str, expected: bool) -> None:
    assert _folder_matches(vm_folder, wanted) is expected
