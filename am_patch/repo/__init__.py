"""The only package that imports pygit2: repositories, worktrees, trees, snapshots and refs."""

from am_patch.repo.objects import (
    BLOB,
    EXEC,
    GITLINK,
    LINK,
    ZERO_OID,
    Change,
    CommitOid,
    RepoPath,
    Snapshot,
    TreeOid,
    is_git_component,
    iter_parents,
    remove_tree,
)
from am_patch.repo.repository import Repo

__all__ = [
    "BLOB",
    "EXEC",
    "GITLINK",
    "LINK",
    "ZERO_OID",
    "Change",
    "CommitOid",
    "Repo",
    "RepoPath",
    "Snapshot",
    "TreeOid",
    "is_git_component",
    "iter_parents",
    "remove_tree",
]
