"""`python -m am_patch.hooks` is am-patch-hook."""

from am_patch.hooks.cli import main

raise SystemExit(main())
