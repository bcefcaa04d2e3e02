"""Confinement of the kernels that run student code, with bubblewrap (``bwrap``).

Design: one sandbox per job slot, each running its own warm fork server
(:mod:`.forkserver`, the sandbox's pid 1), which forks that slot's kernels one
at a time. A sandbox sees:

- the system read-only (``/usr`` and the library folders), and of ``/etc`` and
  ``/sys`` only what Python, torch, NumPy, scikit-learn and matplotlib read
  (:data:`ETC`, :data:`SYS`, and a ``passwd``, ``group``, ``hosts`` and
  ``nsswitch.conf`` written for the sandbox): no ``shadow``, no ssh keys, no
  host configuration;
- Python and its packages read-only: a virtual environment at :data:`VENV`
  (its ``lib`` only, with an interpreter link and a ``pyvenv.cfg`` written
  for it), the interpreter it was made from at its own path, and the
  ``autograder`` package at :data:`PACKAGE_PARENT` first on ``PYTHONPATH``
  when it is not installed in the environment (an editable install, which
  lives in the course), its :data:`HIDDEN_PARTS` empty: so neither the command line, ``sys.executable``,
  ``sys.prefix`` nor the environment names the course's folder. Nothing else
  of the host: not the course (``solutions/``, ``gradebook.db``,
  ``exports/``), not the other submissions, not the home directory;
- a private ``/tmp`` and ``/dev/shm``, a minimal ``/dev``, its own ``/proc``;
- its own network namespace (only a loopback of its own: the host's
  127.0.0.1 is out of reach), PID, IPC and UTS namespaces, no capabilities;
- exactly one writable folder, the slot's folder, which holds the working
  copy of the submission being graded and the Unix sockets (ZeroMQ ``ipc``
  transport) through which its kernel talks to the grader. It is bound at the
  same path inside and outside (a temporary folder, not the course), so the
  connection file means the same on both sides.

As whom: never root. Inside, every process is uid and gid :data:`UID`
("sandbox"). On the host, the sandbox runs as the user who grades, or, when
grading runs as root (a container, a CI runner, a grading server), as an
unprivileged account (``nobody``, or the one AUTOGRADER_SANDBOX_USER names): a
user namespace whose ids map back to root would still read every root-owned
file on a bound path. Root cannot just exec bwrap as that account, which may
not reach what the sandbox shows (a Python under ``/root``, a folder made by
``mkdtemp``): bwrap resolves every source path with its caller's rights. So
under root two bwraps run: the first, as root, only builds the view (a mount
namespace holding just what the sandbox shows, each folder on the way to it
open to all); ``setpriv`` drops to the account; the second bwrap isolates
exactly as it does for an ordinary user. The slot's folder belongs to that
account, and the grader (root) still reads it, connects to its sockets and
signals its kernels.

Why a server per slot and not per kernel: a sandbox is fixed when it starts,
and a fresh one per kernel would import torch again (seconds of CPU per
notebook). Why the students of one slot cannot meet: the slot runs one kernel
at a time, and before each kernel the server kills every other process in the
sandbox's PID namespace (whatever a previous submission left running), empties
``/tmp`` and ``/dev/shm``, and the grader empties the slot's folder before copying in the next
working copy. The server makes itself undumpable, so a kernel cannot ptrace
it or write its memory to leave something behind for the next one; as pid 1
it ignores every signal a kernel sends it.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

INSTALL = ("bubblewrap (bwrap) is needed to confine student code: install it with "
           "`sudo apt-get install bubblewrap` (Debian, Ubuntu; `sudo dnf install bubblewrap` on Fedora), "
           "or grade unconfined with --no-sandbox")
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# Of the host's /etc, what the libraries read (found by tracing a kernel that imports them, trains,
# plots and saves): the dynamic linker's cache, the time zone, mimetypes' table, fontconfig's setup
# (matplotlib runs fc-list when it builds its font list).
ETC = ("ld.so.cache", "localtime", "mime.types", "fonts")
SYS = ("/sys/devices/system/cpu",)  # torch (cpuinfo) and OpenMP count the processors here
VENV = "/opt/venv"  # where a virtual environment's packages show
PACKAGE_PARENT = "/opt/autograder"  # where an autograder package from outside the environment shows
# Parts of the autograder package that know answers (reference implementations, hidden data, correct
# alternatives) or judge: the judge runs them outside the sandbox, so a kernel never sees them (each
# shows as an empty, read-only folder).
HIDDEN_PARTS = ("checks/instructor", "cases")
UID = 1000  # the sandbox's user and group inside
HOSTNAME = "sandbox"
SANDBOX_USER = "nobody"  # the host account a sandbox runs as when grading runs as root
# What a kernel's environment keeps of the grader's (nothing else: no tokens, no paths; PATH and
# PYTHONPATH are the sandbox's own).
ENV_KEPT = ("LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONHASHSEED",
            "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MPLBACKEND", "NBGRADER_EXECUTION")


MPL_CACHE = "/.autograder/matplotlib"


@functools.lru_cache(maxsize=1)
def problem() -> str:
    """'' when confined kernels can start here; otherwise a one-line reason with the way out."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return f"bwrap was not found. {INSTALL}."
    try:
        as_root = owner() is not None
    except ValueError as error:
        return f"{error}: name an unprivileged account, or grade unconfined with --no-sandbox"
    if as_root and not _setpriv():
        return ("grading runs as root, and setpriv (util-linux) was not found to run the sandbox as an "
                "unprivileged user: install util-linux, grade as an ordinary user, or grade unconfined with --no-sandbox")
    try:
        if as_root:
            done = subprocess.run([*_gather(_system() + _host_config(), None), "--", "/bin/true"], capture_output=True, text=True,
                                  timeout=30)
            if done.returncode != 0:
                why = (done.stderr.strip().splitlines() or ["no message"])[-1]
                return (f"bwrap cannot create namespaces here as root ({why}): preparing the unprivileged sandbox "
                        f"needs CAP_SYS_ADMIN (in a container: --cap-add SYS_ADMIN); or grade as an ordinary user, "
                        f"or grade unconfined with --no-sandbox")
        done = subprocess.run([*_confine(_system() + _host_config(), None, {}), "/bin/true"], capture_output=True,
                              text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bwrap could not run ({error}). {INSTALL}."
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return (f"bwrap cannot create namespaces here ({why}); allow unprivileged user namespaces "
                f"(sysctl kernel.unprivileged_userns_clone=1) or run grading where they are allowed, "
                f"or grade unconfined with --no-sandbox")
    return ""


@functools.lru_cache(maxsize=1)
def owner() -> tuple[int, int] | None:
    """The host uid and gid the sandbox runs as when grading runs as root (SANDBOX_USER, or the
    account or uid that AUTOGRADER_SANDBOX_USER names); None otherwise: then it runs as the grading
    user."""
    if os.geteuid() != 0:
        return None
    import pwd

    name = os.environ.get("AUTOGRADER_SANDBOX_USER") or SANDBOX_USER
    try:
        ids = (int(name), int(name)) if name.isdigit() else pwd.getpwnam(name)[2:4]
    except KeyError:
        raise ValueError(f"the sandbox's user {name!r} (AUTOGRADER_SANDBOX_USER) does not exist") from None
    if 0 in ids:
        raise ValueError(f"the sandbox's user {name!r} (AUTOGRADER_SANDBOX_USER) is root")
    return ids


def _setpriv() -> str | None:
    """util-linux's setpriv, a system tool: looked for in the system's folders too."""
    return shutil.which("setpriv") or shutil.which("setpriv", path=os.defpath)


def _confine(shown: list[str], folder: str | None, env: dict[str, str]) -> list[str]:
    """The bwrap command line (ending in ``--``) that runs a command as pid 1 of a sandbox that
    shows ``shown`` (bwrap's bind arguments) and ``folder`` (writable, its working directory)."""
    bwrap = shutil.which("bwrap") or "bwrap"
    isolate = [bwrap, "--unshare-all", "--die-with-parent", "--as-pid-1", "--cap-drop", "ALL",
               "--uid", str(UID), "--gid", str(UID), "--hostname", HOSTNAME]
    private = ["--dev", "/dev", "--tmpfs", "/dev/shm", "--proc", "/proc", "--tmpfs", "/tmp"]
    rest = _read_only_rest()
    if folder:
        rest = ["--bind", folder, folder, *rest, "--chdir", folder]
    rest.append("--clearenv")
    for key, value in env.items():
        rest += ["--setenv", key, value]
    rest.append("--")
    ids = owner()
    if ids is None:
        return [*isolate, *private, *shown, *rest]
    drop = [_setpriv() or "setpriv", f"--reuid={ids[0]}", f"--regid={ids[1]}", "--clear-groups", "--"]
    return [*_gather(shown, folder), "--", *drop, *isolate, "--ro-bind", "/", "/", *private, *rest]


def _gather(shown: list[str], folder: str | None) -> list[str]:
    """Under root, the first bwrap: as root, in a mount namespace of its own, it gathers what the
    sandbox shows, for the unprivileged one that confines. The host's /proc is there only for that
    one to mount its own (a user namespace may mount a proc only where one is fully visible)."""
    bwrap = shutil.which("bwrap") or "bwrap"
    if folder:
        shown = [*shown, "--bind", folder, folder]
    gather = [bwrap, "--die-with-parent", *_open_ancestors(shown), *shown,
              "--bind", "/proc", "/proc", "--dev", "/dev", "--dir", "/tmp"]
    if not bwrap.startswith("/usr/"):
        gather += ["--ro-bind", bwrap, bwrap]
    return gather


def _open_ancestors(shown: list[str]) -> list[str]:
    """bwrap's arguments that make the folders on the way to what it shows open to all (run by root,
    bwrap makes them 0700, and the sandbox's user could not pass)."""
    places = [shown[i + 2] for i, arg in enumerate(shown) if arg in ("--ro-bind", "--bind", "--symlink")]
    made = {os.path.dirname(place) for place in places}
    for place in list(made):
        while place not in ("/", ""):
            made.add(place)
            place = os.path.dirname(place)
    made = sorted(folder for folder in made - {"/"} if not any(_within(folder, place) for place in places))
    return [arg for folder in made for arg in ("--perms", "0755", "--dir", folder)]


def _read_only_rest() -> list[str]:
    """bwrap builds the sandbox's / and /dev on tmpfs, writable: once everything is mounted, they are
    made read-only, so that /tmp, /dev/shm (both private, emptied between notebooks) and the slot's
    folder are all a kernel can write."""
    return ["--remount-ro", "/dev", "--remount-ro", "/"]


def _system() -> list[str]:
    """The system's folders, read-only."""
    args = []
    for path in SYSTEM:
        if os.path.islink(path):  # merged /usr: /bin -> usr/bin
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


def _host_config() -> list[str]:
    """Of the host's /etc and /sys, what the libraries read (ETC, SYS)."""
    args = []
    for name in ETC:
        path = f"/etc/{name}"
        if os.path.islink(path):  # /etc/localtime -> /usr/share/zoneinfo/...
            args += ["--symlink", os.readlink(path), path]
        elif os.path.exists(path):
            args += ["--ro-bind", path, path]
    for path in SYS:
        if os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


@dataclass(frozen=True)
class View:
    """Python, its packages and the autograder package as a sandbox shows them."""

    binds: tuple[tuple[str, str], ...]  # (host path, path inside), read-only
    links: tuple[tuple[str, str], ...]  # (target, path inside)
    written: tuple[tuple[str, str], ...]  # (path inside, text): files written for the sandbox
    emptied: tuple[str, ...]  # paths inside shown as empty files
    hidden: tuple[str, ...]  # paths inside shown as empty folders
    moved: tuple[tuple[str, str], ...]  # (host folder, path inside) for inside()
    executable: str  # the interpreter, inside
    pythonpath: str

    @property
    def path(self) -> str:
        return ":".join(dict.fromkeys([os.path.dirname(self.executable), "/usr/local/bin", "/usr/bin", "/bin"]))


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


@functools.lru_cache(maxsize=1)
def view() -> View:
    """What a sandbox shows of this process's Python, its packages and the autograder package, and
    the files written for it."""
    import autograder

    binds: list[tuple[str, str]] = []
    links: list[tuple[str, str]] = []
    written = dict(_etc_written())
    emptied: list[str] = []
    moved: list[tuple[str, str]] = []

    def shown(path: str) -> bool:
        return any(_within(path, folder) for folder in SYSTEM) or any(_within(path, host) for host, _ in moved)

    def show(path: str) -> None:
        """At its own path, unless it shows already."""
        path = os.path.abspath(path)
        for found in dict.fromkeys([path, os.path.realpath(path)]):
            if os.path.exists(found) and not shown(found):
                binds.append((found, found))
                moved.append((found, found))

    interpreter = os.path.realpath(sys.executable)
    for prefix in (sys.base_prefix, sys.base_exec_prefix):
        show(prefix)
    executable = interpreter
    if sys.prefix != sys.base_prefix:  # a virtual environment: its packages at VENV
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        for host in dict.fromkeys([os.path.abspath(sys.prefix), os.path.realpath(sys.prefix)]):
            moved.append((host, VENV))
        binds.append((os.path.realpath(os.path.join(sys.prefix, "lib")), f"{VENV}/lib"))
        if os.path.islink(os.path.join(sys.prefix, "lib64")):
            links.append((os.readlink(os.path.join(sys.prefix, "lib64")), f"{VENV}/lib64"))
        for name in ("python", "python3", version):
            links.append((interpreter, f"{VENV}/bin/{name}"))
        executable = f"{VENV}/bin/python3"
        written[f"{VENV}/pyvenv.cfg"] = _pyvenv_cfg(os.path.dirname(interpreter))
    for entry in sys.path:  # site-packages outside the environment (the user's, ...)
        if entry and os.path.isabs(entry) and os.path.basename(entry) in ("site-packages", "dist-packages"):
            show(entry)
    package = str(Path(autograder.__file__).resolve().parent)
    pythonpath = ""
    if not shown(package):  # from a source checkout (editable install, PYTHONPATH): the course
        binds.append((package, f"{PACKAGE_PARENT}/autograder"))
        moved.append((package, f"{PACKAGE_PARENT}/autograder"))
        pythonpath = PACKAGE_PARENT
        emptied.extend(_pointing_to_the_checkout(os.path.dirname(package), moved))
    inside_package = _inside(package, moved)
    hidden = tuple(f"{inside_package}/{part}" for part in HIDDEN_PARTS if os.path.isdir(os.path.join(package, part)))
    return View(tuple(binds), tuple(links), tuple(written.items()), tuple(emptied), hidden, tuple(moved),
                executable, pythonpath)


def _pyvenv_cfg(home: str) -> str:
    """The environment's pyvenv.cfg as the sandbox needs it: where its interpreter's home is, and the
    settings Python reads, without the command that made it (which names the course's folder)."""
    kept = {"home": home}
    try:
        with open(os.path.join(sys.prefix, "pyvenv.cfg"), encoding="utf-8") as cfg:
            for line in cfg:
                key, _, value = line.partition("=")
                if key.strip() in ("include-system-site-packages", "version", "version_info", "implementation"):
                    kept[key.strip()] = value.strip()
    except OSError:
        pass
    return "".join(f"{key} = {value}\n" for key, value in kept.items())


def _pointing_to_the_checkout(checkout: str, moved: list[tuple[str, str]]) -> list[str]:
    """The files an editable install leaves in site-packages (setuptools' ``__editable__`` finder
    and the .pth that loads it, the distribution's direct_url.json) that name the source checkout:
    shown empty; the package itself comes first on PYTHONPATH."""
    found = []
    for entry in sys.path:
        if not (entry and os.path.basename(entry) in ("site-packages", "dist-packages") and os.path.isdir(entry)):
            continue
        for folder in (entry, os.path.join(entry, "__pycache__")):
            try:
                names = os.listdir(folder)
            except OSError:
                continue
            found += [os.path.join(folder, name) for name in names if name.startswith("__editable__")]
        for name in os.listdir(entry):
            record = os.path.join(entry, name, "direct_url.json")
            if name.endswith(".dist-info") and os.path.isfile(record):
                try:
                    with open(record, encoding="utf-8") as text:
                        if checkout in text.read():
                            found.append(record)
                except OSError:
                    pass
    return [inside for inside in (_inside(path, moved) for path in found) if inside]


def _inside(path: str, moved) -> str | None:
    """Where the host's ``path`` shows in a sandbox (None: nowhere)."""
    path = os.path.abspath(path)
    for host, there in sorted(moved, key=lambda pair: -len(pair[0])):
        for candidate in dict.fromkeys([path, os.path.realpath(path)]):
            if _within(candidate, host):
                return there + candidate[len(host.rstrip("/")):]
    if any(_within(path, folder) for folder in SYSTEM):
        return path
    return None


def inside(path: str) -> str:
    """Where the host's ``path`` (a file of Python or its packages) shows in a sandbox."""
    return _inside(path, view().moved) or path


def _shown(files: Path) -> list[str]:
    """bwrap's arguments that show the system and ``view()``; ``files``: where the files written for
    the sandbox are (see :func:`write_files`)."""
    found = view()
    args = _system() + _host_config()
    for host, there in found.binds:
        args += ["--ro-bind", host, there]
    for target, there in found.links:
        args += ["--symlink", target, there]
    for there, _ in found.written:
        args += ["--ro-bind", str(files / _file_name(there)), there]
    for there in found.emptied:
        args += ["--ro-bind", str(files / "empty"), there]
    for there in found.hidden:
        args += ["--ro-bind", str(files / "empty.d"), there]
    cache = _matplotlib_cache()
    if cache:  # not at its own path: nothing else of the home directory shows
        args += ["--ro-bind", cache, MPL_CACHE]
    return args


def _etc_written() -> tuple[tuple[str, str], ...]:
    """/etc's files about users and names, written for the sandbox."""
    return (
        ("/etc/passwd", f"sandbox:x:{UID}:{UID}:graded notebook:/tmp:/usr/sbin/nologin\n"
                        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"),
        ("/etc/group", f"sandbox:x:{UID}:\nnogroup:x:65534:\n"),
        ("/etc/hosts", f"127.0.0.1\tlocalhost\n127.0.1.1\t{HOSTNAME}\n::1\tlocalhost\n"),
        ("/etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files\n"),
    )


def _file_name(there: str) -> str:
    return there.strip("/").replace("/", "--")


def write_files(folder: Path) -> Path:
    """Write the files a sandbox shows that the host does not have (see :func:`_shown`)."""
    folder.mkdir(parents=True, exist_ok=True)
    for there, text in view().written:
        (folder / _file_name(there)).write_text(text)
    (folder / "empty").write_text("")
    (folder / "empty.d").mkdir(exist_ok=True)
    for path in (folder, *folder.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


def hand_over(path: str | Path) -> None:
    """Give ``path`` and everything in it to the sandbox's host account (under root; otherwise the
    grading user owns it already). Links are not followed."""
    ids = owner()
    if ids is None:
        return
    os.chown(path, *ids, follow_symlinks=False)
    for folder, dirs, names in os.walk(path):
        for name in (*dirs, *names):
            os.chown(os.path.join(folder, name), *ids, follow_symlinks=False)


def _matplotlib_cache() -> str | None:
    """The instructor's matplotlib font cache, shown read-only, so no kernel rebuilds it."""
    path = os.environ.get("MPLCONFIGDIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "matplotlib")
    return path if os.path.isdir(path) else None


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A kernel's environment: what ENV_KEPT names of the grader's, the sandbox's PATH and PYTHONPATH,
    a home in the private /tmp."""
    found = view()
    env = {key: os.environ[key] for key in ENV_KEPT if key in os.environ}
    env.update(PATH=found.path, HOME="/tmp", TMPDIR="/tmp", IPYTHONDIR="/tmp/.ipython",
               JUPYTER_RUNTIME_DIR="/tmp/.jupyter", MPLCONFIGDIR="/tmp/matplotlib")
    if found.pythonpath:
        env["PYTHONPATH"] = found.pythonpath
    if _matplotlib_cache():
        env["AUTOGRADER_MPL_CACHE"] = MPL_CACHE  # the server copies its font list into each fresh /tmp
    env.update(extra or {})
    return env


def command(folder: Path, files: Path) -> list[str]:
    """The command line that confines a process to ``folder`` (its one writable folder and its
    working directory), as pid 1 of its sandbox; the confined command follows it. ``files``: from
    :func:`write_files`."""
    return _confine(_shown(files), str(Path(folder).resolve()), environment())


class Slot:
    """One job slot: its folder and its confined fork server."""

    def __init__(self, folder: Path, preload: list[str], files: Path):
        from autograder.grading.forkserver import ForkServer

        self.folder = folder.resolve()
        self.folder.mkdir(parents=True, exist_ok=True)
        hand_over(self.folder)
        self.server = ForkServer(preload, env=environment(), wrap=command(self.folder, files), cwd=str(self.folder),
                                 executable=view().executable)

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
        hand_over(self.folder)
        return str(self.folder)

    def close(self) -> None:
        self.server.close()


class Pool:
    """A slot for each grading thread (the pipeline runs ``jobs`` threads, each grading one
    submission at a time, so a thread's slot is never shared)."""

    def __init__(self, scratch: Path, slots: int, preload: list[str]):
        files = write_files(scratch / "files")
        self._free = [Slot(scratch / f"s{index}", preload, files) for index in range(max(1, slots))]
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
