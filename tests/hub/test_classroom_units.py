"""The classroom's parts that need no hub: its passwords, its accounts, and what a student's server is shown."""

from __future__ import annotations

import os
import pwd
import secrets
import subprocess
import sys

import pytest

from support import ROOT

sys.path.insert(0, str(ROOT / "hub"))

import accounts  # noqa: E402
import confine  # noqa: E402
import passwords  # noqa: E402


def test_passwords_are_generated_and_kept_only_as_hashes(tmp_path):
    chosen = {f"user{i}": passwords.generate() for i in range(20)}
    assert len(set(chosen.values())) == 20 and all(len(p) >= 12 for p in chosen.values())
    path = tmp_path / "passwords.json"
    passwords.write(path, chosen)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    stored = passwords.read(path)
    assert not any(password in path.read_text() for password in chosen.values())
    assert passwords.matches(chosen["user3"], stored["user3"])
    assert not passwords.matches(chosen["user3"], stored["user4"])
    assert not passwords.matches("", stored["user3"]) and not passwords.matches("x", "not a hash")


@pytest.mark.skipif(os.geteuid() != 0, reason="creates system accounts: needs root (as in CI)")
def test_an_account_the_classroom_did_not_make_is_never_taken_over_nor_removed(tmp_path):
    name = f"t{secrets.token_hex(3)}-other"
    subprocess.run(["useradd", "--no-create-home", name], check=True, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    try:
        with pytest.raises(accounts.AccountError, match="not one of this classroom's"):
            accounts.ensure(name, str(tmp_path / name))
        assert "left alone" in accounts.remove(name)
        pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    mine = f"t{secrets.token_hex(3)}-student1"
    made = accounts.ensure(mine, str(tmp_path / "homes" / mine))
    try:
        home = os.stat(made.home)
        assert (home.st_uid, oct(home.st_mode & 0o777)) == (made.uid, "0o700")
        assert accounts.ensure(mine, made.home).uid == made.uid, "a second start reuses the account"
    finally:
        assert "removed" in accounts.remove(mine)
    with pytest.raises(KeyError):
        pwd.getpwnam(mine)


def test_a_students_view_binds_the_student_build_where_the_package_is_and_nothing_of_the_course():
    uid = os.getuid()
    view = confine.student_view("/home/s1", "/srv/exchange", "/srv/student-package/autograder",
                                str(ROOT / "autograder"), "/srv/jupyter/student", uid=uid)
    binds = [(view[i], view[i + 1], view[i + 2]) for i, arg in enumerate(view) if arg in ("--bind", "--ro-bind")]
    targets = {target: (kind, source) for kind, source, target in binds}
    assert targets[str(ROOT / "autograder")] == ("--ro-bind", "/srv/student-package/autograder")
    assert targets["/home/s1"][0] == "--bind" and targets["/srv/exchange"][0] == "--bind"
    assert str(ROOT) not in targets, "the whole repository is shown"
    assert not [t for t in targets if t.startswith(str(ROOT)) and not t.startswith((str(ROOT / ".venv"), str(ROOT / "autograder")))]
    assert "--unshare-net" not in view and "--unshare-pid" in view
    dropped = view[view.index("--") + 1:]
    assert dropped[0].endswith("setpriv") and f"--reuid={uid}" in dropped and "--no-new-privs" in dropped
