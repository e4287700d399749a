"""The object-store interface that attachments are written through, and its errors.

An object store keeps opaque blobs under keys that the application generates (`check_key`
refuses anything else, so no user input ever becomes a path or an S3 key). Writing is
all-or-nothing: `put` stages the stream, enforces the size limit while it arrives, lets the
caller vet the complete content, and only then makes the object visible under its key. A
refused or failed put leaves nothing behind.

Errors:

    ObjectStoreError            base class; `retryable` says whether trying again may help
    ├── ObjectTooLarge          the stream passed `max_size`; nothing was stored
    ├── ObjectMissing           no object under that key
    └── ObjectStoreUnavailable  the backend failed or cannot be reached (retryable)
"""

from __future__ import annotations

import abc
import re
from collections.abc import AsyncIterable, AsyncIterator, Callable
from datetime import timedelta
from typing import BinaryIO

import msgspec

CHUNK_SIZE = 64 * 1024
"""Bytes per chunk when objects are read back."""

ContentCheck = Callable[[BinaryIO], str]
"""Vets staged content before it is stored: called in a worker thread with the complete content
(a seekable file), it returns the content type to store the object under, or raises to refuse it;
the exception reaches the caller of `put` and nothing is stored."""

_KEY = re.compile(r"[a-z0-9]+(?:[/_-][a-z0-9]+)*\Z")
_MAX_KEY_LENGTH = 200


class ObjectStoreError(Exception):
    retryable = False


class ObjectTooLarge(ObjectStoreError):
    def __init__(self, max_size: int) -> None:
        super().__init__(f"the content is larger than {max_size} bytes; nothing was stored")
        self.max_size = max_size


class ObjectMissing(ObjectStoreError):
    def __init__(self, key: str) -> None:
        super().__init__(f"no object under the key {key!r}")
        self.key = key


class ObjectStoreUnavailable(ObjectStoreError):
    retryable = True


class StoredObject(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    size: int  # bytes
    sha256: str  # hex
    content_type: str


class ObjectInfo(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    size: int  # bytes


def check_key(key: str) -> str:
    """A generated key: lower-case letters and digits in `/`, `_` or `-` separated runs."""
    if len(key) > _MAX_KEY_LENGTH or not _KEY.match(key):
        raise ValueError(f"not a generated object key: {key!r}")
    return key


class ObjectStore(abc.ABC):
    """Where attachment content lives: a local folder or an S3 bucket."""

    name: str
    """The backend's name as the settings spell it (`local`, `s3`)."""

    @abc.abstractmethod
    async def prepare(self) -> None:
        """Create the folder or bucket when it is missing (called at start-up)."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise `ObjectStoreUnavailable` unless the store can be written to (readiness)."""

    @abc.abstractmethod
    async def put(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        max_size: int,
        check_content: ContentCheck | None = None,
    ) -> StoredObject:
        """Store the stream under `key`, at most `max_size` bytes, vetted by `check_content`.

        Memory use is bounded by one chunk whatever the size: the content is staged on disk.
        Raises `ObjectTooLarge` as soon as the stream passes `max_size`, or whatever
        `check_content` raises; in both cases nothing is stored.
        """

    @abc.abstractmethod
    async def stat(self, key: str) -> ObjectInfo:
        """The object's size; `ObjectMissing` when there is none."""

    @abc.abstractmethod
    async def open(self, key: str) -> AsyncIterator[bytes]:
        """Open the object now (`ObjectMissing` when there is none) and return its chunks."""

    @abc.abstractmethod
    async def download_url(
        self, key: str, *, expires: timedelta, content_type: str, disposition: str
    ) -> str | None:
        """A URL that serves the object directly to a browser until `expires` has passed, with
        the given `Content-Type` and `Content-Disposition`; None when the backend cannot hand
        out URLs (the caller streams `open(key)` instead)."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Remove the object; removing a missing object is not an error."""

    @abc.abstractmethod
    async def exists(self, key: str) -> bool: ...
