"""Staging an incoming stream in a temporary file: size limit, SHA-256, then vetting.

Both backends stage: the local folder renames the staged file into place (atomic on one file
system), the S3 backend sends it with a known length. Memory stays at one chunk.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import BinaryIO

import anyio
import msgspec

from storage.objects.base import ContentCheck, ObjectTooLarge

DEFAULT_CONTENT_TYPE = "application/octet-stream"


class StagedFile(msgspec.Struct, frozen=True, kw_only=True):
    path: Path
    file: BinaryIO
    size: int  # bytes
    sha256: str  # hex


@asynccontextmanager
async def staged(
    chunks: AsyncIterable[bytes], *, directory: Path, max_size: int
) -> AsyncIterator[StagedFile]:
    """Write the stream to a temporary file in `directory`, removed again on leaving the block.

    Raises `ObjectTooLarge` before writing the first byte past `max_size`. A caller that wants
    to keep the file renames it away inside the block.
    """
    fd, name = await anyio.to_thread.run_sync(
        lambda: tempfile.mkstemp(prefix="upload-", suffix=".part", dir=directory)
    )
    path = Path(name)
    try:
        with os.fdopen(fd, "w+b") as file:
            digest = hashlib.sha256()
            size = 0
            async for chunk in chunks:
                size += len(chunk)
                if size > max_size:
                    raise ObjectTooLarge(max_size)
                await anyio.to_thread.run_sync(_write, file, digest, chunk)
            await anyio.to_thread.run_sync(_flush, file)
            yield StagedFile(path=path, file=file, size=size, sha256=digest.hexdigest())
    finally:
        path.unlink(missing_ok=True)


def vet(check_content: ContentCheck | None, file: BinaryIO) -> str:
    """Run the caller's content check on the staged file (blocking; run it in a thread)."""
    if check_content is None:
        return DEFAULT_CONTENT_TYPE
    file.seek(0)
    content_type = check_content(file)
    file.seek(0)
    return content_type


def _write(file: BinaryIO, digest: hashlib._Hash, chunk: bytes) -> None:
    digest.update(chunk)
    file.write(chunk)


def _flush(file: BinaryIO) -> None:
    file.flush()
    os.fsync(file.fileno())
    file.seek(0)
