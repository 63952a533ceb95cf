"""`python -m pytest_edgeopt ...`: see pytest_edgeopt/cli.py."""

from __future__ import annotations

import sys

from pytest_edgeopt.cli import main

sys.exit(main())
