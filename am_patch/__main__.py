"""`python -m am_patch` is the runner."""

from am_patch.cli import main

raise SystemExit(main())
