"""Small file helpers: PNG writing (Pillow, no torchvision) and safe, atomic result folders.

A result folder is recognised by its marker file ``.invprior-result.json`` (format, generation id,
the list of files the result owns). ``result_folder_write`` never deletes what it did not write:

- a path that is an existing *file* is an error;
- an existing folder without the marker that is not empty is refused unless ``overwrite=True``,
  and even then only the result's own file names are replaced (other files stay untouched);
- writers hold an exclusive ``flock`` on ``.invprior.lock`` inside the folder; readers
  (``result_folder_read``) hold a shared one, so concurrent writers are serialised and a reader
  sees one complete generation, never a mix;
- a save is a small journal: new files are written to ``.invprior-tmp-<gen>/``, the journal
  ``.invprior-journal.json`` is written, the old generation's files are moved to
  ``.invprior-old-<gen>/``, the new ones moved in, and the new marker written (the commit point);
  then the journal and the backup are removed. A save killed at any point is rolled back (or, past
  the commit point, finished) by the next reader or writer of the folder, and stale temporary
  folders are removed; the old result loads in the meantime.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._checks import InvpriorError

__all__ = [
    "MARKER",
    "check_writable_result_folder",
    "result_folder_read",
    "result_folder_write",
    "save_png",
    "to_uint8",
]

MARKER = ".invprior-result.json"
_LOCK = ".invprior.lock"
_JOURNAL = ".invprior-journal.json"
_TMP, _OLD = ".invprior-tmp-", ".invprior-old-"
_FORMAT = 1


def to_uint8(img: torch.Tensor | np.ndarray, vmin: float = 0.0, vmax: float = 1.0) -> np.ndarray:
    """``(C, H, W)`` or ``(H, W)`` -> ``(H, W)`` or ``(H, W, 3)`` uint8, clipped to ``[vmin, vmax]``."""
    a = img.detach().cpu().double().numpy() if isinstance(img, torch.Tensor) else np.asarray(img, dtype=np.float64)
    if a.ndim == 3:
        a = a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)
    scale = max(vmax - vmin, 1e-12)
    return (np.clip((a - vmin) / scale, 0, 1) * 255 + 0.5).astype(np.uint8)


def save_png(img: torch.Tensor | np.ndarray, path: str | Path, vmin: float = 0.0, vmax: float = 1.0) -> None:
    from PIL import Image

    Image.fromarray(to_uint8(img, vmin, vmax)).save(path)


@contextlib.contextmanager
def _locked(folder: Path, exclusive: bool) -> Iterator[None]:
    """An advisory ``flock`` on ``folder/.invprior.lock`` (a no-op where fcntl is missing, or for a
    reader of a folder it cannot write to)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    try:
        fd = os.open(folder / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        if exclusive:
            raise
        yield  # a read-only folder: nobody can be writing it through us
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock (also when the process is killed)


def _write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temporary file in the same folder, fsync, rename)."""
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.part")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The result marker of ``folder`` (None if it has none)."""
    try:
        m = json.loads((folder / MARKER).read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as e:
        raise InvpriorError(f"{folder / MARKER} is unreadable ({e}); the folder's result is damaged") from e
    if not isinstance(m, dict) or not isinstance(m.get("files"), list) or "generation" not in m:
        raise InvpriorError(f"{folder / MARKER} is not an invprior result marker")
    return m


def _recover(folder: Path) -> None:
    """Finish or roll back a save that was killed (call with the exclusive lock held), then remove
    stale temporary folders and files."""
    jpath = folder / _JOURNAL
    if jpath.exists():
        try:
            j = json.loads(jpath.read_text())
        except (OSError, json.JSONDecodeError):
            j = None  # killed while writing the journal itself: nothing was moved yet
        if j is not None:
            marker = read_marker(folder)
            backup = folder / j["backup"]
            committed = marker is not None and marker.get("generation") == j["generation"]
            if not committed:  # roll back: take the new files out, put the old ones back
                displaced = set(j["displaced"])
                for name in j["new_files"]:
                    if name not in displaced:  # it was not there before: whatever is there is new
                        _remove(folder / name)
                for name in displaced:  # moved aside already: back; else it never left its place
                    if (backup / name).exists():
                        os.replace(backup / name, folder / name)
        jpath.unlink(missing_ok=True)
    for p in folder.iterdir():
        if p.name.startswith((_TMP, _OLD)) and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        elif p.name.endswith(".part") and p.name.startswith((MARKER, _JOURNAL)):
            p.unlink(missing_ok=True)
    # temporary siblings leaked by versions before 0.2 (".NAME.tmp-*", ".NAME.old-*")
    for p in folder.parent.glob(f".{folder.name}.tmp-*"):
        shutil.rmtree(p, ignore_errors=True)
    for p in folder.parent.glob(f".{folder.name}.old-*"):
        shutil.rmtree(p, ignore_errors=True)


def _move(src: Path, dst: Path) -> None:
    os.replace(src, dst)


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


def check_writable_result_folder(folder: str | Path, overwrite: bool = False) -> Path:
    """The absolute path of ``folder`` if a result may be written there, else a clear error (see
    ``result_folder_write``); callers with long work call it first, to fail before the work."""
    folder = Path(folder).absolute()
    if folder.exists() and not folder.is_dir():
        raise InvpriorError(f"{folder} is an existing file, not a folder; choose another output path")
    if folder.is_dir():
        has_marker = (folder / MARKER).exists()
        foreign = [p.name for p in folder.iterdir() if not p.name.startswith(".invprior")]
        if not has_marker and foreign and not overwrite:
            shown = ", ".join(sorted(foreign)[:5]) + (", ..." if len(foreign) > 5 else "")
            raise InvpriorError(
                f"{folder} already exists and is not an invprior result folder (it holds {shown}); "
                "choose a new folder, or pass overwrite=True (--overwrite) to add the result's files to it "
                "(other files are left alone)"
            )
    return folder


def result_folder_write(folder: str | Path, write: Callable[[Path], None], overwrite: bool = False) -> Path:
    """Write a result into ``folder`` safely (see the module docstring) and return its path.

    ``write(tmp)`` puts the result's files (and sub-folders) into an empty temporary folder; its
    top-level entries are what the result owns.
    """
    folder = check_writable_result_folder(folder, overwrite)
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder, exclusive=True):
        _recover(folder)
        gen = uuid.uuid4().hex
        tmp, backup = folder / f"{_TMP}{gen}", folder / f"{_OLD}{gen}"
        tmp.mkdir()
        try:
            write(tmp)
            new_files = sorted(p.name for p in tmp.iterdir())
            if any(n.startswith(".invprior") for n in new_files):
                raise InvpriorError("names starting with '.invprior' are reserved for the result folder's bookkeeping")
            old = read_marker(folder)
            old_files = [n for n in (old or {}).get("files", []) if (folder / n).exists()]
            displaced = sorted(set(old_files) | {n for n in new_files if (folder / n).exists()})
            _write_json(
                folder / _JOURNAL,
                {"generation": gen, "backup": backup.name, "new_files": new_files, "displaced": displaced},
            )
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        backup.mkdir()
        for n in displaced:
            _move(folder / n, backup / n)
        for n in new_files:
            _move(tmp / n, folder / n)
        _write_json(folder / MARKER, {"format": _FORMAT, "generation": gen, "files": new_files})  # commit
        (folder / _JOURNAL).unlink()
        shutil.rmtree(backup, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def result_folder_read(folder: str | Path, read: Callable[[Path, dict[str, Any] | None], Any]) -> Any:
    """Call ``read(folder, marker)`` while no writer can change the folder (a shared lock).

    ``marker`` is None for a folder without one (e.g. written before 0.2). A save that was killed
    half-way is finished or rolled back first."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InvpriorError(f"{folder} is not a folder")
    if (folder / _JOURNAL).exists() and os.access(folder, os.W_OK):
        with _locked(folder, exclusive=True):
            _recover(folder)
    with _locked(folder, exclusive=False):
        return read(folder, read_marker(folder))
