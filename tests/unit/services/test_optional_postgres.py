"""A Director on SQLite (the default, and what the roles install without the ``postgres`` extra) runs
without psycopg: nothing it imports at start needs it."""

from __future__ import annotations

import subprocess
import sys


def test_the_director_starts_its_imports_without_psycopg() -> None:
    code = (
        "import sys; sys.modules['psycopg'] = None\n"  # as if the extra were not installed: import fails
        "import tenantry.director.__main__, tenantry.director.service, tenantry.director.api.server\n"
        "import tenantry.director.cluster, tenantry.director.store\n"
        "from tenantry.director.store import Store\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
