"""Test helpers: real repositories with a bare origin, and am-patch run as a user would."""
