"""Stand-in for ansible-test's pip bootstrap script, for machines that reach PyPI but not ci-files.

ansible-test creates its sanity virtual environments without pip and runs a cached
``get_pip_<version>.py`` with pip-install arguments (``pip==24.2 --no-setuptools ...``).
This does the same with the standard library's ``ensurepip`` and then ``pip install``
from the configured index.  tests/sanity.sh places it in ansible-test's cache.
"""

from __future__ import annotations

import subprocess
import sys

SKIP = {"--no-setuptools", "--no-wheel"}


def main() -> None:
    subprocess.run([sys.executable, "-m", "ensurepip", "--default-pip"], check=True, stdout=subprocess.DEVNULL)
    args = [a for a in sys.argv[1:] if a not in SKIP]
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *args], check=True)


if __name__ == "__main__":
    main()
