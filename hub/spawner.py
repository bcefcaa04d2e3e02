"""JupyterHub's spawner for the classroom: each user's server in its own view (hub/confine.py).

A ``LocalProcessSpawner`` that runs ``jupyterhub-singleuser`` from the course's virtual
environment, wrapped in the user's view: a student's server confined, an instructor's in the
course folder. As root, the hub starts the view as root and the view drops to the user's account;
otherwise every server runs as the hub's own account (the hub said so when it started).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from jupyterhub.spawner import LocalProcessSpawner
from traitlets import Dict

import confine


class ClassroomSpawner(LocalProcessSpawner):
    classroom = Dict(config=True, help="the classroom's settings, as hub/classroom.py wrote them")

    @property
    def member(self) -> dict:
        return self.classroom["users"][self.user.name]

    def user_env(self, env):
        env.update(USER=self.user.name, HOME=self.member["home"], SHELL="/bin/bash")
        return env

    def get_env(self):
        env = super().get_env()
        room = self.classroom
        env.update(
            PATH=os.pathsep.join([os.path.join(room["venv"], "bin"), "/usr/local/bin", "/usr/bin", "/bin"]),
            # the course's kernel (torch, the autograder) over any python3 kernel of the user's
            JUPYTER_PREFER_ENV_PATH="1",
            JUPYTER_CONFIG_PATH=room["jupyter_config"][self.member["role"]],
        )
        env.pop("VIRTUAL_ENV", None)
        return env

    def make_preexec_fn(self, name):
        # the view drops to the user's account itself (after bwrap, which needs root, has run)
        return None

    async def start(self):
        room, member = self.classroom, self.member
        uid = member["uid"] if room["accounts"] else None
        if member["role"] == "student":
            view = confine.student_view(member["home"], room["exchange"], room["student_package"],
                                        room["package_dir"], room["jupyter_config"]["student"], uid)
            self.notebook_dir = member["home"]
        else:
            needed = {path: False for path in [*confine.python_paths(), room["repository"]]}
            needed.update({room["jupyter_config"]["instructor"]: False, member["home"]: True, room["course"]: True,
                           room["exchange"]: True})
            view = confine.instructor_view(needed, uid, room["course"])
            self.notebook_dir = room["course"]
        self.cmd = [*view, os.path.join(room["venv"], "bin", "jupyterhub-singleuser")]
        if not room["accounts"]:
            os.makedirs(member["home"], exist_ok=True)
        return await super().start()

    async def _signal(self, sig):
        # bwrap passes no signal on, and ending it ends its sandbox at once: SIGINT and SIGTERM go to
        # the server itself, which then shuts its kernels down as usual (and bwrap ends with it)
        if sig not in (0, signal.SIGKILL):
            server = _descendant(self.pid, "jupyterhub-singleuser")
            if server is not None:
                try:
                    os.kill(server, sig)
                except ProcessLookupError:
                    pass
                return await super()._signal(0)
        return await super()._signal(sig)


def _descendant(pid: int, name: str) -> int | None:
    """The first process below ``pid`` whose command line mentions ``name``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    todo = list(children.get(pid, []))
    while todo:
        current = todo.pop(0)
        try:
            comm = (Path("/proc") / str(current) / "comm").read_text().strip()
            cmdline = (Path("/proc") / str(current) / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if comm != "bwrap" and name in cmdline:  # bwrap's own command line names the server too
            return current
        todo.extend(children.get(current, []))
    return None
