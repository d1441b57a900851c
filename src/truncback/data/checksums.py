"""Checksum verification of archives.

A file passes when every digest recorded for the archive matches its bytes, or - for a gzip file
whose decompressed payload has recorded digests (MNIST) - when every recorded payload digest
matches its decompressed content. The second rule accepts re-compressed copies; it is as strong as
the first for our purpose, because the parsers read only the payload.
"""

import gzip
import hashlib
import zlib
from pathlib import Path

from truncback.data.errors import ChecksumError
from truncback.data.sources import Archive, Digests

CHUNK = 1 << 20


def _digest_stream(read) -> dict[str, str]:
    hashes = {"md5": hashlib.md5(), "sha256": hashlib.sha256()}
    while chunk := read(CHUNK):
        for algorithm in hashes.values():
            algorithm.update(chunk)
    return {name: algorithm.hexdigest() for name, algorithm in hashes.items()}


def file_digests(path) -> dict[str, str]:
    """MD5 and SHA-256 of a file's bytes, in one pass."""
    with open(path, "rb") as stream:
        return _digest_stream(stream.read)


def payload_digests(path) -> dict[str, str] | None:
    """MD5 and SHA-256 of a gzip file's decompressed content; ``None`` if it is not valid gzip."""
    try:
        with gzip.open(path, "rb") as stream:
            return _digest_stream(stream.read)
    except (OSError, EOFError, zlib.error):
        return None


def _mismatches(expected: Digests, actual: dict[str, str]) -> list[str]:
    problems = []
    for name, value in expected.recorded().items():
        if name == "sha256_prefix":
            if not actual["sha256"].startswith(value):
                problems.append(f"sha256 {actual['sha256']} (expected one starting with {value})")
        elif actual[name] != value:
            problems.append(f"{name} {actual[name]} (expected {value})")
    return problems


def verify(path, archive: Archive, source: str | None = None) -> str:
    """Check ``path`` against ``archive``'s recorded digests; return what matched ("file" or
    "decompressed payload"), or raise :class:`ChecksumError` naming the file (or ``source``, e.g.
    the URL it came from) and every digest that differs."""
    path = Path(path)
    problems = _mismatches(archive.digests, file_digests(path))
    if not problems:
        return "file"
    if archive.payload_digests is not None:
        payload = payload_digests(path)
        if payload is None:
            problems.append("and it is not a readable gzip file")
        else:
            payload_problems = _mismatches(archive.payload_digests, payload)
            if not payload_problems:
                return "decompressed payload"
            problems.append("decompressed payload " + ", ".join(payload_problems))
    raise ChecksumError(
        f"checksum mismatch: {source or path} is not a valid {archive.filename}: " + "; ".join(problems)
    )
