"""Durable file output: atomic writes under unique temp names, stale-temp cleanup, exclusive claims and locks.

Every file pseval writes goes through here, so that a crash, a full disk or a second process never leaves a
half-written file, never deletes another live process's temp file, and results honour the user's umask.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import secrets
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from filelock import FileLock

from pseval.errors import PsevalError

# Temp names carry the writer's host and pid, so a later run can tell a dead writer's debris from a live writer's
# file; another host's temp files (shards on several nodes sharing a folder) are never taken for debris.
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<host>[A-Za-z0-9-]*)\.pid(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40]


class OutputError(PsevalError, OSError):
    """A result could not be written (disk full, permissions, not a folder); names the path."""


def temp_path(final: Path) -> Path:
    """A unique hidden temp name beside `final`, tagged with this process's pid."""
    return final.with_name(f".{final.name}.{_HOST}.pid{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def stale_temp_files(folder: Path) -> list[Path]:
    """Temp files in `folder` written on this host by a process that no longer runs (debris of a killed write)."""
    if not folder.is_dir():
        return []
    out = []
    for p in folder.iterdir():
        m = _TEMP_RE.match(p.name)
        if m and m.group("host") == _HOST and not _pid_alive(int(m.group("pid"))):
            out.append(p)
    return sorted(out)


def temp_files(folder: Path) -> list[Path]:
    """Every pseval temp file in `folder`, live or stale."""
    return sorted(p for p in folder.iterdir() if _TEMP_RE.match(p.name)) if folder.is_dir() else []


def remove_stale_temp_files(folder: Path) -> int:
    """Delete the debris of killed writes in `folder`; a live process's temp files are left alone."""
    n = 0
    for p in stale_temp_files(folder):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            n += 1
    return n


def _open_new(path: Path, binary: bool) -> IO[Any]:
    # os.open with 0o666 lets the umask decide the permissions (tempfile would force 0600).
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    return os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")


# The OS errors of a write the system refused (not a bug): full disk, quota, file-size limit, read-only, permission.
WRITE_FAILURES = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM})
_OS_CODE_RE = re.compile(r"\(os error (\d+)\)|\bcode: (\d+)\b|\[Errno (\d+)\]")


def write_failure_errno(exc: BaseException, folder: Path) -> int | None:
    """The errno of a refused write hidden in another library's exception (its cause chain, or its message as Rust's
    io::Error or torch print it); torch's bare "file write failed" is ENOSPC on a full file system, else EIO.
    None when it is not a refused write."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in WRITE_FAILURES:
            return seen.errno
        m = _OS_CODE_RE.search(str(seen))
        if m:
            code = int(next(g for g in m.groups() if g))
            return code if code in WRITE_FAILURES else None
        seen = seen.__cause__ or seen.__context__
    if "file write failed" in str(exc):
        try:
            st = os.statvfs(folder)
        except OSError:
            return None
        return errno.ENOSPC if st.f_bavail * st.f_frsize < (1 << 20) else errno.EIO
    return None


def _umask() -> int:
    """The process's umask (read by setting it and putting it back: there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _describe(exc: OSError, path: Path) -> str:
    if exc.errno == errno.ENOSPC:
        return f"{path}: no space left on device; nothing was written there (finished results are kept)"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{path}: not writable ({exc.strerror})"
    return f"{path}: cannot write ({exc.strerror or exc})"


@contextlib.contextmanager
def atomic_target(path: str | Path, exclusive: bool = False) -> Iterator[Path]:
    """A unique temp path for a writer that needs a file name (safetensors, numpy); on success it is fsynced and
    renamed to `path`, on any failure removed. With `exclusive`, an existing file is never replaced: the temp is
    hard-linked into place (which fails if a file is there) and FileExistsError is raised."""
    final = Path(path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(_describe(exc, final.parent)) from exc
    tmp = temp_path(final)
    try:
        yield tmp
        # Writers that create the file themselves (safetensors: 0600) would otherwise set its mode: results get
        # the mode every other file gets under the user's umask (0644 under 022).
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        if exclusive:
            os.link(tmp, final)
        else:
            os.replace(tmp, final)
    except FileExistsError:
        raise
    except OSError as exc:
        raise OutputError(_describe(exc, final)) from exc
    except Exception as exc:  # a writer outside Python's io (safetensors, torch) reports the OS error in its own type
        code = write_failure_errno(exc, final.parent)
        if code is None:
            raise
        raise OutputError(_describe(OSError(code, os.strerror(code)), final)) from exc
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | Path, write: Callable[[IO[Any]], object], binary: bool = False,
                 exclusive: bool = False) -> bool:
    """Write through a temp file, fsync, then rename into place; on any failure the temp file is removed.

    With `exclusive`, an existing file is never replaced and False is returned when another writer got there first.
    """
    try:
        with atomic_target(path, exclusive) as tmp, _open_new(tmp, binary) as fh:
            write(fh)
    except FileExistsError:
        return False
    return True


def json_safe(x: Any) -> Any:
    """NaN and inf become null, tuples lists, so the file is strict JSON."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    return x


def write_json_atomic(obj: Any, path: str | Path, exclusive: bool = False, indent: int | None = 2) -> bool:
    """Strict JSON written atomically (see write_atomic)."""
    text = json.dumps(json_safe(obj), indent=indent)
    return write_atomic(path, lambda fh: fh.write(text), exclusive=exclusive)


def write_text_atomic(text: str, path: str | Path) -> None:
    """UTF-8 text written atomically."""
    write_atomic(path, lambda fh: fh.write(text))


def write_bytes_atomic(data: bytes, path: str | Path) -> None:
    """Bytes written atomically."""
    write_atomic(path, lambda fh: fh.write(data), binary=True)


def check_writable(path: str | Path, is_dir: bool) -> None:
    """Fail before any work when `path` (a folder, or a file's folder) cannot be created or written."""
    p = Path(path)
    target = p if is_dir else p.parent
    if p.exists() and is_dir != p.is_dir():
        raise OutputError(f"{p}: exists and is {'a file' if p.is_file() else 'a folder'}, "
                          f"expected {'a folder' if is_dir else 'a file'}")
    probe = target
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"{target}: cannot be created, {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"{target}: not writable ({probe} does not allow writing)")


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock held for the block; the system releases it if the process dies (filelock: flock on POSIX,
    msvcrt on Windows, so `import pseval` needs no fcntl)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(_describe(exc, path.parent)) from exc
    with FileLock(str(path)):
        yield
