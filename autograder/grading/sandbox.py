"""Confinement of the kernels that run student code, with bubblewrap (``bwrap``).

Design: one sandbox per job slot, each running its own warm fork server
(:mod:`.forkserver`), which forks that slot's kernels one at a time. A sandbox
sees:

- the system read-only (``/usr``, ``/etc``, the libraries, Python and its
  packages, the ``autograder`` package with its checks), nothing else of the
  host: not the course (``solutions/``, ``gradebook.db``, ``exports/``), not
  the other submissions, not the home directory;
- a private ``/tmp`` and ``/dev/shm``, a minimal ``/dev``, its own ``/proc``;
- its own network namespace (only a loopback of its own: the host's
  127.0.0.1 is out of reach), PID, IPC and UTS namespaces, no capabilities;
- exactly one writable folder, the slot's folder, which holds the working
  copy of the submission being graded and the Unix sockets (ZeroMQ ``ipc``
  transport) through which its kernel talks to the grader. It is bound at the
  same path inside and outside, so the connection file means the same on both
  sides.

Why a server per slot and not per kernel: a sandbox is fixed when it starts,
and a fresh one per kernel would import torch again (seconds of CPU per
notebook). Why the students of one slot cannot meet: the slot runs one kernel
at a time, and before each kernel the server kills every other process in the
sandbox's PID namespace (whatever a previous submission left running), empties
``/tmp`` and ``/dev/shm``, and the grader empties the slot's folder before copying in the next
working copy. The server makes itself undumpable, so a kernel cannot ptrace
it or write its memory to leave something behind for the next one.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

INSTALL = ("bubblewrap (bwrap) is needed to confine student code: install it with "
           "`sudo apt-get install bubblewrap` (Debian, Ubuntu; `sudo dnf install bubblewrap` on Fedora), "
           "or grade unconfined with --no-sandbox")
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/sys")
# What a kernel's environment keeps of the grader's (nothing else: no tokens, no paths into home).
ENV_KEPT = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONPATH", "PYTHONHASHSEED",
            "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MPLBACKEND", "NBGRADER_EXECUTION")


MPL_CACHE = "/.autograder/matplotlib"


@functools.lru_cache(maxsize=1)
def problem() -> str:
    """'' when confined kernels can start here; otherwise a one-line reason with the way out."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return f"bwrap was not found. {INSTALL}."
    try:
        done = subprocess.run([bwrap, *_isolation(), *_system(), *_read_only_rest(), "--", "/bin/true"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bwrap could not run ({error}). {INSTALL}."
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return (f"bwrap cannot create namespaces here ({why}); allow unprivileged user namespaces "
                f"(sysctl kernel.unprivileged_userns_clone=1) or run grading where they are allowed, "
                f"or grade unconfined with --no-sandbox")
    return ""


def _isolation() -> list[str]:
    return ["--unshare-all", "--die-with-parent", "--cap-drop", "ALL",
            "--dev", "/dev", "--tmpfs", "/dev/shm", "--proc", "/proc", "--tmpfs", "/tmp"]


def _read_only_rest() -> list[str]:
    """bwrap builds the sandbox's / and /dev on tmpfs, writable: once everything is mounted, they are
    made read-only, so that /tmp, /dev/shm (both private, emptied between notebooks) and the slot's
    folder are all a kernel can write."""
    return ["--remount-ro", "/dev", "--remount-ro", "/"]


def _system() -> list[str]:
    args = []
    for path in SYSTEM:
        if os.path.islink(path):  # merged /usr: /bin -> usr/bin
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


def _libraries() -> list[str]:
    """Python, its packages and the autograder package: read-only, each at its own path. A source
    checkout on sys.path (an editable install, PYTHONPATH) is not bound whole: it is the course,
    with solutions/ in it; only its autograder package is."""
    import autograder

    wanted = {os.path.abspath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    wanted.add(str(Path(autograder.__file__).resolve().parent))
    for entry in sys.path:
        if entry and os.path.isabs(entry) and os.path.basename(entry) in ("site-packages", "dist-packages"):
            wanted.add(entry)
    for path in list(wanted):
        real = os.path.realpath(path)
        if real != path:
            wanted.add(real)
    kept = sorted(p for p in wanted if os.path.exists(p) and not p.startswith(SYSTEM))
    # a folder inside another one that is bound already needs no bind of its own
    kept = [p for p in kept if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in kept)]
    args = []
    for path in kept:
        args += ["--ro-bind", path, path]
    return args


# Parts of the autograder package that know answers (reference implementations, hidden data, correct
# alternatives) or judge: the judge runs them outside the sandbox, so a kernel never sees them.
HIDDEN_PARTS = ("checks/instructor", "cases")


def _hidden() -> list[str]:
    """Each instructor-only folder of the package covered by an empty, read-only one."""
    import autograder

    package = Path(autograder.__file__).resolve().parent
    args = []
    for part in HIDDEN_PARTS:
        if (package / part).is_dir():
            args += ["--tmpfs", str(package / part), "--remount-ro", str(package / part)]
    return args


def _matplotlib_cache() -> str | None:
    """The instructor's matplotlib font cache, shown read-only, so no kernel rebuilds it."""
    path = os.environ.get("MPLCONFIGDIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "matplotlib")
    return path if os.path.isdir(path) else None


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A kernel's environment: what ENV_KEPT names of the grader's, a home in the private /tmp."""
    env = {key: os.environ[key] for key in ENV_KEPT if key in os.environ}
    env.update(HOME="/tmp", TMPDIR="/tmp", IPYTHONDIR="/tmp/.ipython", JUPYTER_RUNTIME_DIR="/tmp/.jupyter",
               MPLCONFIGDIR="/tmp/matplotlib")
    if _matplotlib_cache():
        env["AUTOGRADER_MPL_CACHE"] = MPL_CACHE  # the server copies its font list into each fresh /tmp
    env.update(extra or {})
    return env


def command(folder: Path) -> list[str]:
    """The bwrap command line that confines a process to ``folder`` (its one writable folder and its
    working directory); the confined command follows it."""
    args = [shutil.which("bwrap") or "bwrap", *_isolation(), *_system(), *_libraries(), *_hidden()]
    cache = _matplotlib_cache()
    if cache:  # not at its own path: nothing else of the home directory shows
        args += ["--ro-bind", cache, MPL_CACHE]
    folder = str(Path(folder).resolve())
    args += ["--bind", folder, folder, *_read_only_rest(), "--chdir", folder, "--clearenv"]
    for key, value in environment().items():
        args += ["--setenv", key, value]
    return [*args, "--"]


class Slot:
    """One job slot: its folder and its confined fork server."""

    def __init__(self, folder: Path, preload: list[str]):
        from autograder.grading.forkserver import ForkServer

        self.folder = folder.resolve()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.server = ForkServer(preload, env=environment(), wrap=command(self.folder), cwd=str(self.folder))

    def prepare(self, working_copy: str | None) -> str:
        """Empty the slot (after the server has ended every process a previous kernel left) and copy
        ``working_copy`` into it; return the folder the kernel works in."""
        from autograder.grading.forkserver import empty_folder

        self.server.reset()
        empty_folder(str(self.folder))
        if working_copy and Path(working_copy).is_dir():
            for entry in os.scandir(working_copy):
                target = self.folder / entry.name
                if entry.is_dir(follow_symlinks=False):
                    shutil.copytree(entry.path, target, symlinks=True)
                elif entry.is_file(follow_symlinks=False):
                    shutil.copy2(entry.path, target)
        return str(self.folder)

    def close(self) -> None:
        self.server.close()


class Pool:
    """A slot for each grading thread (the pipeline runs ``jobs`` threads, each grading one
    submission at a time, so a thread's slot is never shared)."""

    def __init__(self, scratch: Path, slots: int, preload: list[str]):
        self._free = [Slot(scratch / f"s{index}", preload) for index in range(max(1, slots))]
        self._all = list(self._free)
        self._local = threading.local()
        self._lock = threading.Condition()

    def slot(self) -> Slot:
        mine = getattr(self._local, "slot", None)
        if mine is None:
            with self._lock:
                while not self._free:
                    self._lock.wait()
                mine = self._local.slot = self._free.pop(0)
        return mine

    def close(self) -> None:
        for slot in self._all:
            slot.close()
