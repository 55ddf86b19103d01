"""am-patch: apply machine-written patches so that SUCCESS means safe to close the issue."""

__version__ = "0.1.0"
