"""Allows ``python -m processor``."""

from processor.cli import main

raise SystemExit(main())
