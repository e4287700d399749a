"""A real S3 HTTP endpoint for tests (moto's server on 127.0.0.1, in a child process), and a
direct look into an object store's folder or bucket.

Register the fixture in a test module with `from tests.s3 import s3_endpoint  # noqa: F401`.

The server runs in its own process rather than in a thread of the test process: moto keeps
every object in memory, and in-process that would count against the memory measured while
uploading (tracemalloc traces all threads). The child prints its port, then serves until its
stdin closes, so it also ends when the test process dies. moto does not check signatures or
expiry: tests of those need MinIO itself.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from storage.objects import LocalObjectStore, ObjectStore, S3ObjectStore
from tests.conftest import require

ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"

_SERVER = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """`host:port` of a running moto S3 server."""
    try:
        import moto.server  # noqa: F401
    except ImportError:
        require("moto", False, "install the dev dependency moto[server]")
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        if not port.isdigit():
            pytest.fail(f"moto's S3 server did not start (exit code {process.poll()})")
        yield f"127.0.0.1:{port}"
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def fresh_bucket() -> str:
    """A bucket name no test has used yet."""
    return f"formflow-test-{uuid.uuid4().hex[:12]}"


def stored_keys(store: ObjectStore) -> list[str]:
    """Every object in the store's folder or bucket, staged leftovers included, listed directly."""
    if isinstance(store, LocalObjectStore):
        return sorted(str(p.relative_to(store.root)) for p in store.root.rglob("*") if p.is_file())
    assert isinstance(store, S3ObjectStore)
    return sorted(str(o.object_name) for o in store.client.list_objects(store.bucket, recursive=True))
