# JupyterHub's configuration for the local classroom (`make hub`). hub/classroom.py sets the
# classroom up, writes its settings (ports, accounts, folders) and starts JupyterHub with this file.
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from authenticator import ClassroomAuthenticator  # noqa: E402
from spawner import ClassroomSpawner  # noqa: E402

c = get_config()  # noqa: F821  (provided by JupyterHub when it loads this file)

with open(os.environ["CLASSROOM_SETTINGS"], encoding="utf-8") as settings:
    room = json.load(settings)
state = room["state"]
course = room["course_id"]
students = sorted(name for name, user in room["users"].items() if user["role"] == "student")
instructors = sorted(name for name, user in room["users"].items() if user["role"] == "instructor")

c.JupyterHub.bind_url = f"http://{room['ip']}:{room['port']}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = room["hub_port"]
# The proxy is the Python port of configurable-http-proxy, pinned in pyproject.toml and installed
# with the rest: nothing is fetched when the hub starts. It reads each response whole before passing
# it on, within 20 s unless told otherwise: Validate (which runs a whole notebook) and the progress of
# a server that starts slowly take longer.
c.ConfigurableHTTPProxy.command = [os.path.join(room["venv"], "bin", "configurable-http-proxy"),
                                   "--proxy-timeout", str(10 * 60 * 1000)]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{room['proxy_api_port']}"
# A new hub database at every start: servers never outlive the hub (cleanup_servers, and bwrap's
# --die-with-parent), so there is nothing in it worth keeping.
c.JupyterHub.db_url = f"sqlite:///{state}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = os.path.join(state, "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = os.path.join(state, "jupyterhub.pid")

c.JupyterHub.authenticator_class = ClassroomAuthenticator
c.ClassroomAuthenticator.password_file = os.path.join(state, "passwords.json")
c.Authenticator.allowed_users = set(room["users"])

c.JupyterHub.spawner_class = ClassroomSpawner
c.ClassroomSpawner.classroom = room
c.Spawner.default_url = "/lab"
# JupyterLab with torch on a busy 2-core machine can take a while to answer
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 180

# nbgrader's groups (nbgrader's docs, "JupyterHub Authentication"): formgrade-<course> for who
# grades, nbgrader-<course> for students. JupyterHubAuthPlugin reads them to know who is in the course.
c.JupyterHub.load_groups = {
    f"formgrade-{course}": {"users": instructors},
    f"nbgrader-{course}": {"users": students},
}
# Graders may add students to the course's group (formgrader's "Manage Students" does, through the
# hub's API), and nothing more of the hub.
c.JupyterHub.load_roles = [{
    "name": f"formgrade-{course}",
    "description": f"grade {course}: manage who is a student of it",
    "scopes": [f"list:groups!group=nbgrader-{course}", f"groups!group=nbgrader-{course}"],
    "groups": [f"formgrade-{course}"],
}]


def server_token_scopes(spawner):
    """What a server's API token may do: nbgrader asks the hub which courses its user is in."""
    scopes = ["users:activity!user", "access:servers!server", "read:users:name!user", "read:users:groups!user"]
    if spawner.user.name in instructors:
        scopes += [f"list:groups!group=nbgrader-{course}", f"groups!group=nbgrader-{course}"]
    return scopes


c.Spawner.server_token_scopes = server_token_scopes
