"""Kernels for grading: forked from a warm server, bounded in memory, watched from outside.

:func:`kernel_manager_class` returns a ``jupyter_client`` kernel manager that
nbclient (and so nbgrader's ``Execute`` preprocessor) uses exactly like the
default one. Only the launch differs: instead of starting a new interpreter it
asks the :class:`~autograder.grading.forkserver.ForkServer` for a forked
kernel. The handle it gets back behaves like ``subprocess.Popen`` for
jupyter_client's local provisioner (poll, wait, signals, kill), so timeouts,
interrupts, dead-kernel detection and shutdown all go through the usual code.
Any kernel that is not a Python ipykernel launches the usual way.

Each kernel runs PyTorch (OpenMP, MKL, OpenBLAS) on its share of the cores:
:func:`kernel_threads` of them when ``jobs`` kernels run at once, one by
default. Two kernels of two threads each on two cores wait on each other at
every parallel region, and PyTorch's tiny matrix products become many times
slower (see :func:`autograder.grading.forkserver.torch_threads`).

Confined (a :class:`~autograder.grading.sandbox.Pool` given): each grading
thread's kernels come from its slot's sandboxed server, work in the slot's
folder (a copy of nbgrader's working directory) and talk to the grader over
Unix sockets in that folder (ZeroMQ's ``ipc`` transport), since the sandbox
has a network of its own. The server's pids are those of its PID namespace:
the grader finds the kernel's own pid from the pidfd it is sent.
"""

from __future__ import annotations

import os
import resource
import select
import signal
import time
import uuid

from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning import LocalProvisioner

from autograder.grading.forkserver import ForkServer, ForkServerError

# How each forked kernel ended (pid -> exit code, or minus the signal number), for the grading report.
EXIT_CODES: dict[int, int] = {}
# What OpenMP, MKL and OpenBLAS read for their number of threads.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container or taskset may narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def kernel_threads(jobs: int, cores: int | None = None) -> int:
    """Threads for each of ``jobs`` kernels that run at once: their share of the cores, at least one."""
    return max(1, (cores or available_cores()) // max(1, jobs))


def thread_environment(threads: int) -> dict[str, str]:
    """A kernel's thread settings for the libraries it loads later and the processes it starts."""
    return {name: str(threads) for name in THREAD_VARIABLES}


class ForkedProcess:
    """The part of ``subprocess.Popen`` that jupyter_client uses, for a kernel forked by the server."""

    stdin = stdout = stderr = None

    def __init__(self, server: ForkServer, pid: int, pidfd: int, key: int | None = None):
        """``pid``: as the server sees it (to ask it for the exit status); ``key``: as the grader
        sees it (to signal it, and for EXIT_CODES)."""
        self.server, self.pid, self._pidfd = server, pid, pidfd
        self.key = pid if key is None else key
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and self._pidfd is not None:
            ready, _, _ = select.select([self._pidfd], [], [], 0)
            if ready:
                os.close(self._pidfd)
                self._pidfd = None
                code = None
                for _ in range(50):  # the server reaps on request; allow it a moment
                    try:
                        code = self.server.returncode(self.pid)
                    except (OSError, ForkServerError):
                        break
                    if code is not None:
                        break
                    time.sleep(0.01)
                self.returncode = code if code is not None else -1
                EXIT_CODES[self.key] = self.returncode
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                import subprocess

                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout)
            time.sleep(0.02)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.key, signum)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class ForkProvisioner(LocalProvisioner):
    """Launches a Python kernel by forking the warm server instead of starting an interpreter."""

    server: ForkServer | None = None
    memory_limit: int | None = None
    threads: int | None = None
    log_dir: str | None = None
    extra_env: dict | None = None
    pool = None  # a sandbox.Pool: kernels are confined

    async def launch_kernel(self, cmd, **kwargs):
        if self.pool is not None:
            return self._launch_confined(cmd, **kwargs)
        if self.server is None or "ipykernel_launcher" not in cmd:
            kwargs["env"] = {**(kwargs.get("env") or os.environ), **(self.extra_env or {})}
            info = await super().launch_kernel(cmd, **kwargs)
            if self.memory_limit and hasattr(resource, "prlimit"):
                try:
                    resource.prlimit(self.pid, resource.RLIMIT_AS, (self.memory_limit, self.memory_limit))
                except OSError:  # it has already ended
                    pass
            return info
        argv = cmd[cmd.index("ipykernel_launcher") + 1:]
        import ipykernel_launcher  # its code runs only as __main__; imported here for its path

        pid, pidfd = self.server.spawn(
            # JPY_PARENT_PID: what jupyter_client's launcher gives every kernel it starts
            argv=argv, env={**(kwargs.get("env") or os.environ), "JPY_PARENT_PID": str(os.getpid()),
                            **(self.extra_env or {})}, cwd=str(kwargs.get("cwd") or os.getcwd()),
            launcher=ipykernel_launcher.__file__, memory_limit=self.memory_limit, threads=self.threads, log_dir=self.log_dir,
        )
        self.process = ForkedProcess(self.server, pid, pidfd)
        self.pid = pid
        self.pgid = pid  # the child called setsid()
        self.cwd = kwargs.get("cwd")
        return self.connection_info

    def _launch_confined(self, cmd, **kwargs):
        import ipykernel_launcher

        from autograder.grading.sandbox import environment, inside

        if "ipykernel_launcher" not in cmd:
            raise RuntimeError(f"only Python (ipykernel) notebooks can be graded confined; this one asks for {cmd[0]}")
        server = self.pool.slot().server
        argv = cmd[cmd.index("ipykernel_launcher") + 1:]
        # no JPY_PARENT_PID and no watch: the grader's pid means nothing in the sandbox, whose
        # processes all end with it (bwrap --die-with-parent)
        pid, pidfd = server.spawn(argv=argv, env=environment(self.extra_env), cwd=str(kwargs["cwd"]),
                                  launcher=inside(ipykernel_launcher.__file__), memory_limit=self.memory_limit,
                                  threads=self.threads, log_dir=None, watch=False)
        self.process = ForkedProcess(server, pid, pidfd, key=_host_pid(pidfd))
        self.pid = self.process.key
        self.pgid = self.process.key  # the kernel called setsid(): its group, seen from here
        self.cwd = kwargs.get("cwd")
        return self.connection_info


def _host_pid(pidfd: int) -> int:
    """The pid, in the grader's PID namespace, of the process a pidfd refers to."""
    with open(f"/proc/self/fdinfo/{pidfd}", encoding="ascii") as info:
        for line in info:
            if line.startswith("Pid:"):
                return int(line.split()[1])
    raise OSError("this kernel cannot tell the pid of a pidfd (Linux 5.10 or newer is needed)")


def kernel_manager_class(server: ForkServer | None, memory_limit: int | None = None, threads: int = 1,
                         log_dir: str | None = None, extra_env: dict | None = None, pool=None) -> type[AsyncKernelManager]:
    """A kernel manager class whose Python kernels come from ``server`` (or start normally when it is None),
    or, confined, from the grading thread's slot of the sandbox ``pool``, limited to ``memory_limit`` bytes
    of address space (RLIMIT_AS) and ``threads`` threads (:func:`kernel_threads`), with ``extra_env`` added
    to their environment."""
    extra_env = {**thread_environment(threads), **(extra_env or {})}

    class ForkKernelManager(AsyncKernelManager):
        results_dir: str | None = None  # where the kernel may write its check results (confined: its folder)

        async def _async_pre_start_kernel(self, **kw):
            self.kernel_id = self.kernel_id or kw.pop("kernel_id", str(uuid.uuid4()))
            if pool is not None:
                folder = pool.slot().prepare(kw.get("cwd"))
                kw["cwd"] = folder
                channel = os.path.join(folder, ".kernel")
                os.makedirs(channel, exist_ok=True)
                self.transport = "ipc"
                self.connection_file = os.path.join(channel, f"k{uuid.uuid4().hex[:6]}.json")
                self.ip = self.connection_file[:-5] + "-ipc"
                self.results_dir = channel
            if self.provisioner is None:
                provisioner = ForkProvisioner(kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self)
                provisioner.server, provisioner.memory_limit = server, memory_limit
                provisioner.threads, provisioner.log_dir = threads, log_dir
                provisioner.extra_env, provisioner.pool = extra_env, pool
                self.provisioner = provisioner
            started = await super()._async_pre_start_kernel(**kw)
            if pool is not None:  # the connection file is written: the sandbox's user must read it
                from autograder.grading.sandbox import hand_over

                hand_over(channel)
            return started

    return ForkKernelManager
