"""The local-folder object store: the embedded default.

Objects live at `<root>/<key>`; keys are generated (`check_key`), so a path never comes from
user input. Uploads are staged in `<root>/.staging` (the same file system) and renamed into
place after an fsync, so an object is either complete or absent. Staged files older than a day
are leftovers of a crash and are removed by `prepare`.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterable, AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

import anyio

from storage.objects._staging import staged, vet
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

STAGING = ".staging"
_STALE_SECONDS = 24 * 3600


class LocalObjectStore(ObjectStore):
    name = "local"

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.staging = self.root / STAGING

    async def prepare(self) -> None:
        try:
            await anyio.to_thread.run_sync(self._prepare)
        except OSError as exc:
            raise ObjectStoreUnavailable(f"cannot prepare {self.root}: {exc}") from exc

    async def ping(self) -> None:
        try:
            await anyio.to_thread.run_sync(self._probe)
        except OSError as exc:
            raise ObjectStoreUnavailable(f"cannot write to {self.root}: {exc}") from exc

    async def put(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        max_size: int,
        check_content: ContentCheck | None = None,
    ) -> StoredObject:
        target = self._path(key)
        async with staged(chunks, directory=self.staging, max_size=max_size) as upload:
            content_type = await anyio.to_thread.run_sync(vet, check_content, upload.file)
            await anyio.to_thread.run_sync(_publish, upload.path, target)
        return StoredObject(key=key, size=upload.size, sha256=upload.sha256, content_type=content_type)

    async def stat(self, key: str) -> ObjectInfo:
        try:
            size = (await anyio.to_thread.run_sync(self._path(key).stat)).st_size
        except FileNotFoundError as exc:
            raise ObjectMissing(key) from exc
        return ObjectInfo(key=key, size=size)

    async def open(self, key: str) -> AsyncIterator[bytes]:
        try:
            file = await anyio.to_thread.run_sync(self._path(key).open, "rb")
        except FileNotFoundError as exc:
            raise ObjectMissing(key) from exc
        return _chunks(file)

    async def download_url(
        self, key: str, *, expires: timedelta, content_type: str, disposition: str
    ) -> str | None:
        return None

    async def delete(self, key: str) -> None:
        await anyio.to_thread.run_sync(lambda: self._path(key).unlink(missing_ok=True))

    async def exists(self, key: str) -> bool:
        return await anyio.to_thread.run_sync(self._path(key).is_file)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _prepare(self) -> None:
        self.staging.mkdir(parents=True, exist_ok=True)
        cutoff = time.time() - _STALE_SECONDS
        for leftover in self.staging.iterdir():
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink(missing_ok=True)

    def _probe(self) -> None:
        self.staging.mkdir(parents=True, exist_ok=True)
        probe = self.staging / f"ready-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()


def _publish(staged_path: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged_path, target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


async def _chunks(file: BinaryIO) -> AsyncIterator[bytes]:
    try:
        while chunk := await anyio.to_thread.run_sync(file.read, CHUNK_SIZE):
            yield chunk
    finally:
        file.close()
