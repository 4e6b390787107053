"""Password hashing (argon2id) and the minimum strength a new password must have."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 10
MAX_LENGTH = 256  # argon2 takes any length; this only bounds the work an attacker can ask for

# argon2-cffi's defaults (RFC 9106 low-memory profile). Tests swap in a cheaper hasher.
HASHER = PasswordHasher()
_dummy_hashes: dict[int, str] = {}


class WeakPassword(ValueError):
    """The password is too short or otherwise refused; the message says why."""


def check_strength(password: str, username: str = "") -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"the password needs at least {MIN_LENGTH} characters (got {len(password)})")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"the password may have at most {MAX_LENGTH} characters")
    if username and password.lower() == username.lower():
        raise WeakPassword("the password must not be the username")
    if len(set(password)) < 4:
        raise WeakPassword("the password needs at least 4 different characters")


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; a missing hash still spends the time of one check."""
    try:
        return HASHER.verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def _dummy_hash() -> str:
    """Checked against when the username is unknown, so a miss takes as long as a wrong password."""
    if id(HASHER) not in _dummy_hashes:
        _dummy_hashes[id(HASHER)] = HASHER.hash("smokewatch-timing-equaliser")
    return _dummy_hashes[id(HASHER)]


def needs_rehash(stored_hash: str) -> bool:
    return HASHER.check_needs_rehash(stored_hash)
