"""Exceptions raised by the service layer (the engine's own errors pass through unchanged).

The web layer maps them to HTTP in one place (`web.errors`); the comments give the status.
None of them is worth retrying unchanged, except `ConflictError` after reloading.

    ServiceError                   base of the package
    ├── NotFoundError              404: nothing there, or nothing the caller may see
    │   ├── InstanceNotFound
    │   ├── TaskNotFound
    │   └── TemplateNotFound       no such template, or no version in effect
    ├── TemplateHasNoFlow          422: the template's version in effect has no flow graph
    ├── FormInvalid                422: the form data fails validation (every error, with paths)
    ├── NotEditable                409: the data may change only in a draft or a returned request
    ├── ConflictError              409: someone else changed the instance first (retry after reload)
    └── IdempotencyKeyReused       422: the Idempotency-Key was used before for another request
"""

from __future__ import annotations

from collections.abc import Sequence

from forms import FieldError


class ServiceError(Exception):
    """Base of every error raised by `runtime.service`."""

    retryable = False


class NotFoundError(ServiceError):
    """The thing does not exist, or the caller may not see it (the two look the same)."""


class InstanceNotFound(NotFoundError):
    def __init__(self, instance_id: int) -> None:
        super().__init__(f"request {instance_id} does not exist or is not visible to you")
        self.instance_id = instance_id


class TaskNotFound(NotFoundError):
    def __init__(self, task_id: int | str) -> None:
        super().__init__(f"task {task_id} does not exist or is not visible to you")
        self.task_id = task_id


class TemplateNotFound(NotFoundError):
    def __init__(self, key: str) -> None:
        super().__init__(f"template {key!r} does not exist or has no version in effect")
        self.key = key


class TemplateHasNoFlow(ServiceError):
    def __init__(self, key: str, version: int) -> None:
        super().__init__(f"template {key!r} v{version} has no flow; it cannot be started")
        self.key = key
        self.version = version


class FormInvalid(ServiceError):
    """Validation failed; `errors` holds every problem with its field path."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        super().__init__(f"{len(errors)} field error(s), first: {errors[0].path}: {errors[0].message}")
        self.errors = list(errors)


class NotEditable(ServiceError):
    def __init__(self, status: str) -> None:
        super().__init__(f"the data of a {status} request cannot be changed; only drafts and returned ones")
        self.status = status


class ConflictError(ServiceError):
    """The instance changed between reading and writing (its `row_version` moved on)."""

    retryable = True

    def __init__(self, message: str = "someone else acted first; reload") -> None:
        super().__init__(message)


class IdempotencyKeyReused(ServiceError):
    def __init__(self, key: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} was already used for a different request")
        self.key = key
