"""A local classroom on JupyterHub: an instructor, a few students and nbgrader's exchange.

    python hub/classroom.py start [--dir build/hub] [--port 8000] [--students 3] [--prefix P]
    python hub/classroom.py instructor [--dir build/hub] -- COMMAND ...
    python hub/classroom.py remove [--dir build/hub]

``start`` (``make hub``) sets the classroom up in ``--dir`` and runs JupyterHub in the foreground
(Ctrl-C stops it, and every server with it). What it sets up:

=====================  ==========================================================================
``course/``            the instructor's nbgrader course folder: the course's ``solutions/`` and
                       ``notebooks/`` (copied once; the gradebook, ``submitted/``,
                       ``autograded/``, ``feedback/`` are the class's), its
                       ``nbgrader_config.py`` (the course's, plus where the exchange is)
``exchange/``          nbgrader's exchange, ``c.Exchange.root``
``homes/<user>``       each user's home
``jupyter/<role>/``    each role's Jupyter settings (``JUPYTER_CONFIG_PATH``): students get the
                       *Assignments* tab and Validate; the instructor formgrader too
``student-package/``   the student build of the ``autograder`` package (as in the student pack:
                       public checks only), which students' servers see in place of the real one
``state/``             the hub's own: its database, the hashes of the passwords, these settings
=====================  ==========================================================================

Run as root, each user is a system account of its own (marked as the classroom's; ``remove``
deletes them); otherwise every server runs as the account that started the hub, and the hub says
which isolation that loses. Either way students' servers are confined (``hub/confine.py``).

``instructor`` runs a command as the instructor, in the course folder, in the instructor's view:
what a terminal in the instructor's JupyterLab runs (``nbgrader collect 01_tensors``, say).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent
DEFAULT_DIR = REPOSITORY / "build" / "hub"
SETTINGS = "state/classroom.json"

# What students' JupyterLab shows of nbgrader (its docs' table for JupyterHub): the Assignments tab and
# Validate; not formgrader, Create Assignment or the course list.
STUDENT_OFF_LAB = ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                   "@jupyter/nbgrader:course-list")
STUDENT_OFF_SERVER = ("nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.course_list")
EXCHANGE_PAGES_LAB = ("@jupyter/nbgrader:assignment-list", "@jupyter/nbgrader:course-list")
EXCHANGE_PAGES_SERVER = ("nbgrader.server_extensions.assignment_list", "nbgrader.server_extensions.course_list")


class ClassroomError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _course_id() -> str:
    from autograder.course import load_config

    return load_config(REPOSITORY).CourseDirectory.course_id


def _hub_lines(exchange: Path) -> str:
    return f'''
# --- the local classroom (written by hub/classroom.py at every start) ---------------------------
# nbgrader's exchange, and JupyterHub's groups (nbgrader-<course>, formgrade-<course>) say who is
# in the course (nbgrader's docs, "Using nbgrader with JupyterHub").
from nbgrader.auth import JupyterHubAuthPlugin

c.Exchange.root = {str(exchange)!r}
c.Exchange.path_includes_course = True
c.Authenticator.plugin_class = JupyterHubAuthPlugin
'''


def _write_jupyter_config(target: Path, role: str, nbgrader_config: str) -> None:
    """The course's Jupyter settings (jupyter-config/), with the exchange's pages on and, for
    students, the instructor's pages off."""
    source = REPOSITORY / "jupyter-config"
    if target.exists():
        shutil.rmtree(target)
    (target / "labconfig").mkdir(parents=True)
    page = json.loads((source / "labconfig" / "page_config.json").read_text(encoding="utf-8"))
    lab_off = page.setdefault("disabledExtensions", {})
    server = json.loads((source / "jupyter_server_config.json").read_text(encoding="utf-8"))
    server_on = server.setdefault("ServerApp", {}).setdefault("jpserver_extensions", {})
    for name in EXCHANGE_PAGES_LAB:
        lab_off[name] = False
    for name in EXCHANGE_PAGES_SERVER:
        server_on[name] = True
    if role == "student":
        lab_off.update({name: True for name in STUDENT_OFF_LAB})
        server_on.update({name: False for name in STUDENT_OFF_SERVER})
    (target / "labconfig" / "page_config.json").write_text(json.dumps(page, indent=2) + "\n", encoding="utf-8")
    (target / "jupyter_server_config.json").write_text(json.dumps(server, indent=2) + "\n", encoding="utf-8")
    (target / "nbgrader_config.py").write_text(nbgrader_config, encoding="utf-8")


def _student_package(target: Path) -> None:
    """The student build of the autograder package, as the student pack ships it."""
    from autograder.pack import PACKAGE_DIR, student_package_files

    if target.exists():
        shutil.rmtree(target)
    for relative in student_package_files():
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PACKAGE_DIR / relative, target / relative)
        os.chmod(target / relative, 0o644)


def _copy_course(course: Path) -> None:
    """The course's source and release, into the instructor's course folder where missing (never
    over what is there: the instructor may have changed it)."""
    from autograder.course import Course

    repository = Course.load(REPOSITORY)
    for folder in (repository.source, repository.release):
        for assignment in sorted(p for p in folder.iterdir() if p.is_dir()):
            target = course / folder.relative_to(repository.root) / assignment.name
            if not target.exists():
                shutil.copytree(assignment, target, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for folder, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)


def _confinement_problem(accounts: bool) -> str:
    from autograder.grading.sandbox import problem

    found = problem()
    if found:
        return f"students' servers cannot be confined: {found}"
    if accounts and shutil.which("setpriv") is None:
        return "setpriv (util-linux) was not found: the hub cannot start servers as the users' accounts"
    return ""


def set_up(args: argparse.Namespace) -> dict:
    """Everything but the hub: folders, accounts, settings. Returns the settings."""
    import autograder
    import accounts

    hub = Path(args.dir).resolve()
    as_root = os.geteuid() == 0
    problem = _confinement_problem(as_root)
    if problem:
        raise ClassroomError(problem)
    course_id = _course_id()
    names = {f"{args.prefix}instructor": "instructor",
             **{f"{args.prefix}student{i}": "student" for i in range(1, args.students + 1)}}
    for folder, mode in [(hub, 0o755), (hub / "state", 0o700), (hub / "homes", 0o755), (hub / "jupyter", 0o755)]:
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, mode)
    users = {}
    for name, role in names.items():
        home = str(hub / "homes" / name)
        if as_root:
            account = accounts.ensure(name, home)
            users[name] = {"role": role, "uid": account.uid, "gid": account.gid, "home": home}
        else:
            os.makedirs(home, exist_ok=True)
            users[name] = {"role": role, "uid": os.getuid(), "gid": os.getgid(), "home": home}
    instructor = next(name for name, user in users.items() if user["role"] == "instructor")

    course, exchange = hub / "course", hub / "exchange"
    course.mkdir(exist_ok=True)
    _copy_course(course)
    course_config = ((REPOSITORY / "nbgrader_config.py").read_text(encoding="utf-8") + _hub_lines(exchange)
                     + f'c.CourseDirectory.root = {str(course)!r}\n'
                     + f'c.CourseDirectory.db_url = {"sqlite:///" + str(course / "gradebook.db")!r}\n')
    (course / "nbgrader_config.py").write_text(course_config, encoding="utf-8")
    # The exchange is everyone's (nbgrader wants it world-writable); the sticky bit keeps anyone but
    # its owner from renaming the course's folder in it, which the instructor owns from the start.
    exchange.mkdir(exist_ok=True)
    os.chmod(exchange, 0o1777)
    (exchange / course_id).mkdir(exist_ok=True)
    if as_root:
        uid, gid = users[instructor]["uid"], users[instructor]["gid"]
        _chown_tree(course, uid, gid)
        os.chown(exchange / course_id, uid, gid)
    os.chmod(course, 0o700)

    _student_package(hub / "student-package" / "autograder")
    student_config = (REPOSITORY / "nbgrader_config.py").read_text(encoding="utf-8") + _hub_lines(exchange)
    _write_jupyter_config(hub / "jupyter" / "student", "student", student_config)
    _write_jupyter_config(hub / "jupyter" / "instructor", "instructor",
                          course_config)  # so formgrader finds the course wherever the server starts

    room = {
        "course_id": course_id, "ip": args.ip, "port": args.port,
        "hub_port": _free_port(), "proxy_api_port": _free_port(),
        "accounts": as_root, "users": users, "dir": str(hub), "state": str(hub / "state"),
        "course": str(course), "exchange": str(exchange), "repository": str(REPOSITORY),
        "venv": sys.prefix, "package_dir": str(Path(autograder.__file__).resolve().parent),
        "student_package": str(hub / "student-package" / "autograder"),
        "jupyter_config": {role: str(hub / "jupyter" / role) for role in ("student", "instructor")},
    }
    (hub / SETTINGS).write_text(json.dumps(room, indent=1), encoding="utf-8")
    return room


def banner(room: dict, passwords: dict[str, str]) -> str:
    url = f"http://{room['ip']}:{room['port']}/"
    width = max(len(name) for name in room["users"]) + 2
    lines = [f"The classroom of {room['course_id']} is at {url}", "",
             "Log in there with one of these names and passwords (shown only now; every start makes new ones):", ""]
    for name, user in room["users"].items():
        lines.append(f"  {name:<{width}}{passwords[name]}   {user['role']}")
    instructor = next(name for name, user in room["users"].items() if user["role"] == "instructor")
    lines += ["",
              "Students: JupyterLab's menu Nbgrader > Assignment List shows what was released: Fetch, work, Validate, "
              "Submit, and later Fetch Feedback.",
              f"The instructor: a terminal in JupyterLab opens in the course folder ({room['course']}):",
              "  nbgrader release_assignment 01_tensors",
              "  nbgrader collect 01_tensors",
              "  autograder grade 01_tensors --submissions submitted",
              "  nbgrader release_feedback 01_tensors",
              f"  formgrader: {url}user/{instructor}/formgrader (in a browser tab of its own)",
              ""]
    if room["accounts"]:
        lines.append("Each user is a system account of its own, with its home in "
                     f"{Path(room['dir']) / 'homes'}; students' servers are confined with bubblewrap: they see their "
                     "home, the exchange and the public checks, never solutions/ or the instructor's course folder.")
    else:
        import getpass

        lines.append(f"NOT RUN AS ROOT: every server runs as {getpass.getuser()}. Lost: students are not separate "
                     "system accounts, so nbgrader's exchange cannot keep one student's submissions and feedback from "
                     "another (they all have one owner). Each student's server is still confined to its own home and "
                     "the exchange (no solutions/, no instructor's course folder). `sudo make hub` gives each user "
                     "an account.")
    lines.append("Ctrl-C stops the hub and every server. make hub-clean removes the accounts and the classroom's folder.")
    return "\n".join(lines)


def start(args: argparse.Namespace) -> int:
    import passwords
    from accounts import AccountError

    try:
        room = set_up(args)
    except (ClassroomError, AccountError) as error:
        print(f"make hub: {error}", file=sys.stderr)
        return 2
    chosen = {name: passwords.generate() for name in room["users"]}
    passwords.write(Path(room["state"]) / "passwords.json", chosen)
    (Path(room["state"]) / "jupyterhub.sqlite").unlink(missing_ok=True)
    print(banner(room, chosen), flush=True)
    env = dict(os.environ, CLASSROOM_SETTINGS=str(Path(room["dir"]) / SETTINGS))
    hub = os.path.join(sys.prefix, "bin", "jupyterhub")
    os.chdir(room["state"])
    os.execve(hub, [hub, "-f", str(HERE / "jupyterhub_config.py")], env)


def _settings(folder: str) -> dict:
    path = Path(folder).resolve() / SETTINGS
    if not path.exists():
        raise ClassroomError(f"no classroom in {Path(folder).resolve()} (make hub sets one up)")
    return json.loads(path.read_text(encoding="utf-8"))


def instructor_command(room: dict, command: list[str]) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that run ``command`` as the instructor, in the course folder,
    as a terminal in the instructor's JupyterLab would."""
    import confine

    name, user = next((n, u) for n, u in room["users"].items() if u["role"] == "instructor")
    env = {key: os.environ[key] for key in ("LANG", "LC_ALL", "TERM") if key in os.environ}
    env.update(USER=name, HOME=user["home"], SHELL="/bin/bash", JUPYTER_PREFER_ENV_PATH="1",
               JUPYTER_CONFIG_PATH=room["jupyter_config"]["instructor"],
               PATH=os.pathsep.join([os.path.join(room["venv"], "bin"), "/usr/local/bin", "/usr/bin", "/bin"]))
    if not room["accounts"]:
        return command, env
    needed = {path: False for path in [*confine.python_paths(), room["repository"], room["jupyter_config"]["instructor"]]}
    needed.update({user["home"]: True, room["course"]: True, room["exchange"]: True})
    return [*confine.instructor_view(needed, user["uid"], room["course"]), *command], env


def as_instructor(args: argparse.Namespace) -> int:
    try:
        room = _settings(args.dir)
    except ClassroomError as error:
        print(f"classroom: {error}", file=sys.stderr)
        return 2
    command = [part for part in args.command if part != "--"]
    if not command:
        print("classroom instructor: which command? e.g. -- nbgrader collect 01_tensors", file=sys.stderr)
        return 2
    full, env = instructor_command(room, command)
    return subprocess.run(full, cwd=room["course"], env=env).returncode


def _hub_running(room: dict) -> bool:
    try:
        pid = int((Path(room["state"]) / "jupyterhub.pid").read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


def remove(args: argparse.Namespace) -> int:
    hub = Path(args.dir).resolve()
    try:
        room = _settings(args.dir)
    except ClassroomError:
        room = None
    if room is not None:
        if _hub_running(room):
            print("classroom: the hub is running; stop it (Ctrl-C) first", file=sys.stderr)
            return 2
        if room["accounts"]:
            import accounts

            try:
                for name in room["users"]:
                    print(accounts.remove(name))
            except accounts.AccountError as error:
                print(f"classroom: {error}", file=sys.stderr)
                return 2
    if hub.exists():
        shutil.rmtree(hub)
        print(f"removed {hub}")
    return 0


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(HERE))
    parser = argparse.ArgumentParser(prog="classroom", description="A local classroom on JupyterHub (make hub).")
    commands = parser.add_subparsers(dest="command", required=True)
    begin = commands.add_parser("start", help="set the classroom up and run the hub in the foreground")
    begin.add_argument("--dir", default=str(DEFAULT_DIR), help="the classroom's folder (default: build/hub)")
    begin.add_argument("--ip", default="127.0.0.1", help="where the hub listens (default: 127.0.0.1)")
    begin.add_argument("--port", type=int, default=8000, help="the hub's port (default: 8000)")
    begin.add_argument("--students", type=int, default=3, help="how many students (default: 3)")
    begin.add_argument("--prefix", default="", help="put before every user name (e.g. t1-: t1-instructor, t1-student1)")
    begin.set_defaults(run=start)
    teacher = commands.add_parser("instructor", help="run a command as the instructor, in the course folder")
    teacher.add_argument("--dir", default=str(DEFAULT_DIR))
    teacher.add_argument("command", nargs=argparse.REMAINDER)
    teacher.set_defaults(run=as_instructor)
    clean = commands.add_parser("remove", help="remove the classroom's accounts and folder (the hub must be stopped)")
    clean.add_argument("--dir", default=str(DEFAULT_DIR))
    clean.set_defaults(run=remove)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
