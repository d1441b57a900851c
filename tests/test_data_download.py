"""Downloads against a local HTTP server on 127.0.0.1 serving fixture archives: success, checksum
failure, cut-short transfers, mirror fall-over, progress lines."""

import dataclasses
import http.server
import io
import threading
from collections import Counter

import numpy as np
import pytest

from truncback.data import ChecksumError, DownloadError, load_prepared
from truncback.data.checksums import file_digests
from truncback.data.download import fetch
from truncback.data.fixtures import FixtureSize, write_fixture
from truncback.data.prepare import prepare
from truncback.data.sources import Digests, archive

SIZE = FixtureSize(train=40, test=20, alphabets=2, characters=3)


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.routes[path] = (body, mode)``; mode "cut" sends half the body, "cut-once"
    does so on the first request only; unknown paths get 404."""

    def do_GET(self):
        self.server.hits[self.path] += 1
        if self.path not in self.server.routes:
            self.send_error(404)
            return
        body, mode = self.server.routes[self.path]
        cut = mode == "cut" or (mode == "cut-once" and self.server.hits[self.path] == 1)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if cut else body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.routes, httpd.hits = {}, Counter()
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def fixture_files(tmp_path_factory):
    """Small fixture archives: the two MNIST test files, the CIFAR-10 tarball, an Omniglot zip."""
    folder = tmp_path_factory.mktemp("served")
    keys = ("mnist_test_images", "mnist_test_labels", "cifar10", "omniglot_background")
    return {key: write_fixture(key, folder / archive(key).filename, seed=3, size=SIZE) for key in keys}


def _served(server, key, path, urls=None, body=None, mode="full"):
    """The registry's archive ``key`` re-pointed at the local server, with the digests of ``path``."""
    route = f"/{key}/{path.name}"
    server.routes[route] = (body if body is not None else path.read_bytes(), mode)
    digests = Digests(**file_digests(path))
    return dataclasses.replace(
        archive(key), urls=tuple(urls or [server.base + route]), digests=digests, payload_digests=None
    )


def _fetch(item, target, **options):
    options = {"attempts": 3, "backoff": 0.0, "timeout": 5.0, "log": io.StringIO(), **options}
    return fetch(item, target, **options)


def test_download_verify_and_prepare_succeed(server, fixture_files, tmp_path):
    raw = {key: _fetch(_served(server, key, path), tmp_path / "raw" / path.name) for key, path in fixture_files.items()}
    for key, path in raw.items():
        assert path.read_bytes() == fixture_files[key].read_bytes()
    mnist = load_prepared(
        prepare(
            "smoke", "mnist_test", [raw["mnist_test_images"], raw["mnist_test_labels"]], tmp_path / "mnist_test.npz"
        )
    )
    assert mnist["images"].shape == (SIZE.test, 28, 28) and mnist["labels"].dtype == np.int64
    cifar = load_prepared(prepare("smoke", "cifar10_train", [raw["cifar10"]], tmp_path / "cifar10_train.npz"))
    assert cifar["images"].shape == (SIZE.train, 32, 32, 3) and cifar["images"].dtype == np.uint8
    omniglot = load_prepared(
        prepare("smoke", "omniglot_background", [raw["omniglot_background"]], tmp_path / "omniglot_background.npz")
    )
    assert omniglot["images"].shape == (SIZE.alphabets * SIZE.characters * 20, 28, 28)
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == sorted(p.name for p in raw.values())


def test_flipped_byte_fails_with_checksum_error_and_leaves_nothing(server, fixture_files, tmp_path):
    original = fixture_files["cifar10"].read_bytes()
    corrupted = bytearray(original)
    corrupted[len(corrupted) // 2] ^= 0x01
    item = _served(server, "cifar10", fixture_files["cifar10"], body=bytes(corrupted))
    target = tmp_path / "raw" / item.filename
    with pytest.raises(ChecksumError) as error:
        _fetch(item, target)
    message = str(error.value)
    assert "checksum mismatch" in message and item.filename in message and item.urls[0] in message
    assert "data_dir" in message and "cifar10/cifar-10-python.tar.gz" in message
    assert not target.exists() and list(target.parent.iterdir()) == []
    assert server.hits[item.urls[0].removeprefix(server.base)] == 1


def test_cut_short_transfer_is_retried_then_fails_cleanly(server, fixture_files, tmp_path):
    item = _served(server, "mnist_test_images", fixture_files["mnist_test_images"], mode="cut")
    target = tmp_path / "raw" / item.filename
    with pytest.raises(DownloadError) as error:
        _fetch(item, target, attempts=3)
    message = str(error.value)
    assert item.filename in message and item.urls[0] in message and "cut short" in message
    assert "mnist/t10k-images-idx3-ubyte.gz" in message
    assert server.hits[item.urls[0].removeprefix(server.base)] == 3
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_cut_short_transfer_succeeds_on_retry(server, fixture_files, tmp_path):
    item = _served(server, "cifar10", fixture_files["cifar10"], mode="cut-once")
    target = _fetch(item, tmp_path / item.filename)
    assert target.read_bytes() == fixture_files["cifar10"].read_bytes()
    assert server.hits[item.urls[0].removeprefix(server.base)] == 2


def test_404_on_first_mirror_falls_over_to_the_next(server, fixture_files, tmp_path):
    missing = server.base + "/gone/t10k-labels-idx1-ubyte.gz"
    item = _served(server, "mnist_test_labels", fixture_files["mnist_test_labels"])
    item = dataclasses.replace(item, urls=(missing, *item.urls))
    log = io.StringIO()
    target = _fetch(item, tmp_path / item.filename, log=log)
    assert target.read_bytes() == fixture_files["mnist_test_labels"].read_bytes()
    assert server.hits["/gone/t10k-labels-idx1-ubyte.gz"] == 1
    assert "HTTP 404" in log.getvalue()


def test_every_url_failing_names_all_of_them(server, fixture_files, tmp_path):
    urls = (server.base + "/a/images_background.zip", server.base + "/b/images_background.zip")
    item = dataclasses.replace(archive("omniglot_background"), urls=urls)
    with pytest.raises(DownloadError) as error:
        _fetch(item, tmp_path / item.filename, expected=[archive("omniglot_background"), archive("cifar10")])
    message = str(error.value)
    assert all(url in message for url in urls) and message.count("HTTP 404") == 2
    assert "omniglot/images_background.zip, cifar10/cifar-10-python.tar.gz" in message


def test_large_files_show_progress(server, fixture_files, tmp_path):
    item = _served(server, "cifar10", fixture_files["cifar10"])
    log = io.StringIO()
    _fetch(item, tmp_path / item.filename, progress_min_bytes=1, log=log)
    lines = [line for line in log.getvalue().splitlines() if "% of" in line]
    assert len(lines) >= 2 and lines[-1].startswith("cifar-10-python.tar.gz: 100% of")


def test_resnet_weights_are_fetched_by_their_sha256_prefix_and_a_corrupt_copy_is_refused(server, tmp_path):
    """The registered weights archive, re-pointed at the local server: its recorded digest is the
    SHA-256 prefix in the file name (torchvision's convention). A file whose digest starts with the
    prefix is accepted (the prefix is taken from the file served, since no other file than
    torchvision's own has f37072fd); one byte flipped and it is refused, nothing left at the target."""
    weights = archive("resnet18_weights")
    assert weights.digests.recorded() == {"sha256_prefix": "f37072fd"}
    assert weights.urls == ("https://download.pytorch.org/models/resnet18-f37072fd.pth",)
    body = bytes(range(256)) * 64
    route = f"/models/{weights.filename}"
    server.routes[route] = (body, "full")
    served = tmp_path / "served.pth"
    served.write_bytes(body)
    prefix = file_digests(served)["sha256"][:8]
    item = dataclasses.replace(weights, urls=(server.base + route,), digests=Digests(sha256_prefix=prefix))
    target = tmp_path / "raw" / "models" / weights.filename
    assert _fetch(item, target).read_bytes() == body
    target.unlink()
    corrupted = bytearray(body)
    corrupted[100] ^= 0x01
    server.routes[route] = (bytes(corrupted), "full")
    with pytest.raises(ChecksumError, match=f"expected one starting with {prefix}"):
        _fetch(item, target)
    assert not target.exists() and list(target.parent.iterdir()) == []
    server.routes[route] = (body, "full")
    with pytest.raises(ChecksumError, match="expected one starting with f37072fd"):  # the real prefix
        _fetch(dataclasses.replace(weights, urls=(server.base + route,)), target)
    assert not target.exists()
