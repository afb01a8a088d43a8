"""Writing small private files (secret keys) so no reader ever sees half of one.

No Django here: settings import it before Django is configured.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_private(path: Path, text: str, *, replace: bool = True) -> None:
    """Put `text` in `path`, readable by its owner only (0600) from the first byte.

    The text is written whole to a temporary file beside `path` and moved into
    place, so `path` holds all of it or none.  With `replace=False` a file
    already there (another process's, written a moment before) is kept: the
    temporary file is hard-linked into place, and the first process to link
    wins.  Where the file system has no hard links (vfat, some network
    shares), a rename puts it in place instead, and of two processes starting
    at the same instant the later one's text wins.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
        if replace:
            os.replace(temporary, path)
        else:
            _link_unless_there(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _link_unless_there(temporary: str, path: Path) -> None:
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass  # another process put its file there first; all use that one
    except OSError:  # no hard links on this file system
        if not path.exists():
            os.replace(temporary, path)
