"""Checks an evidence file against its recorded SHA-256 before it is served.

Hashing a long clip on every Range request would be slow, so a good result is remembered per
file together with its size and modification time; a file changed on disk gets a new mtime
(or size) and is hashed again. (A change that keeps both, e.g. a raw disk edit followed by a
reset of the timestamp, is only caught once the cache is dropped, e.g. on restart.)
"""

from __future__ import annotations

import threading
from pathlib import Path

from service.evidence import sha256_file


class VerifiedHashes:
    """Remembers which files matched which hash at which (size, mtime)."""

    def __init__(self) -> None:
        self._seen: dict[Path, tuple[int, int, str]] = {}
        self._lock = threading.Lock()

    def matches(self, path: Path, sha256: str) -> bool:
        stat = path.stat()
        with self._lock:
            cached = self._seen.get(path)
        if cached == (stat.st_size, stat.st_mtime_ns, sha256):
            return True
        if sha256_file(path) != sha256:
            with self._lock:
                self._seen.pop(path, None)
            return False
        with self._lock:
            self._seen[path] = (stat.st_size, stat.st_mtime_ns, sha256)
        return True
