"""List the files below a folder so that every entry is accounted for.

``Path.rglob`` (and ``is_file()``) silently drop what they cannot use: a broken symlink, a
symlink that points back to itself, a symlinked sub-folder (not descended into), a FIFO, a
folder that cannot be listed. Here every entry is either a regular file to use or a
:class:`Skipped` row with a reason, so that ``rejected.csv`` accounts for it.

Symlinks are followed, to files and to folders alike (a symlinked sub-folder inside a class
folder is walked like a symlinked class folder), except a folder symlink that leads back to
a folder being walked (or one containing it): following it would never end, so it is
reported as ``symlink_loop``. Dotfiles and dot-folders (``.DS_Store``, ``._x.jpg``,
``.git``) are ignored, as before.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

FILE = "file"
FOLDER = "folder"

# Rejection reasons for entries that are not usable files.
BROKEN_SYMLINK = "broken_symlink"
SYMLINK_LOOP = "symlink_loop"
NOT_A_REGULAR_FILE = "not_a_regular_file"
UNREADABLE = "unreadable"  # the same reason images.py gives a file it cannot read


@dataclass(frozen=True, slots=True)
class Skipped:
    path: Path
    reason: str
    detail: str


def entry_kind(path: Path) -> tuple[str, str]:
    """``(FILE, "")``, ``(FOLDER, "")`` or ``(reason, detail)`` for what ``path`` is."""
    try:
        info = path.stat()  # follows symlinks
    except OSError as exc:
        if path.is_symlink():
            if exc.errno == errno.ELOOP:
                return SYMLINK_LOOP, "the symlink leads back to itself: fix or remove it"
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                target = os.readlink(path)
                return BROKEN_SYMLINK, f"points to {target}, which does not exist"
        return UNREADABLE, exc.strerror or str(exc)
    if stat.S_ISREG(info.st_mode):
        return FILE, ""
    if stat.S_ISDIR(info.st_mode):
        return FOLDER, ""
    return NOT_A_REGULAR_FILE, "a FIFO, socket or device, not a file"


def leads_back(path: Path, walked: tuple[str, ...]) -> str | None:
    """The real path of folder ``path`` if it is, or contains, one of the ``walked`` folders."""
    real = os.path.realpath(path)
    prefix = real.rstrip(os.sep) + os.sep
    if any(folder == real or folder.startswith(prefix) for folder in walked):
        return real
    return None


def walk(folder: Path, walked: tuple[str, ...] = ()) -> tuple[list[Path], list[Skipped]]:
    """Regular files below ``folder`` (symlinks followed) and every entry that is not one.

    ``walked`` holds the real paths of folders above ``folder`` that are being walked too
    (e.g. SOURCE for a class folder): a symlink leading back to one of them is a loop.
    """
    files: list[Path] = []
    skipped: list[Skipped] = []
    pending = [(folder, (*walked, os.path.realpath(folder)))]
    while pending:
        directory, chain = pending.pop()
        try:
            entries = sorted(directory.iterdir())
        except OSError as exc:
            reason = exc.strerror or str(exc)
            skipped.append(Skipped(directory, UNREADABLE, f"cannot list the folder: {reason}"))
            continue
        for path in entries:
            if path.name.startswith("."):
                continue
            kind, detail = entry_kind(path)
            if kind == FILE:
                files.append(path)
            elif kind != FOLDER:
                skipped.append(Skipped(path, kind, detail))
            elif (real := leads_back(path, chain)) is not None:
                skipped.append(Skipped(path, SYMLINK_LOOP, loop_detail(real)))
            else:
                pending.append((path, (*chain, os.path.realpath(path))))
    return files, skipped


def loop_detail(real: str) -> str:
    return f"links to {real}, a folder that contains it: not followed (it would never end)"
