"""The classroom's passwords: generated, shown once, kept only as salted scrypt hashes.

A password is never fixed in a file that a real deployment would keep: ``make hub`` makes new
ones at every start and prints them once; the hub keeps their hashes in its state folder, which
only the account that runs the hub can read.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

# scrypt's cost: about 50 ms and 16 MiB a check, so a stolen hash file is slow to guess from
N, R, P = 2**14, 8, 1


def generate() -> str:
    """Twelve characters, about 72 bits: enough for a classroom, short enough to type."""
    return secrets.token_urlsafe(9)


def hashed(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P)
    return f"scrypt${N}${R}${P}${salt.hex()}${digest.hex()}"


def matches(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        found = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(found.hex(), digest)


def write(path: Path, passwords: dict[str, str]) -> None:
    """Store the hashes of ``passwords`` (user: password), readable by this account only."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({user: hashed(password) for user, password in passwords.items()}, out, indent=1)
    os.replace(tmp, path)


def read(path: Path) -> dict[str, str]:
    return json.loads(Path(path).read_text(encoding="utf-8"))
