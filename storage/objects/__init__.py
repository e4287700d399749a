"""Object storage for attachment content: a local folder (embedded default) or an S3 bucket.

`object_store(settings)` builds the backend the settings name; everything else talks to the
`ObjectStore` interface in `base`.
"""

from __future__ import annotations

from typing import Protocol

from storage.objects.base import (
    ContentCheck,
    ObjectInfo,
    ObjectMissing,
    ObjectStore,
    ObjectStoreError,
    ObjectStoreUnavailable,
    ObjectTooLarge,
    StoredObject,
)
from storage.objects.local import LocalObjectStore
from storage.objects.s3 import S3ObjectStore

__all__ = [
    "ContentCheck",
    "LocalObjectStore",
    "ObjectInfo",
    "ObjectMissing",
    "ObjectStore",
    "ObjectStoreError",
    "ObjectStoreUnavailable",
    "ObjectTooLarge",
    "S3ObjectStore",
    "StoreSettings",
    "StoredObject",
    "object_store",
]


class StoreSettings(Protocol):
    """The settings the factory reads (`web.settings.Settings` has them all)."""

    @property
    def storage_backend(self) -> str: ...
    @property
    def storage_path(self) -> str: ...
    @property
    def s3_endpoint(self) -> str: ...
    @property
    def s3_access_key(self) -> str: ...
    @property
    def s3_secret_key(self) -> str: ...
    @property
    def s3_bucket(self) -> str: ...
    @property
    def s3_region(self) -> str: ...
    @property
    def s3_secure(self) -> bool: ...


def object_store(settings: StoreSettings) -> ObjectStore:
    """The backend named by `storage_backend`: `local` (in `storage_path`) or `s3`."""
    if settings.storage_backend == "local":
        return LocalObjectStore(settings.storage_path)
    if settings.storage_backend == "s3":
        return S3ObjectStore(
            endpoint=settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            bucket=settings.s3_bucket,
            region=settings.s3_region,
            secure=settings.s3_secure,
        )
    raise ValueError(f"unknown storage backend {settings.storage_backend!r} (expected local or s3)")
