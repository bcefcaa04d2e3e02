"""The classroom's system accounts: one per hub user, each with a home of its own.

Accounts are created with a mark in their comment field, and only marked accounts are ever
reused or removed: an account of the same name that someone else made is left alone, and the
classroom refuses to start rather than take it over. The accounts have no password of their own
(they cannot log in to the machine); the hub checks the classroom's passwords itself.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass

MARK = "torch.nn step by step classroom"


class AccountError(RuntimeError):
    pass


@dataclass
class Account:
    name: str
    uid: int
    gid: int
    home: str


def _tool(name: str) -> str:
    """useradd and userdel live in /usr/sbin, which an account's PATH may lack."""
    return shutil.which(name) or f"/usr/sbin/{name}"


def ensure(name: str, home: str) -> Account:
    """The marked account ``name`` with its home at ``home``, created if missing."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        entry = None
    if entry is None:
        os.makedirs(os.path.dirname(home), exist_ok=True)
        done = subprocess.run([_tool("useradd"), "--comment", MARK, "--home-dir", home, "--create-home",
                               "--shell", "/bin/bash", "--user-group", name], capture_output=True, text=True)
        if done.returncode != 0:
            raise AccountError(f"could not create the account {name}: {done.stderr.strip()}")
        entry = pwd.getpwnam(name)
    elif entry.pw_gecos.split(",")[0] != MARK:
        raise AccountError(f"an account named {name} exists and is not one of this classroom's "
                           f"(its comment is {entry.pw_gecos!r}); choose other names with --prefix")
    elif entry.pw_dir != home:
        raise AccountError(f"the classroom's account {name} has its home at {entry.pw_dir}, not {home}; "
                           "remove the classroom first (make hub-clean)")
    # `make clean` may have removed the home since: make it again, private to its owner
    os.makedirs(home, exist_ok=True)
    os.chown(home, entry.pw_uid, entry.pw_gid)
    os.chmod(home, 0o700)
    return Account(name, entry.pw_uid, entry.pw_gid, home)


def remove(name: str) -> str:
    """Remove the marked account ``name`` and its home; say what was done."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return f"{name}: no such account"
    if entry.pw_gecos.split(",")[0] != MARK:
        return f"{name}: left alone (not made by the classroom)"
    done = subprocess.run([_tool("userdel"), "--remove", name], capture_output=True, text=True)
    try:
        pwd.getpwnam(name)
    except KeyError:  # gone (userdel also complains about a home that `make clean` removed already)
        shutil.rmtree(entry.pw_dir, ignore_errors=True)
        return f"{name}: removed, with its home"
    raise AccountError(f"could not remove the account {name}: {done.stderr.strip()}")
