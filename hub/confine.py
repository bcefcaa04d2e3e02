"""What each user's server sees: the bubblewrap (``bwrap``) command lines the hub starts them with.

A student's server runs in a sandbox like a grading kernel's (:mod:`autograder.grading.sandbox`),
less its network namespace (the proxy must reach the server, the server the hub). It sees the
system read-only, Python and the course's virtual environment read-only, the *student build* of
the ``autograder`` package (what the student pack ships: public checks only) at the place where
the editable install looks for the package, and exactly two writable folders, its home and
nbgrader's exchange. The rest of the checkout, ``solutions/``, the instructor checks, the
instructor's course folder, the other students' homes and the hub's state are not there at all.

An instructor's server sees the machine as it is (it may grade, so it needs the course and
bubblewrap of its own), except for folders above what the classroom needs that the instructor's
account could not enter (``/root`` where Python was installed there, say): those show only
what the classroom needs.

When the hub runs as root, bwrap starts as root (it can then show folders such as
``/root/.pyenv`` whatever their permissions), and ``setpriv`` drops to the user's account, with
no capabilities and no way to gain any (``--no-new-privs``), before the server starts. Run by
anyone else, bwrap confines the server in a user namespace of that account.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

from autograder.grading.sandbox import SYSTEM, _read_only_rest, _system

# A student's own namespaces: processes, IPC, host name, cgroups; not the network (see above).
STUDENT_ISOLATION = ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                     "--die-with-parent", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/dev/shm"]


def python_paths() -> list[str]:
    """The interpreter and the virtual environment, each at its own path (and where a link points),
    less what the system's folders already show."""
    wanted = {os.path.abspath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    wanted |= {os.path.realpath(p) for p in wanted}
    return _outermost(p for p in wanted if os.path.isdir(p) and not _in_system(p))


def _in_system(path: str) -> bool:
    return any(path == top or path.startswith(top + "/") for top in (*SYSTEM, "/etc", "/sys"))


def _outermost(paths) -> list[str]:
    paths = sorted(set(paths))
    return [p for p in paths if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in paths)]


def _parents(paths: list[str]) -> list[str]:
    """The folders above ``paths`` that a sandbox must create: bwrap would make them readable by root
    only, so they are made first, readable by all (the system's folders and /tmp are there already)."""
    found = set()
    for path in paths:
        parent = os.path.dirname(path)
        while parent not in ("/", "/tmp", "") and not _in_system(parent):
            found.add(parent)
            parent = os.path.dirname(parent)
    return sorted(found, key=lambda p: (p.count("/"), p))


def drop_to(uid: int, gid: int) -> list[str]:
    """Run the rest as ``uid``: no capabilities, none to be gained (setuid programs stay powerless)."""
    return [shutil.which("setpriv") or "setpriv", f"--reuid={uid}", f"--regid={gid}", "--init-groups",
            "--no-new-privs", "--bounding-set=-all", "--inh-caps=-all", "--"]


def student_view(home: str, exchange: str, student_package: str, package_dir: str, config_dir: str,
                 uid: int | None) -> list[str]:
    """The command line that confines a student's server (``uid`` None: the hub's own account)."""
    read_only = {path: path for path in python_paths()}
    read_only[config_dir] = config_dir
    # the student build where the editable install finds the package: the real one is not there
    read_only[package_dir] = student_package
    writable = {home: home, exchange: exchange}
    # the host's /etc (its accounts, for the server) and /sys, unlike a grading kernel's few files of them
    args = [shutil.which("bwrap") or "bwrap", *STUDENT_ISOLATION, *_system(), "--ro-bind", "/etc", "/etc",
            "--ro-bind", "/sys", "/sys"]
    for parent in _parents([*read_only, *writable]):
        args += ["--perms", "0755", "--dir", parent]
    for target, source in read_only.items():
        args += ["--ro-bind", source, target]
    for target, source in writable.items():
        args += ["--bind", source, target]
    args += [*_read_only_rest(), "--chdir", home, "--"]
    return args + (drop_to(uid, _gid_of(uid)) if uid is not None else [])


def instructor_view(needed: dict[str, bool], uid: int | None, chdir: str, gids: list[int] | None = None) -> list[str]:
    """The command line for an instructor's server, starting in ``chdir``: the machine as it is, except
    that folders the account cannot enter, above the paths in ``needed`` (path: writable), show only
    those paths. ``uid`` None: the hub's own account, which needs no such view."""
    if uid is None:
        return []
    gids = gids if gids is not None else os.getgrouplist(_name_of(uid), _gid_of(uid))
    hidden = _outermost(blocked for path in needed if (blocked := first_blocked(path, uid, gids)))
    # its own process namespace, so that the server and everything it started end together; /proc
    # stays the host's, which the grader's own bwrap needs to mount a /proc of its own
    args = [shutil.which("bwrap") or "bwrap", "--unshare-pid", "--die-with-parent", "--dev-bind", "/", "/"]
    for folder in hidden:
        args += ["--perms", "0755", "--tmpfs", folder]
    shown = sorted((p for p in needed if any(_under(p, h) for h in hidden)), key=lambda p: (p.count("/"), p))
    for parent in _parents(shown):
        if any(_under(parent, h) and parent != h for h in hidden):
            args += ["--perms", "0755", "--dir", parent]
    for path in shown:
        args += ["--bind" if needed[path] else "--ro-bind", path, path]
    return [*args, "--chdir", chdir, "--", *drop_to(uid, _gid_of(uid))]


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def first_blocked(path: str, uid: int, gids: list[int]) -> str | None:
    """The outermost folder on the way to ``path`` that ``uid`` cannot enter, or None."""
    current = "/"
    for part in Path(path).parts[1:]:
        current = os.path.join(current, part)
        try:
            info = os.stat(current)
        except OSError:
            return None
        if stat.S_ISDIR(info.st_mode) and not _may_enter(info, uid, gids):
            return current
    return None


def _may_enter(info: os.stat_result, uid: int, gids: list[int]) -> bool:
    if uid == 0:
        return True
    if info.st_uid == uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid in gids:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def _gid_of(uid: int) -> int:
    import pwd

    return pwd.getpwuid(uid).pw_gid


def _name_of(uid: int) -> str:
    import pwd

    return pwd.getpwuid(uid).pw_name
