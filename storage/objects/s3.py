"""The S3 object store (MinIO in compose.yaml, or any S3 endpoint) through the `minio` SDK.

The client is built with its region, so presigning is computed offline (without a region the
SDK asks the server for the bucket's location first). The SDK is synchronous: every call runs
in a worker thread.

Uploads are staged in a temporary file (size limit, SHA-256, vetting), then sent with one PUT
of known length to a presigned URL, the body streamed from the file in small blocks. This keeps
memory at a chunk: the SDK's own `put_object` holds a whole part (at least 5 MiB) in memory,
twice over while reading the next part. One PUT carries objects up to 5 GiB.

Presigned download URLs carry the host the app reaches S3 by. When browsers need another host
(compose: the app talks to `minio:9000`, browsers to a public name), a second client built with
the public endpoint and the same region is needed for presigning; not there yet.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anyio
import certifi
import urllib3
from minio import Minio
from minio.error import MinioException, S3Error

from storage.objects._staging import StagedFile, staged, vet
from storage.objects.base import (
    CHUNK_SIZE,
    ContentCheck,
    ObjectInfo,
    ObjectMissing,
    ObjectStore,
    ObjectStoreUnavailable,
    StoredObject,
    check_key,
)

UPLOAD_URL_LIFETIME = timedelta(minutes=15)
_MISSING = {"NoSuchKey", "NoSuchObject", "NoSuchVersion"}
_T = TypeVar("_T")


def http_pool(*, verify_tls: bool = True) -> urllib3.PoolManager:
    """The connection pool for the SDK and for uploads: minio's own defaults, shorter timeouts."""
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=10, read=120),
        maxsize=10,
        cert_reqs="CERT_REQUIRED" if verify_tls else "CERT_NONE",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=urllib3.Retry(total=5, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
    )


class S3ObjectStore(ObjectStore):
    name = "s3"

    def __init__(
        self,
        *,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        region: str,
        secure: bool,
        staging_dir: Path | str | None = None,
    ) -> None:
        self.bucket = bucket
        self.staging = Path(staging_dir) if staging_dir else None
        self._http = http_pool()
        self.client = Minio(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=self._http,
        )

    async def prepare(self) -> None:
        await self._call(self._prepare)

    async def ping(self) -> None:
        if not await self._call(self.client.bucket_exists, self.bucket):
            raise ObjectStoreUnavailable(f"bucket {self.bucket} is missing")

    async def put(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        max_size: int,
        check_content: ContentCheck | None = None,
    ) -> StoredObject:
        check_key(key)
        directory = self.staging or Path(tempfile.gettempdir())
        async with staged(chunks, directory=directory, max_size=max_size) as upload:
            content_type = await anyio.to_thread.run_sync(vet, check_content, upload.file)
            await self._call(self._send, key, upload, content_type)
        return StoredObject(key=key, size=upload.size, sha256=upload.sha256, content_type=content_type)

    async def stat(self, key: str) -> ObjectInfo:
        found = await self._call(self.client.stat_object, self.bucket, check_key(key), for_key=key)
        return ObjectInfo(key=key, size=int(found.size or 0))

    async def open(self, key: str) -> AsyncIterator[bytes]:
        response = await self._call(self.client.get_object, self.bucket, check_key(key), for_key=key)
        return _chunks(response)

    async def download_url(self, key: str, *, expires: timedelta, content_type: str, disposition: str) -> str:
        headers = {"response-content-type": content_type, "response-content-disposition": disposition}
        return await self._call(
            self.client.presigned_get_object,
            self.bucket,
            check_key(key),
            expires=expires,
            response_headers=headers,
        )

    async def delete(self, key: str) -> None:
        await self._call(self.client.remove_object, self.bucket, check_key(key))

    async def exists(self, key: str) -> bool:
        try:
            await self.stat(key)
        except ObjectMissing:
            return False
        return True

    async def _call(self, fn: Callable[..., _T], *args: Any, for_key: str = "", **kwargs: Any) -> _T:
        """Run one SDK call in a worker thread, its errors translated (`for_key` names a missing object)."""

        def run() -> _T:
            with _translated(for_key):
                return fn(*args, **kwargs)

        return await anyio.to_thread.run_sync(run)

    def _prepare(self) -> None:
        if self.client.bucket_exists(self.bucket):
            return
        try:
            self.client.make_bucket(self.bucket)
        except S3Error as exc:  # another process created it in between
            if exc.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                raise

    def _send(self, key: str, upload: StagedFile, content_type: str) -> None:
        url = self.client.presigned_put_object(self.bucket, key, expires=UPLOAD_URL_LIFETIME)
        upload.file.seek(0)
        response = self._http.request(
            "PUT",
            url,
            body=upload.file,
            headers={"Content-Length": str(upload.size), "Content-Type": content_type},
        )
        if response.status != 200:
            raise ObjectStoreUnavailable(
                f"S3 refused the upload of {key}: HTTP {response.status} {response.data[:300]!r}"
            )


@contextmanager
def _translated(key: str) -> Iterator[None]:
    try:
        yield
    except S3Error as exc:
        if exc.code in _MISSING:
            raise ObjectMissing(key) from exc
        raise ObjectStoreUnavailable(f"S3 error {exc.code}: {exc.message}") from exc
    except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise ObjectStoreUnavailable(f"S3 unreachable: {type(exc).__name__}: {exc}") from exc


async def _chunks(response: urllib3.BaseHTTPResponse) -> AsyncIterator[bytes]:
    try:
        while chunk := await anyio.to_thread.run_sync(partial(response.read, CHUNK_SIZE)):
            yield chunk
    finally:
        response.close()
        response.release_conn()
