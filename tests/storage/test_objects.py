"""The object stores: the local folder and S3 (moto's real HTTP server through the minio SDK),
both behind the same cases: round trip, size limit, vetting, deletion, keys, URLs, memory."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

import httpx
import pytest

from storage.objects import (
    LocalObjectStore,
    ObjectMissing,
    ObjectStore,
    ObjectStoreUnavailable,
    ObjectTooLarge,
    S3ObjectStore,
)
from storage.objects.local import STAGING
from tests.s3 import ACCESS_KEY, REGION, SECRET_KEY, fresh_bucket, s3_endpoint, stored_keys  # noqa: F401

KEY = "att/2026/11/0123456789abcdef0123456789abcdef"
CHUNK = 64 * 1024
MB = 1024 * 1024


def s3_store(endpoint: str, bucket: str) -> S3ObjectStore:
    return S3ObjectStore(
        endpoint=endpoint,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        bucket=bucket,
        region=REGION,
        secure=False,
    )


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        backend: ObjectStore = LocalObjectStore(tmp_path / "objects")
    else:
        backend = s3_store(request.getfixturevalue("s3_endpoint"), fresh_bucket())
    await backend.prepare()
    return backend


async def chunks_of(data: bytes, size: int = CHUNK) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def filler(total: int, size: int = CHUNK) -> AsyncIterator[bytes]:
    """`total` bytes made one chunk at a time, never held at once."""
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        yield b"%" * n
        sent += n


async def read_all(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def test_a_stream_goes_in_whole_and_comes_back_the_same(store: ObjectStore) -> None:
    data = os.urandom(300 * 1024 + 7)
    stored = await store.put(KEY, chunks_of(data), max_size=MB)
    assert (stored.key, stored.size) == (KEY, len(data))
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.content_type == "application/octet-stream"
    assert (await store.stat(KEY)).size == len(data)
    assert await store.exists(KEY)
    assert await read_all(await store.open(KEY)) == data
    assert stored_keys(store) == [KEY]


async def test_content_of_exactly_the_limit_is_accepted(store: ObjectStore) -> None:
    stored = await store.put(KEY, filler(MB), max_size=MB)
    assert stored.size == MB


async def test_one_byte_over_the_limit_is_refused_and_leaves_nothing(store: ObjectStore) -> None:
    with pytest.raises(ObjectTooLarge) as refused:
        await store.put(KEY, filler(MB + 1), max_size=MB)
    assert refused.value.max_size == MB
    assert stored_keys(store) == []
    assert not await store.exists(KEY)


async def test_the_content_check_sees_the_whole_content_and_names_the_type(store: ObjectStore) -> None:
    data = b"%PDF-1.7\n" + os.urandom(200 * 1024)
    seen: list[bytes] = []

    def check(file: BinaryIO) -> str:
        seen.append(file.read())
        return "application/pdf"

    stored = await store.put(KEY, chunks_of(data), max_size=MB, check_content=check)
    assert seen == [data]
    assert stored.content_type == "application/pdf"
    assert await read_all(await store.open(KEY)) == data


async def test_content_refused_by_the_check_leaves_nothing(store: ObjectStore) -> None:
    class Refused(Exception):
        pass

    def check(file: BinaryIO) -> str:
        raise Refused("not a PDF")

    with pytest.raises(Refused):
        await store.put(KEY, chunks_of(b"MZ\x90\x00" * 1000), max_size=MB, check_content=check)
    assert stored_keys(store) == []


async def test_a_failing_stream_leaves_nothing(store: ObjectStore) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * CHUNK
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await store.put(KEY, broken(), max_size=MB)
    assert stored_keys(store) == []


async def test_deleted_objects_are_gone_and_deleting_twice_is_fine(store: ObjectStore) -> None:
    await store.put(KEY, chunks_of(b"content"), max_size=MB)
    await store.delete(KEY)
    await store.delete(KEY)
    assert not await store.exists(KEY)
    assert stored_keys(store) == []
    with pytest.raises(ObjectMissing):
        await store.open(KEY)
    with pytest.raises(ObjectMissing):
        await store.stat(KEY)


@pytest.mark.parametrize(
    "key", ["../etc/passwd", "att/../../x", "/abs/path", "Att/UPPER", "att//x", "att/x.pdf", "", "a" * 201]
)
async def test_only_generated_keys_are_accepted(store: ObjectStore, key: str) -> None:
    with pytest.raises(ValueError, match="not a generated object key"):
        await store.put(key, chunks_of(b"x"), max_size=MB)
    with pytest.raises(ValueError, match="not a generated object key"):
        await store.delete(key)
    assert stored_keys(store) == []


async def test_prepare_is_idempotent_and_the_store_is_ready(store: ObjectStore) -> None:
    await store.prepare()
    await store.ping()


async def test_a_download_url_serves_the_object_with_the_given_headers(store: ObjectStore) -> None:
    await store.put(KEY, chunks_of(b"%PDF-1.4 hello"), max_size=MB)
    disposition = "attachment; filename=\"a.pdf\"; filename*=UTF-8''%E6%96%B0.pdf"
    url = await store.download_url(
        KEY, expires=timedelta(minutes=1), content_type="application/pdf", disposition=disposition
    )
    if isinstance(store, LocalObjectStore):
        assert url is None, "the local folder streams through the app instead"
        return
    assert url is not None and "X-Amz-Expires=60" in url
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
    assert response.status_code == 200
    assert response.content == b"%PDF-1.4 hello"
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == disposition


async def test_memory_stays_at_a_few_chunks_while_storing_10_mb(store: ObjectStore) -> None:
    await store.put(KEY, filler(CHUNK), max_size=MB)  # warm up imports and connections
    tracemalloc.start()
    try:
        stored = await store.put(KEY, filler(10 * MB), max_size=11 * MB)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stored.size == 10 * MB
    assert peak < 1 * MB, f"peak {peak / MB:.2f} MB while storing 10 MB"


# --- backend specifics ---------------------------------------------------------------------------


async def test_s3_objects_carry_the_vetted_content_type(s3_endpoint: str) -> None:  # noqa: F811
    store = s3_store(s3_endpoint, fresh_bucket())
    await store.prepare()
    await store.put(KEY, chunks_of(b"\x89PNG\r\n\x1a\n"), max_size=MB, check_content=lambda f: "image/png")
    assert store.client.stat_object(store.bucket, KEY).content_type == "image/png"


async def test_s3_ping_fails_naming_a_missing_bucket(s3_endpoint: str) -> None:  # noqa: F811
    store = s3_store(s3_endpoint, fresh_bucket())
    with pytest.raises(ObjectStoreUnavailable, match="is missing"):
        await store.ping()


async def test_local_objects_are_published_atomically_from_staging(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    await store.prepare()
    await store.put(KEY, chunks_of(b"content"), max_size=MB)
    assert (tmp_path / KEY).read_bytes() == b"content"
    assert list((tmp_path / STAGING).iterdir()) == [], "the staged file was renamed, not copied"


async def test_local_ping_fails_when_the_folder_cannot_be_written(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "objects"
    not_a_folder.write_text("a file where the folder should be")
    store = LocalObjectStore(not_a_folder)
    with pytest.raises(ObjectStoreUnavailable):
        await store.prepare()
    with pytest.raises(ObjectStoreUnavailable):
        await store.ping()
