"""``python -m tenantry.lab``."""

from __future__ import annotations

import sys

from tenantry.lab.cli import main

sys.exit(main())
