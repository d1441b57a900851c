"""Download of one archive: its URLs in order (mirrors), a bounded number of attempts per URL with
exponential backoff, progress lines for large files, checksum verification, and an atomic write
(temporary name, then rename), so the target is complete and verified or absent."""

import http.client
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from truncback.runtime.atomic import atomic_path
from truncback.data.checksums import verify
from truncback.data.errors import ChecksumError, DownloadError
from truncback.data.sources import Archive, placement_hint

USER_AGENT = "truncback-data/0.1 (Python urllib)"
CHUNK = 1 << 16
RETRYABLE_HTTP = {408, 429}


class TruncatedTransfer(OSError):
    """The connection ended before Content-Length bytes arrived."""


class _Progress:
    """Prints '<file>: 30% of 170.5 MB' at every tenth of a large file (every 10 MB if the size is
    unknown)."""

    def __init__(self, filename: str, total: int | None, min_bytes: int, log):
        self.filename, self.total, self.log = filename, total, log
        self.enabled = total is None or total >= min_bytes
        self.step = total / 10 if total else 10 << 20
        self.next = self.step

    def update(self, received: int) -> None:
        if not self.enabled or received < self.next:
            return
        while self.next <= received:
            self.next += self.step
        if self.total:
            print(
                f"{self.filename}: {100 * received // self.total}% of {self.total / 1e6:.1f} MB",
                file=self.log,
                flush=True,
            )
        else:
            print(f"{self.filename}: {received / 1e6:.1f} MB", file=self.log, flush=True)


def _transfer(url: str, destination: Path, filename: str, timeout: float, min_bytes: int, log) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(destination, "wb") as out:
        length = response.headers.get("Content-Length")
        total = int(length) if length else None
        progress = _Progress(filename, total, min_bytes, log)
        received = 0
        while chunk := response.read(CHUNK):
            out.write(chunk)
            received += len(chunk)
            progress.update(received)
    if total is not None and received != total:
        raise TruncatedTransfer(f"transfer cut short after {received} of {total} bytes")


def _describe(error: Exception) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return f"cannot connect ({error.reason})"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def fetch(
    archive: Archive,
    target,
    *,
    attempts: int = 3,
    backoff: float = 2.0,
    timeout: float = 60.0,
    progress_min_bytes: int = 1 << 20,
    expected=None,
    log=sys.stderr,
) -> Path:
    """Download ``archive`` to ``target`` and verify it.

    Each URL gets up to ``attempts`` tries, waiting ``backoff * 2**i`` seconds after the i-th failed
    one; an HTTP client error (404, 403, ...) or a checksum mismatch moves on to the next URL at once.
    If every URL fails, raises :class:`ChecksumError` (when every URL served wrong bytes) or
    :class:`DownloadError`, naming the file, each URL with its last failure, and the names to put
    into data_dir (those of ``expected``, by default just this archive).
    """
    target = Path(target)
    failures: dict[str, str] = {}
    for url in archive.urls:
        for attempt in range(1, attempts + 1):
            print(f"downloading {archive.filename} from {url} (attempt {attempt} of {attempts})", file=log, flush=True)
            try:
                with atomic_path(target) as temporary:
                    _transfer(url, temporary, archive.filename, timeout, progress_min_bytes, log)
                    matched = verify(temporary, archive, source=url)
                print(f"{archive.filename}: downloaded, checksums of the {matched} verified", file=log, flush=True)
                return target
            except ChecksumError as error:
                failures[url], retry = str(error), False
            except urllib.error.HTTPError as error:
                error.close()
                failures[url] = f"{_describe(error)} (attempt {attempt} of {attempts})"
                retry = error.code >= 500 or error.code in RETRYABLE_HTTP
            except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
                failures[url], retry = f"{_describe(error)} (attempt {attempt} of {attempts})", True
            if not retry or attempt == attempts:
                print(f"{archive.filename}: {failures[url]}; giving up on {url}", file=log, flush=True)
                break
            delay = backoff * 2 ** (attempt - 1)
            print(f"{archive.filename}: {failures[url]}; retrying in {delay:g} s", file=log, flush=True)
            time.sleep(delay)
    tried = "\n".join(f"  {url}: {reason}" for url, reason in failures.items())
    error_type = ChecksumError if all(r.startswith("checksum mismatch") for r in failures.values()) else DownloadError
    raise error_type(
        f"could not download {archive.filename}; URLs tried:\n{tried}\n" + placement_hint(expected or (archive,))
    )
