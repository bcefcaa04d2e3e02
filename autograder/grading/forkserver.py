"""A process that imports the heavy libraries once and forks fresh Jupyter kernels from itself.

Starting a kernel the usual way costs a new Python interpreter, IPython,
ipykernel and then, in the notebook's first cell, ``import torch``: seconds of
CPU per notebook, spent again for every submission. The fork server pays them
once. On request it forks a child that becomes an ordinary IPython kernel
(``IPKernelApp``, the same code ``python -m ipykernel_launcher`` runs) in its
own session, working directory, environment and memory limit. The child starts
with the modules already in memory; nothing else is shared: every submission
still gets its own process, which is thrown away afterwards.

Only modules that are safe to import before a fork are preloaded (no threads,
no sockets, no display hooks): the caller passes the list, and the server adds
:data:`KERNEL_MODULES`, what every grading kernel imports whatever its notebook.

Protocol: length-prefixed JSON over a Unix socket pair. ``spawn`` replies with
the child's pid and passes a pidfd for it (so the grader can watch a process
that is not its own child); ``status`` reports an exit status once the child
has ended (the server reaps its children); ``reset`` (in a sandbox, see
:mod:`.sandbox`) ends every other process of the sandbox and empties its
``/tmp`` before the next submission's kernel.
"""

from __future__ import annotations

import importlib
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
import traceback

_HEADER = struct.Struct("!I")

# What every grading kernel imports whatever its notebook, as it starts (ipykernel's kernel class, its
# debugger with debugpy's hundred modules, IPython's history and completer) or first thing (the grading
# guard, the judge's probe server, what `from autograder import ...` loads): imported here once, where it
# cost each kernel 0.3 s of CPU. None of them starts a thread or opens anything when imported.
KERNEL_MODULES = ("ipykernel.ipkernel", "ipykernel.debugger", "IPython.core.completerlib",
                  "IPython.extensions.storemagic", "sqlite3", "tornado.queues",
                  "autograder.grading.guard", "autograder.probe", "autograder.notebook", "autograder.demo")


def send_message(sock: socket.socket, message: dict, fds: list[int] | None = None) -> None:
    data = json.dumps(message).encode()
    payload = _HEADER.pack(len(data)) + data
    if fds:
        socket.send_fds(sock, [payload], fds)
    else:
        sock.sendall(payload)


def _recv_exact(sock: socket.socket, size: int, fds: list[int]) -> bytes | None:
    chunks = []
    while size:
        data, received, _, _ = socket.recv_fds(sock, size, 4)
        fds.extend(received)
        if not data:
            return None
        chunks.append(data)
        size -= len(data)
    return b"".join(chunks)


def recv_message(sock: socket.socket) -> tuple[dict | None, list[int]]:
    fds: list[int] = []
    header = _recv_exact(sock, _HEADER.size, fds)
    if header is None:
        return None, fds
    body = _recv_exact(sock, _HEADER.unpack(header)[0], fds)
    return (json.loads(body) if body is not None else None), fds


# --- the server -----------------------------------------------------------------


def serve(sock: socket.socket, preload: list[str], confined: bool = False) -> None:
    # `python -m` put the server's working directory first on sys.path; a kernel never has it there
    # (ipykernel_launcher removes it and IPython adds '' instead).
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]
    # What ipykernel sets before any user code runs; matplotlib reads it when imported.
    if not os.environ.get("MPLBACKEND"):
        os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    if confined:
        _fresh_tmp()
    _import_quietly([*KERNEL_MODULES, *preload])
    statuses: dict[int, int] = {}
    if confined:
        _undumpable()
    send_message(sock, {"ready": True, "pid": os.getpid()})
    while True:
        _reap(statuses)
        ready, _, _ = select.select([sock], [], [], 0.5)
        if not ready:
            continue
        message, _ = recv_message(sock)
        if message is None:  # the grader has gone: so do we
            return
        if message["op"] == "spawn":
            pid = os.fork()
            if pid == 0:
                _become_kernel(sock, message)  # never returns
            pidfd = os.pidfd_open(pid)
            send_message(sock, {"pid": pid}, [pidfd])
            os.close(pidfd)
        elif message["op"] == "status":
            _reap(statuses)
            send_message(sock, {"returncode": statuses.get(message["pid"])})
        elif message["op"] == "reset" and confined:
            _end_the_others(statuses)
            _fresh_tmp()
            send_message(sock, {"reset": True})


def _import_quietly(modules: list[str]) -> None:
    """Import ``modules``, saying nothing on the grader's terminal (debugpy warns there about frozen
    modules; a kernel's own output goes nowhere). A module that fails here is simply imported by the
    notebook itself."""
    saved = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:
                pass
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


def _undumpable() -> None:
    """No process of the sandbox may ptrace this one or write its memory (what it would change
    here, every later kernel would inherit)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except (OSError, AttributeError):
        pass


def _end_the_others(statuses: dict[int, int]) -> None:
    """SIGKILL every process of this PID namespace but its init (pid 1) and this server, until none is
    left (a process that forks while being killed is caught by the next round)."""
    me = os.getpid()
    for _ in range(200):
        alive = []
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) in (1, me):
                continue
            try:
                with open(f"/proc/{name}/stat", "rb") as stat:
                    if stat.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                        continue  # ended, waiting to be reaped
                os.kill(int(name), signal.SIGKILL)
                alive.append(name)
            except (OSError, IndexError):
                pass
        _reap(statuses)
        if not alive:
            return
        time.sleep(0.005)


def _fresh_tmp() -> None:
    """An empty /tmp and /dev/shm, but for a copy of the instructor's matplotlib font list (read-only in the sandbox),
    so that no kernel rebuilds it and none finds what an earlier one left."""
    empty_folder("/tmp")
    empty_folder("/dev/shm")
    cache = os.environ.get("AUTOGRADER_MPL_CACHE")
    if cache and os.path.isdir(cache):
        import shutil

        os.makedirs("/tmp/matplotlib", exist_ok=True)
        for name in os.listdir(cache):
            if name.endswith(".json"):
                try:
                    shutil.copy(os.path.join(cache, name), "/tmp/matplotlib")
                except OSError:
                    pass


def empty_folder(folder: str) -> None:
    """Remove everything in ``folder`` that can be removed."""
    import shutil

    for entry in os.scandir(folder):
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except OSError:
            pass


def _reap(statuses: dict[int, int]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        statuses[pid] = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _become_kernel(sock: socket.socket, request: dict) -> None:
    """In the forked child: become a fresh IPython kernel, as ``python -m ipykernel_launcher`` would."""
    code = 1
    try:
        sock.close()
        os.setsid()  # its own session and process group, like jupyter_client's launcher gives a kernel
        limit = request.get("memory_limit")
        if limit:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _end_with(request.get("watch"))
        _fresh_random_state()
        torch_threads(request.get("threads"))
        argv = list(request["argv"])
        sys.argv = [request["launcher"], *argv]
        from ipykernel.kernelapp import IPKernelApp

        app = IPKernelApp.instance()
        app.initialize(argv)
        app.start()
        code = 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 1
    except BaseException:
        try:
            with open(os.path.join(request.get("log_dir") or "/tmp", f"kernel-{os.getpid()}.log"), "w") as log:
                traceback.print_exc(file=log)
        except Exception:
            pass
    finally:
        os._exit(code)


def torch_threads(threads: int | None) -> None:
    """Run PyTorch on ``threads`` threads in this process (a kernel, just forked), keeping MKL's own choice
    of threads for each product. ``torch.set_num_threads`` turns that choice off: every matrix product,
    however small, then starts all the threads, and a tiny model's training (02's challenge checks train
    thousands of products of 455 x 30) spends its time waiting on them, 25 times the CPU on a busy machine.
    So it is called only when the number changes, and MKL's choice is turned back on after it."""
    torch = sys.modules.get("torch")
    if not threads or torch is None or torch.get_num_threads() == threads:
        return
    torch.set_num_threads(threads)
    if threads > 1:
        try:
            import ctypes

            library = os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so")
            ctypes.CDLL(library).MKL_Set_Dynamic(1)
        except (OSError, AttributeError):  # no MKL in this build (ARM): nothing to turn back on
            pass


def _end_with(pid: int | None) -> None:
    """Like any kernel, end when the grader that asked for it goes away (a kernel started the usual
    way watches its parent; this one's parent is the server, which a notebook could kill without
    the grader or the other kernels noticing)."""
    if not pid:
        return
    try:
        watched = os.pidfd_open(pid)
    except OSError:
        os._exit(1)

    def watch() -> None:
        select.select([watched], [], [])
        os._exit(1)

    threading.Thread(target=watch, name="autograder-watchdog", daemon=True).start()


def _fresh_random_state() -> None:
    """A new process draws fresh seeds at start-up; a forked one would share its parent's."""
    import random

    random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.seed()  # a fresh interpreter seeds torch's default generator at random


# --- the client -------------------------------------------------------------------


class ForkServerError(RuntimeError):
    pass


class ForkServer:
    """Start the server process and ask it for kernels; safe to share between threads."""

    def __init__(self, preload: list[str], env: dict[str, str] | None = None, wrap: list[str] | None = None,
                 cwd: str | None = None, executable: str | None = None):
        """``wrap``: a command line that confines the server (see :mod:`.sandbox`), ``cwd`` its folder and
        ``executable`` the interpreter as the confined server sees it."""
        self._preload, self._env, self._wrap, self._cwd = preload, env, wrap, cwd
        # normalised: a path through a folder the sandbox does not show (tests/../.venv) would not resolve
        self._executable = executable or os.path.abspath(sys.executable)
        self.confined = bool(wrap)
        self._lock = threading.Lock()
        self.restarts = 0
        self._start()

    def _start(self) -> None:
        import subprocess

        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock = ours
        self.process = subprocess.Popen(
            [*(self._wrap or []), self._executable, "-m", "autograder.grading.forkserver", str(theirs.fileno()),
             json.dumps(self._preload), "confined" if self.confined else ""],
            pass_fds=[theirs.fileno()], env=self._env, stdin=subprocess.DEVNULL, cwd=self._cwd,
        )
        theirs.close()
        self._ready = False  # it imports for a few seconds: the grader goes on meanwhile

    def _wait_ready(self) -> None:
        if not self._ready:
            reply, _ = recv_message(self._sock)
            if not reply or not reply.get("ready"):
                raise ForkServerError("the kernel fork server did not start")
            self._ready = True

    def spawn(self, *, argv: list[str], env: dict[str, str], cwd: str, launcher: str,
              memory_limit: int | None = None, threads: int | None = None, log_dir: str | None = None,
              watch: bool = True) -> tuple[int, int]:
        """Fork a kernel; return its pid (as the server sees it) and a pidfd that becomes readable when it
        ends. ``watch``: the kernel ends when the grader does."""
        request = {"op": "spawn", "argv": argv, "env": env, "cwd": cwd, "launcher": launcher,
                   "memory_limit": memory_limit, "threads": threads, "log_dir": log_dir,
                   "watch": os.getpid() if watch else None}
        with self._lock:
            self._revive()
            self._wait_ready()
            if self.process.poll() is not None:
                raise ForkServerError(f"the kernel fork server has exited (code {self.process.returncode})")
            try:
                send_message(self._sock, request)
                reply, fds = recv_message(self._sock)
            except OSError as error:
                raise ForkServerError(f"the kernel fork server did not answer ({error})") from None
        if reply is None or not fds:
            raise ForkServerError("the kernel fork server did not answer")
        return reply["pid"], fds[0]

    def _revive(self) -> None:
        """A notebook killed the server (its kernel's parent): start another; the other kernels run on.
        A confined server always comes back (its sandbox is that slot's only one)."""
        if self.process.poll() is not None and (self.confined or self.restarts < 3):
            self._sock.close()
            self.restarts += 1
            self._start()

    def reset(self, timeout: float = 30) -> None:
        """End whatever the previous kernel of this sandbox left running and empty its /tmp; a server
        that does not answer (a kernel stopped it) is replaced, with its whole sandbox."""
        with self._lock:
            for _ in range(2):
                self._revive()
                try:
                    self._wait_ready()
                    send_message(self._sock, {"op": "reset"})
                    if select.select([self._sock], [], [], timeout)[0]:
                        reply, _ = recv_message(self._sock)
                        if reply and reply.get("reset"):
                            return
                except (OSError, ForkServerError, ValueError):
                    pass
                self.process.kill()  # its sandbox (PID namespace) ends with it
                self.process.wait()
            raise ForkServerError("the confined kernel server did not start again")

    def returncode(self, pid: int) -> int | None:
        with self._lock:
            self._wait_ready()
            try:
                send_message(self._sock, {"op": "status", "pid": pid})
                if self.confined and not select.select([self._sock], [], [], 10)[0]:
                    # a kernel stopped its server (SIGSTOP): end that sandbox; the next kernel gets a new one
                    self.process.kill()
                    return None
                reply, _ = recv_message(self._sock)
            except OSError:
                return None
        return None if reply is None else reply.get("returncode")

    def close(self) -> None:
        try:
            self._sock.close()
        finally:
            try:
                self.process.wait(timeout=5)
            except Exception:
                self.process.kill()


if __name__ == "__main__":
    serve(socket.socket(fileno=int(sys.argv[1])), json.loads(sys.argv[2]), sys.argv[3:4] == ["confined"])
