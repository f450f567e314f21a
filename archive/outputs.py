"""Output files: refused before the work that would fill them, never after.

``check_output(path, suffixes)`` raises :class:`~entropy_atlas.errors.OutputPathError`
when the file could not be written: a suffix that is not one of ``suffixes``, a path
that is a directory, an existing file that is read-only, or a folder that cannot be
created or written. Missing folders are created when the file is written.
"""

from __future__ import annotations

import os
from pathlib import Path

from entropy_atlas.errors import OutputPathError

FIGURE_SUFFIXES = (".png", ".svg", ".pdf")
EXPORT_SUFFIXES = (".json", ".csv", ".parquet")


def check_output(path: Path, suffixes: tuple[str, ...]) -> Path:
    """``path`` when a file can be written there (see the module's rule)."""
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{path} is a directory; name a file")
    if path.suffix.lower() not in suffixes:
        raise OutputPathError(f"{path}: the file must end in {', '.join(suffixes)}")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise OutputPathError(f"{path} exists and is read-only")
        return path
    folder = next((p for p in [path.parent, *path.parent.parents] if p.exists()), Path("."))
    if not folder.is_dir():
        raise OutputPathError(f"cannot write {path}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputPathError(f"cannot write {path}: the folder {folder} is not writable")
    return path
