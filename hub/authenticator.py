"""JupyterHub's login for the classroom: each user's own password, checked against its hash."""

from __future__ import annotations

from jupyterhub.auth import Authenticator
from traitlets import Unicode

import passwords


class ClassroomAuthenticator(Authenticator):
    """Logs in the classroom's users with the passwords ``make hub`` printed when it started."""

    password_file = Unicode(config=True, help="hashes of the classroom's passwords (hub/passwords.py)")

    async def authenticate(self, handler, data):
        name, password = self.normalize_username(data.get("username", "")), data.get("password", "")
        stored = passwords.read(self.password_file).get(name)
        if stored is not None and passwords.matches(password, stored):
            return name
        self.log.warning("failed login for %r", name)
        return None
