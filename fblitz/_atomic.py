"""Atomic file replacement whose leftovers after a crash are cleaned up by the next write (internal).

A file is written to a hidden temporary file in the target's directory,
flushed and fsynced, then renamed over the target with ``os.replace``; a
failure removes the temporary file. A process killed mid-write (SIGKILL, power
loss) cannot remove it, so every temporary name records its writer:

    .<target name>.fblitz-<host tag>-<pid>-<random>.tmp

and each later write of the same target first removes the temporary files
of *that target* whose writer is gone: same host, and a process id that no
longer runs (or is this process, without a write of it in flight). Files of
other targets, of other hosts (a shared filesystem) and of live writers are
never touched.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
import threading
from collections.abc import Callable
from typing import BinaryIO

_IN_FLIGHT: set[str] = set()  # temporary files this process is writing now
_LOCK = threading.Lock()


def _host_tag() -> str:
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def _temp_pattern(target: str) -> re.Pattern:
    name = re.escape(os.path.basename(target))
    return re.compile(rf"\.{name}\.fblitz-(?P<host>[0-9a-f]{{8}})-(?P<pid>\d+)-[0-9a-f]+\.tmp")


def _process_exists(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name != "posix":  # no harmless liveness probe (os.kill would terminate on Windows)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # another user's process, or an id we cannot probe: assume alive
    return True


def stale_temps(target: str) -> list[str]:
    """The temporary files of ``target`` left behind by writers that no longer run (full paths)."""
    directory = os.path.dirname(os.path.abspath(target))
    pattern, host = _temp_pattern(target), _host_tag()
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    stale = []
    for name in names:
        match = pattern.fullmatch(name)
        if match is None or match["host"] != host:
            continue
        path = os.path.join(directory, name)
        pid = int(match["pid"])
        with _LOCK:
            ours_in_flight = path in _IN_FLIGHT
        if ours_in_flight or (pid != os.getpid() and _process_exists(pid)):
            continue
        stale.append(path)
    return stale


def remove_stale_temps(target: str) -> list[str]:
    """Remove :func:`stale_temps` of ``target``; returns the paths removed."""
    removed = []
    for path in stale_temps(target):
        try:
            os.remove(path)
        except FileNotFoundError:
            continue  # another writer cleaned it up first
        removed.append(path)
    return removed


def write_atomically(target: str, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(file)`` on a fresh temporary file, then rename it over ``target``.

    Stale temporary files of ``target`` from killed writers are removed first.
    """
    remove_stale_temps(target)
    directory = os.path.dirname(os.path.abspath(target))
    temp = os.path.join(
        directory,
        f".{os.path.basename(target)}.fblitz-{_host_tag()}-{os.getpid()}-{secrets.token_hex(4)}.tmp",
    )
    with _LOCK:
        _IN_FLIGHT.add(temp)
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
        try:
            with os.fdopen(fd, "wb") as file:
                write(file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, target)
        except BaseException:
            if os.path.exists(temp):
                os.remove(temp)
            raise
    finally:
        with _LOCK:
            _IN_FLIGHT.discard(temp)
    _sync_directory(directory)


def _sync_directory(directory: str) -> None:
    """Make the rename itself durable (not possible on every platform)."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
