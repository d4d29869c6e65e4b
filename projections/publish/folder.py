"""The site's folder: written fresh beside ``--out``, swapped in whole, older versions removed.

Every run writes a complete new folder (``.<out>.publish-<random>``) created by the run itself and
written through directory descriptors with ``O_NOFOLLOW`` and ``O_EXCL``, so no link planted
anywhere is followed; ``--out`` is a symbolic link to it, swapped in one ``rename``; the previous
version is then removed, so a page of a subject that left the lists vanishes. A non-empty
``--out`` that is not such a link is refused before anything is written (docs/publishing.md).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

from ledger.errors import ConfigurationError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
GENERATOR = "medtech-ledger publish"
"""The manifest's mark: a folder (or the version an ``--out`` link points at) holding a manifest
with this generator is a site this command wrote, and may be replaced."""

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_MAX_MANIFEST = 64 << 20


def _cannot(what: str, path: Path | str, e: OSError) -> ConfigurationError:
    return ConfigurationError(f"cannot {what} {path}: {e.strerror or e}")


class _Folder:
    """A folder this run created, written only through directory descriptors: every directory on
    the way is opened with ``O_NOFOLLOW`` and every file created with ``O_EXCL``, so a symbolic
    link planted anywhere in it is never followed (an existing name is an error, not a target)."""

    def __init__(self, fd: int, path: Path) -> None:
        self.path = path
        self._dirs: dict[tuple[str, ...], int] = {(): fd}

    def _dir(self, parts: tuple[str, ...]) -> int:
        if parts in self._dirs:
            return self._dirs[parts]
        parent = self._dir(parts[:-1])
        with contextlib.suppress(FileExistsError):
            os.mkdir(parts[-1], 0o777, dir_fd=parent)
        fd = os.open(parts[-1], os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=parent)
        self._dirs[parts] = fd
        return fd

    def write(self, relative: str, data: bytes) -> None:
        parts = tuple(relative.split("/"))
        if any(p in ("", ".", "..") for p in parts):
            msg = f"not a file name in a site: {relative!r}"
            raise ConfigurationError(msg)
        try:
            fd = os.open(
                parts[-1],
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC,
                0o666,
                dir_fd=self._dir(parts[:-1]),
            )
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
        except OSError as e:
            raise _cannot("write", self.path / relative, e) from e

    def close(self) -> None:
        """Close every directory opened."""
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()


def _versions(name: str) -> re.Pattern[str]:
    """The names of ``name``'s versions beside it; only the command ever makes or removes these."""
    return re.compile(rf"\.{re.escape(name)}\.publish-[0-9a-f]{{16}}")


def _is_site(parent_fd: int, folder: str) -> bool:
    """Does ``folder`` (in ``parent_fd``) hold a manifest this command wrote? Read without
    following a link: a planted link is not a manifest."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=parent_fd)
    except OSError:
        return False
    try:
        fd = os.open(MANIFEST, os.O_RDONLY | _NOFOLLOW | _CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return False
    finally:
        os.close(dir_fd)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return False
        data = handle.read(_MAX_MANIFEST + 1)
    try:
        manifest = json.loads(data)
    except ValueError:
        return False
    return isinstance(manifest, dict) and manifest.get("generator") == GENERATOR


def _previous(out: Path, parent_fd: int, name: str) -> str:
    """What ``out`` is now — ``absent``, ``empty`` (a folder) or ``link`` (to a version of the site)
    — or a refusal naming why it cannot be replaced. Nothing is written before this answers."""
    try:
        st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return "absent"
    except OSError as e:
        raise _cannot("read", out, e) from e
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(name, dir_fd=parent_fd)
        if not _versions(name).fullmatch(target):
            msg = (
                f"--out {out} is a symbolic link to {target}, not a site `ledger publish` wrote: "
                "give a new or empty folder (nothing was written)"
            )
            raise ConfigurationError(msg)
        try:
            os.stat(target, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            return "link"  # its version was removed by hand: nothing there to lose
        if not _is_site(parent_fd, target):
            msg = f"--out {out} links to {target}, which holds no {MANIFEST} of a published site (nothing was written)"
            raise ConfigurationError(msg)
        return "link"
    if not stat.S_ISDIR(st.st_mode):
        msg = f"--out {out} exists and is not a folder (nothing was written)"
        raise ConfigurationError(msg)
    try:
        empty = not os.listdir(out)
    except OSError as e:
        raise _cannot("read", out, e) from e
    if empty:
        return "empty"
    if _is_site(parent_fd, name):
        msg = (
            f"--out {out} holds a site as a plain folder (a copy?); `ledger publish` keeps --out as a link "
            "to the current version, to swap it atomically: move the folder away or give another --out "
            "(nothing was written)"
        )
    else:
        msg = (
            f"--out {out} is not empty and holds no {MANIFEST} of a site `ledger publish` wrote: give a new "
            "or empty folder, or the --out of an earlier publish (nothing was written)"
        )
    raise ConfigurationError(msg)


@contextlib.contextmanager
def _swapped_in(out: Path) -> Iterator[_Folder]:
    """A fresh folder beside ``out`` to write the site into; when the block ends without error,
    ``out`` becomes (atomically) a link to it and every older version is removed. On error the
    fresh folder is removed and ``out`` is untouched.

    One publisher at a time per parent folder (``flock`` on it): a second waits. Readers that
    follow ``out`` see the old site or the new one, never a mix within one path lookup."""
    if out.name in ("", ".", ".."):
        msg = f"--out must name the site's folder (e.g. site), not {str(out)!r}"
        raise ConfigurationError(msg)
    name = out.name
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        parent_fd = os.open(parent, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    except OSError as e:
        raise _cannot("write into", parent, e) from e
    try:
        _lock(parent, parent_fd)
        previous = _previous(out, parent_fd, name)
        fresh = _fresh(parent, parent_fd, name)
        try:
            fresh_fd = os.open(fresh, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=parent_fd)
        except OSError as e:
            raise _cannot("write into", parent / fresh, e) from e
        folder = _Folder(fresh_fd, parent / fresh)
        try:
            yield folder
            folder.close()
            # Everything on disk before the link names it: after a crash, the old site or the new
            # one (one sync: a file-by-file fsync costs a disk round trip per page).
            os.sync()
            _point(out, parent_fd, name, fresh, previous)
        except BaseException:
            folder.close()
            shutil.rmtree(fresh, ignore_errors=True, dir_fd=parent_fd)
            raise
        _sweep(parent_fd, name, keep=fresh)
    finally:
        os.close(parent_fd)  # releases the lock


def _lock(parent: Path, parent_fd: int) -> None:
    """Wait for any other publish into ``parent``: the lock goes with the descriptor's close."""
    try:
        import fcntl
    except ImportError:
        msg = "publishing needs a POSIX system (symbolic links, O_NOFOLLOW, flock): see docs/publishing.md"
        raise ConfigurationError(msg) from None
    try:
        fcntl.flock(parent_fd, fcntl.LOCK_EX)
    except OSError as e:
        raise _cannot("lock", parent, e) from e


def _fresh(parent: Path, parent_fd: int, name: str) -> str:
    """A new version folder beside ``out``, made here: ``mkdir`` fails on any existing name, so a
    planted folder or link is never written into."""
    for _ in range(8):
        fresh = f".{name}.publish-{secrets.token_hex(8)}"
        try:
            os.mkdir(fresh, 0o777, dir_fd=parent_fd)
        except FileExistsError:
            continue
        except OSError as e:
            raise _cannot("write into", parent, e) from e
        return fresh
    msg = f"cannot make a new folder beside {parent / name}"
    raise ConfigurationError(msg)


def _point(out: Path, parent_fd: int, name: str, fresh: str, previous: str) -> None:
    """Make ``out`` a link to ``fresh`` in one ``rename`` of a new link over it (atomic on POSIX);
    an empty folder is removed first (it had nothing to show)."""
    link = f".{name}.link-{secrets.token_hex(8)}"
    try:
        if previous == "empty":
            os.rmdir(name, dir_fd=parent_fd)
        os.symlink(fresh, link, dir_fd=parent_fd)
        try:
            os.replace(link, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(link, dir_fd=parent_fd)
            raise
    except OSError as e:
        if e.errno == errno.ENOTEMPTY:
            msg = f"--out {out} was written to while the site was published: nothing was swapped in"
            raise ConfigurationError(msg) from e
        raise _cannot("swap in the site at", out, e) from e
    # The new site is in place: a failure to make the rename durable must not remove it.
    with contextlib.suppress(OSError):
        os.fsync(parent_fd)


def _sweep(parent_fd: int, name: str, keep: str) -> None:
    """Remove every other version of ``name`` (the one just replaced, any a failed run left) and
    stray links: a page that left the lists is then gone from the disk too. Removal never
    follows a link (``shutil.rmtree`` with descriptors)."""
    versions = _versions(name)
    links = re.compile(rf"\.{re.escape(name)}\.link-[0-9a-f]{{16}}")
    try:
        entries = os.listdir(parent_fd)
    except OSError as e:
        log.warning("could not look for old versions of the site: %s", e.strerror or e)
        return
    for entry in entries:
        if entry == keep or not (versions.fullmatch(entry) or links.fullmatch(entry)):
            continue
        try:
            st = os.stat(entry, dir_fd=parent_fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(entry, dir_fd=parent_fd)
            else:
                os.unlink(entry, dir_fd=parent_fd)
        except OSError as e:
            log.warning("could not remove an old version of the site, %s: %s", entry, e.strerror or e)
