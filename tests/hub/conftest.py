"""Layer 6, a class on JupyterHub: the classroom of ``make hub`` (hub/classroom.py), started and stopped
by the tests, driven in Debian's Chromium through nbgrader's exchange; and grading the course's own
``submitted/`` in place, as an instructor does after ``nbgrader collect``.

The classroom gets its own folder, port and user names (a random prefix) for each run; its system
accounts are removed afterwards, and nothing it started may still run then."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import suppress
from pathlib import Path

import pytest

from support import CHROMIUM, CHROMIUM_FLAGS, ROOT, chromium_or_skip, free_port

HUB_START_S = 120
ARTIFACTS = ROOT / "build" / "hub-artifacts"


class Classroom:
    """`make hub` in a folder of its own, with two students."""

    def __init__(self, scratch: Path):
        self.scratch = scratch
        self.dir = scratch / "classroom"
        self.prefix = f"t{secrets.token_hex(3)}-"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = scratch / "hub.log"
        self.process: subprocess.Popen | None = None
        self.passwords: dict[str, str] = {}
        self.settings: dict = {}

    def start(self) -> None:
        venv = Path(sys.prefix)
        args = f"--dir {self.dir} --port {self.port} --students 2 --prefix {self.prefix}"
        command = ["make", "--no-print-directory", "-C", str(ROOT), f"VENV={venv}", "-o", f"{venv}/.installed",
                   "hub", f"HUB_ARGS={args}"]
        env = {key: value for key, value in os.environ.items() if not key.startswith(("JUPYTER", "JPY_"))}
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + HUB_START_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"make hub exited with {self.process.returncode}:\n{self.log()}")
            if "JupyterHub is now running" in self.log():
                break
            time.sleep(0.3)
        else:
            raise RuntimeError(f"the hub did not start within {HUB_START_S} s:\n{self.log()}")
        self.settings = json.loads((self.dir / "state" / "classroom.json").read_text())
        names = "|".join(re.escape(name) for name in self.settings["users"])
        self.passwords = dict(re.findall(rf"^  ({names})\s+(\S+)\s+(?:student|instructor)$", self.log(), re.M))
        assert sorted(self.passwords) == sorted(self.settings["users"]), self.log()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def instructor(self) -> str:
        return next(name for name, user in self.settings["users"].items() if user["role"] == "instructor")

    @property
    def students(self) -> list[str]:
        return sorted(name for name, user in self.settings["users"].items() if user["role"] == "student")

    def home(self, user: str) -> Path:
        return Path(self.settings["users"][user]["home"])

    @property
    def course(self) -> Path:
        return Path(self.settings["course"])

    @property
    def exchange(self) -> Path:
        return Path(self.settings["exchange"]) / self.settings["course_id"]

    def as_instructor(self, *command: str, background: bool = False):
        """Run ``command`` as the instructor, in the course folder (make hub-instructor)."""
        full = [sys.executable, str(ROOT / "hub" / "classroom.py"), "instructor", "--dir", str(self.dir), "--", *command]
        if background:
            return subprocess.Popen(full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        done = subprocess.run(full, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout + done.stderr

    def uids(self) -> set[int]:
        return {user["uid"] for user in self.settings.get("users", {}).values()} - {os.getuid()}

    def leftovers(self) -> dict[int, str]:
        """Processes still running that the classroom started: its users' own, and any naming its folder."""
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            with suppress(OSError):
                status = (entry / "status").read_text()
                uid = int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1))
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if uid in self.uids() or str(self.dir) in cmdline:
                    found[int(entry.name)] = f"{entry.name} (uid {uid}): {cmdline[:200]}"
        return found

    def stop(self) -> None:
        """Stop the hub as Ctrl-C would (it stops every server and the proxy), then whatever is left."""
        if self.process is None or self.process.poll() is not None:
            return
        with suppress(OSError, ValueError):
            os.kill(int((self.dir / "state" / "jupyterhub.pid").read_text()), signal.SIGINT)
        for sig, grace in [(None, 30), (signal.SIGTERM, 10), (signal.SIGKILL, 5)]:
            if sig is not None:
                with suppress(ProcessLookupError):
                    os.killpg(self.process.pid, sig)
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=grace)
                break

    def remove(self) -> str:
        done = subprocess.run([sys.executable, str(ROOT / "hub" / "classroom.py"), "remove", "--dir", str(self.dir)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout


def hub_get(url: str) -> int:
    with suppress(OSError):
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    return 0


@pytest.fixture(scope="module")
def classroom(tmp_path_factory):
    chromium_or_skip()
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("CI runs as root: the classroom's test needs it to create system accounts")
        pytest.skip("the classroom's test creates system accounts: it runs as root (as CI does); "
                    "make hub itself also runs unprivileged, with one account for everyone")
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    room = Classroom(tmp_path_factory.mktemp("hub"))
    try:
        room.start()
        yield room
    finally:
        room.stop()
        with suppress(OSError):
            (ARTIFACTS / "hub.log").write_text(room.log())
        left = room.leftovers()
        for pid in left:  # the test fails below; its accounts must go all the same
            with suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        if left:
            time.sleep(1)
        removed = room.remove() if room.settings else ""
        import pwd

        remaining = [name for name in room.settings.get("users", {}) if _exists(pwd, name)]
        assert not left, "still running after the hub stopped:\n" + "\n".join(left.values())
        assert not remaining, f"accounts left behind: {remaining}\n{removed}"
        assert not room.dir.exists()


def _exists(pwd, name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture(scope="module")
def browser(classroom):
    sync_api = chromium_or_skip()
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, timeout=60_000)
        try:
            yield chromium
        finally:
            chromium.close()
