#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tenantry maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: nfs_export_fs
short_description: Give each tenant's NFS export its own ext4 filesystem of size_gb
version_added: 0.1.0
description:
  - Used by the C(tenantry.msp.nfs_export) role (with C(nfs_export_quota=filesystem)); runs on the NFS server,
    as root.
  - One sparse image file per tenant, C(<image_dir>/<tenant>.img), formatted ext4 (C(-T largefile), no reserved
    blocks, lazy inode table and journal initialisation; a 2 TB image takes about 30 MB until written) and
    loop-mounted at the export path, with a line in O(fstab) (marked C(x-tenantry-nfs), C(nofail), mounted
    before C(nfs-server.service)) so that it is mounted again at boot.
  - A larger O(exports[].size_gb) grows the image and the filesystem online (truncate, C(losetup -c),
    C(resize2fs)); a smaller one is refused. Where the kernel refuses an online resize (no C(CAP_SYS_RESOURCE),
    as in an unprivileged container) the filesystem is grown unmounted for a moment, or, when it is busy, the
    run fails saying so and a later run finishes the growth.
  - A path that holds data (or another mount) but not the tenant's own filesystem is refused, so that mounting
    never hides data. Every entry is checked before anything changes.
  - With O(state=absent) the filesystem is unmounted, its fstab line and the empty mount point removed; the image
    (the tenant's data) is kept for the MSP to decide, or removed with O(image=remove).
  - Returns the usage of each mounted filesystem (statvfs).
author:
  - tenantry maintainers (@tenantry)
options:
  exports:
    description: One entry per tenant.
    type: list
    elements: dict
    required: true
    suboptions:
      tenant:
        description: The tenant; names its image.
        type: str
        required: true
      path:
        description: The export path on disk (the mount point).
        type: path
        required: true
      size_gb:
        description: Size of the filesystem in GB (GiB, 1024^3 bytes), at least 1. Required with O(state=present).
        type: int
  state:
    description: The filesystems present (created, grown, mounted) or absent (unmounted, out of O(fstab)).
    type: str
    choices: [present, absent]
    default: present
  image:
    description:
      - With O(state=absent), V(keep) the image file (unmounted, the data stays for the MSP to decide; a later
        O(state=present) mounts it again) or V(remove) it (the tenant's data is gone).
    type: str
    choices: [keep, remove]
    default: keep
  image_dir:
    description: Folder of the image files (created 0700).
    type: path
    required: true
  fstab:
    description: The fstab file that mounts the images at boot; only the lines of O(exports) are touched.
    type: path
    default: /etc/fstab
notes:
  - Supports check mode (reports the actions it would take) and diff mode (the filesystems and the fstab file).
requirements:
  - e2fsprogs (C(mkfs.ext4), C(resize2fs), C(e2fsck), C(dumpe2fs)), util-linux (C(mount), C(losetup))
"""

EXAMPLES = r"""
- name: Each tenant's export on its own filesystem
  tenantry.msp.nfs_export_fs:
    exports:
      - {tenant: acme, path: /exports/tenants/acme, size_gb: 2048}
    image_dir: /srv/tenantry/nfs-images
  register: filesystems

- name: Offboarded tenant
  tenantry.msp.nfs_export_fs:
    exports: [{tenant: acme, path: /exports/tenants/acme}]
    state: absent
    image: remove
    image_dir: /srv/tenantry/nfs-images
"""

RETURN = r"""
actions:
  description: What was done (or, in check mode, would be done), one sentence each.
  returned: always
  type: list
  elements: str
  sample: ["grow acme from 1024 to 2048 GB"]
usage:
  description: Per tenant with a mounted filesystem, its size and use (statvfs).
  returned: always
  type: dict
  sample:
    acme: {path: /exports/tenants/acme, size_gb: 2048, size_bytes: 2199023255552, used_bytes: 42991616,
           free_bytes: 2198980263936, used_percent: 0.0}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tenantry.msp.plugins.module_utils._nfs_fs import ensure


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "exports": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "tenant": {"type": "str", "required": True},
                    "path": {"type": "path", "required": True},
                    "size_gb": {"type": "int"},
                },
            },
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "image": {"type": "str", "choices": ["keep", "remove"], "default": "keep"},
            "image_dir": {"type": "path", "required": True},
            "fstab": {"type": "path", "default": "/etc/fstab"},
        },
        supports_check_mode=True,
    )
    ensure(module)


if __name__ == "__main__":
    main()
