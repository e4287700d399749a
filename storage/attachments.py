"""Attachments: uploaded files, their rows, who may read them, and the removal of strays.

The life of an attachment:

    upload  content checked while it streams in (size limit, kind from the magic bytes, the
            name's extension agreeing with the kind), stored under a generated key; the row and
            its audit entry in one write transaction (the object is removed again if that fails)
    link    a draft or instance references it (`link`, inside the instance's transaction);
            from then on it is immutable
    delete  by its uploader while unlinked
    purge   unlinked uploads older than a day, by the scheduler (`purge_unreferenced`)

Deleting removes the row and the object inside one write transaction, the row only while it is
still unlinked, the object before the commit: a failure leaves both in place to retry, and an
upload linked meanwhile is never touched.

Errors (none is worth retrying; object-store failures arrive as `ObjectStoreUnavailable`):

    AttachmentError
    ├── FileTooLarge              the upload passed the policy's size limit
    ├── UnsupportedFileType       the content (or the name) is none of the allowed kinds
    ├── NameDoesNotMatchType      the name's extension belongs to another kind than the content
    ├── AttachmentNotFound
    ├── NotAllowed                the caller may not use this attachment
    │   ├── MayNotDownload
    │   └── MayNotDelete
    └── AttachmentLinked          referenced by a draft or instance, hence immutable

Each error keeps an English message template and its parameters, so the web layer can show it
in the reader's language.
"""

from __future__ import annotations

import logging
import re
import secrets
import unicodedata
from collections.abc import AsyncIterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import Any, ClassVar

import anyio
import msgspec
from piccolo.columns.combination import WhereRaw
from piccolo.engine.sqlite import SQLiteEngine

from storage import audit
from storage.access import Permission, Principal, scope_filter
from storage.database import write_transaction
from storage.filetypes import CONTENT_TYPES, EXTENSIONS, FileKind, sniff
from storage.objects import ContentCheck, ObjectStore, ObjectStoreError, ObjectTooLarge
from storage.tables import Attachment, Instance, InstanceEvent, Task

log = logging.getLogger("formflow.attachments")

MB = 1024 * 1024
MAX_NAME_LENGTH = 255
UNREFERENCED_LIFETIME = timedelta(days=1)
PURGE_ACTOR = audit.Actor(name="formflow scheduler")

_UID = re.compile(r"[0-9a-f]{32}\Z")
_WHITESPACE = re.compile(r"\s+")
_PATH_SEPARATORS = re.compile(r"[/\\]")


class UploadPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """What a file field accepts; the form's attachment field will carry its own."""

    max_size: int = 10 * MB  # bytes
    kinds: frozenset[FileKind] = frozenset(FileKind)


DEFAULT_POLICY = UploadPolicy()


class AttachmentInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    uid: str
    uploader_id: int
    name: str
    size: int  # bytes
    content_type: str
    sha256: str
    object_key: str
    sensitive: bool
    instance_id: int | None
    created_at: datetime
    linked_at: datetime | None

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")

    @property
    def linked(self) -> bool:
        return self.instance_id is not None


class AttachmentError(Exception):
    template: ClassVar[str] = "attachment error"

    def __init__(self, **params: Any) -> None:
        self.params = params
        super().__init__(self.template.format(**params))


class FileTooLarge(AttachmentError):
    template = "The file is larger than {limit_mb} MB; nothing was stored."

    def __init__(self, max_size: int) -> None:
        super().__init__(limit_mb=f"{max_size / MB:g}")


class UnsupportedFileType(AttachmentError):
    template = "Only these kinds of file are accepted: {allowed}. The content of this file is none of them."

    def __init__(self, kinds: frozenset[FileKind]) -> None:
        super().__init__(allowed=_describe(kinds))


class NameDoesNotMatchType(AttachmentError):
    template = "The name {name} does not fit the file's content, which is {kind}: name it *{extensions}."

    def __init__(self, name: str, kind: FileKind) -> None:
        super().__init__(name=name, kind=kind.name, extensions=" or *".join(sorted(EXTENSIONS[kind])))


class AttachmentNotFound(AttachmentError):
    template = "Attachment {uid} does not exist."

    def __init__(self, uid: str) -> None:
        super().__init__(uid=uid[:64])


class NotAllowed(AttachmentError):
    template = "You may not use this attachment."


class MayNotDownload(NotAllowed):
    template = "You may not download this attachment."


class MayNotDelete(NotAllowed):
    template = "You may not delete this attachment."


class AttachmentLinked(AttachmentError):
    template = "Attachment {uid} belongs to a request and can no longer be changed."

    def __init__(self, uid: str) -> None:
        super().__init__(uid=uid)


def normalise_name(raw: str) -> str:
    """The uploader's file name made safe to show: the last path part only, NFC, whitespace runs
    as one space, no control or format characters (no right-to-left override), no leading dots,
    at most 255 characters (the extension kept)."""
    name = _PATH_SEPARATORS.split(unicodedata.normalize("NFC", raw))[-1]
    name = _WHITESPACE.sub(" ", name)
    name = "".join(c for c in name if unicodedata.category(c) not in {"Cc", "Cf"})
    name = name.strip().lstrip(".").rstrip(". ").strip()
    if len(name) > MAX_NAME_LENGTH:
        suffix = PurePosixPath(name).suffix
        suffix = suffix if len(suffix) <= 16 else ""
        name = name[: MAX_NAME_LENGTH - len(suffix)].rstrip() + suffix
    return name


def new_object_key(now: datetime) -> str:
    """`att/<year>/<month>/<32 random hex digits>`: never derived from the uploader's input."""
    return f"att/{now:%Y}/{now:%m}/{secrets.token_hex(16)}"


async def upload(
    store: ObjectStore,
    chunks: AsyncIterable[bytes],
    *,
    filename: str,
    actor: audit.Actor,
    policy: UploadPolicy = DEFAULT_POLICY,
    now: datetime | None = None,
) -> AttachmentInfo:
    """Store one uploaded file for `actor` (the uploader) and record it."""
    if actor.id is None:
        raise ValueError("an upload needs a signed-in uploader")
    now = now or datetime.now(UTC)
    name = normalise_name(filename)
    if _extension(name) not in _allowed_extensions(policy.kinds):
        raise UnsupportedFileType(policy.kinds)
    key = new_object_key(now)
    try:
        stored = await store.put(
            key, chunks, max_size=policy.max_size, check_content=_content_check(name, policy.kinds)
        )
    except ObjectTooLarge as exc:
        raise FileTooLarge(policy.max_size) from exc
    uid = secrets.token_hex(16)
    row = Attachment(
        uid=uid,
        uploader=actor.id,
        name=name,
        size=stored.size,
        content_type=stored.content_type,
        sha256=stored.sha256,
        object_key=key,
        created_at=now,
    )
    try:
        async with write_transaction(Attachment._meta.db):
            await Attachment.insert(row)
            await audit.record(
                "attachment.uploaded",
                actor,
                target_type="attachment",
                target_id=uid,
                after=_view(row),
                now=now,
            )
    except BaseException:
        with anyio.CancelScope(shield=True):
            await _discard(store, key)
        raise
    return await get(uid)


async def get(uid: str) -> AttachmentInfo:
    if not _UID.match(uid):
        raise AttachmentNotFound(uid)
    row = await Attachment.select().where(Attachment.uid == uid).first()
    if row is None:
        raise AttachmentNotFound(uid)
    return _info(row)


async def may_read(principal: Principal, attachment: AttachmentInfo) -> bool:
    """Whether `principal` may download `attachment`: its uploader, process or system admins,
    and the people who may see the request it is linked to, unless the file sits only in
    fields hidden from them.

    Seeing a request is the rule of `runtime.service.visibility` (kept in step with it, as
    storage may not import the runtime): the `process.view` scope reaches the request, the
    person holds or held a task on it, or a copy step (抄送) named them; drafts only for their
    initiator. Hidden fields follow `runtime.service.detail`: an approver reads through the
    field permissions of the approval step they act at, or else of the latest one they were
    given; a file found only under fields hidden there is not theirs to read.
    """
    if attachment.uploader_id == principal.id or principal.is_admin():
        return True
    if attachment.instance_id is None:
        return False
    where = (Instance.id == attachment.instance_id) & (
        (Instance.status != "draft") | (Instance.initiator == principal.id)
    )
    scoped = scope_filter(principal, Permission.PROCESS_VIEW, Instance.initiator, Instance.department_id)
    if scoped is not None:
        involved = Instance.id.is_in(Task.select(Task.instance).where(Task.assignee == principal.id))
        where = where & (scoped | involved | Instance.id.is_in(_copies_of(principal.id)))
    row = await (
        Instance.select(Instance.initiator, Instance.data, Instance.template_version._.flow.as_alias("flow"))
        .where(where)
        .first()
    )
    if row is None:
        return False
    if row["initiator"] == principal.id:
        return True
    hidden = await _hidden_fields(principal.id, attachment.instance_id, _json(row["flow"]))
    return not hidden or not _only_under(attachment.uid, _json(row["data"]), hidden)


def _copies_of(person_id: int) -> Any:
    """The instances whose `cc_sent` events list `person_id` (`runtime.service.visibility.copies_of`)."""
    if isinstance(InstanceEvent._meta.db, SQLiteEngine):
        listed = WhereRaw(
            'EXISTS (SELECT 1 FROM json_each("instance_event"."data", \'$.recipients\') AS r'
            " WHERE r.value = {})",
            person_id,
        )
    else:
        listed = WhereRaw(
            '("instance_event"."data"::jsonb -> \'recipients\') @> jsonb_build_array({}::integer)',
            person_id,
        )
    return InstanceEvent.select(InstanceEvent.instance).where((InstanceEvent.kind == "cc_sent") & listed)


async def _hidden_fields(person_id: int, instance_id: int, flow: Any) -> _Hidden:
    """The field permissions of the approval step (or a plugin step's config, such as the finance
    co-review's) that masks the request for `person_id`: the first open task's step, else the
    latest step they were given (empty when none hides)."""
    nodes = {
        node.get("id"): node if node.get("type") == "approval" else (node.get("config") or {})
        for node in (flow.get("nodes") if isinstance(flow, dict) else None) or []
        if isinstance(node, dict) and node.get("type") in ("approval", "plugin")
    }
    tasks = await (
        Task.select(Task.node_id, Task.status)
        .where((Task.instance == instance_id) & (Task.assignee == person_id))
        .order_by(Task.id)
    )
    ordered = [t["node_id"] for t in tasks if t["status"] == "open"] + [
        t["node_id"] for t in reversed(tasks) if t["status"] != "open"
    ]
    for node_id in ordered:
        if node_id in nodes:
            permissions = nodes[node_id].get("field_permissions") or {}
            return _Hidden(permissions if isinstance(permissions, dict) else {})
    return _Hidden({})


class _Hidden:
    """A step's field permissions read for hiding only (`forms.permissions.PermissionMask`):
    `{"budget": "hidden", "lines.note": "hidden"}`; a hidden table hides its columns."""

    def __init__(self, permissions: dict[str, Any]) -> None:
        self.permissions = permissions

    def __bool__(self) -> bool:
        return "hidden" in self.permissions.values()

    def hides(self, key: str) -> bool:
        table, dot, _column = key.partition(".")
        if dot and self.permissions.get(table) == "hidden":
            return True
        return self.permissions.get(key) == "hidden"


def _only_under(uid: str, data: Any, hidden: _Hidden) -> bool:
    """Whether every place of the form data that names the file is hidden (False when none does:
    the file then belongs to the request's records, such as a progress report's photos)."""
    places = [path for path, value in _file_places(data) if value == uid]
    return bool(places) and all(hidden.hides(path) for path in places)


def _file_places(data: Any) -> list[tuple[str, str]]:
    """(field key or "table.column", file id) for every file the form data names."""
    found: list[tuple[str, str]] = []
    for key, value in data.items() if isinstance(data, dict) else []:
        for item in value if isinstance(value, list) else []:
            if not isinstance(item, dict):
                continue
            if isinstance(item.get("id"), str):
                found.append((key, item["id"]))
                continue
            for column, cell in item.items():  # a detail-table row
                found += [(f"{key}.{column}", uid) for _k, uid in _file_places({column: cell})]
    return found


def _json(value: Any) -> Any:
    return msgspec.json.decode(value) if isinstance(value, str | bytes) else value


async def readable(principal: Principal, uid: str) -> AttachmentInfo:
    """The attachment, after `may_read` (`MayNotDownload` otherwise)."""
    attachment = await get(uid)
    if not await may_read(principal, attachment):
        raise MayNotDownload()
    return attachment


async def record_download(
    attachment: AttachmentInfo, actor: audit.Actor, *, via: str, now: datetime | None = None
) -> None:
    """Audit a download; `via` is `redirect` (a presigned URL) or `stream`."""
    async with write_transaction(Attachment._meta.db):
        await audit.record(
            "attachment.downloaded",
            actor,
            target_type="attachment",
            target_id=attachment.uid,
            after={"name": attachment.name, "via": via},
            now=now,
        )


async def delete(store: ObjectStore, uid: str, *, actor: audit.Actor, now: datetime | None = None) -> None:
    """Delete an upload on its uploader's (`actor`) request, while no request references it."""
    attachment = await get(uid)
    if attachment.uploader_id != actor.id:
        raise MayNotDelete()
    if attachment.linked:
        raise AttachmentLinked(uid)
    await _remove_unlinked(store, attachment, actor, "attachment.deleted", now or datetime.now(UTC))


async def link(uids: Sequence[str], *, instance_id: int, owner_id: int, now: datetime) -> None:
    """Reference the uploads from a draft or instance; call inside that write transaction.

    Each must be an upload of `owner_id` that is unlinked, or already linked to this instance
    (linking again is harmless). Raises `AttachmentNotFound` or `AttachmentLinked` otherwise.
    """
    wanted = sorted(set(uids))
    if not wanted:
        return
    rows = await Attachment.select(Attachment.uid, Attachment.uploader, Attachment.instance_id).where(
        Attachment.uid.is_in(wanted)
    )
    found = {row["uid"]: row for row in rows}
    for uid in wanted:
        row = found.get(uid)
        if row is None or row["uploader"] != owner_id:
            raise AttachmentNotFound(uid)
        if row["instance_id"] not in (None, instance_id):
            raise AttachmentLinked(uid)
    unlinked = [uid for uid in wanted if found[uid]["instance_id"] is None]
    if not unlinked:
        return
    updated = (
        await Attachment.update({Attachment.instance_id: instance_id, Attachment.linked_at: now})
        .where(Attachment.uid.is_in(unlinked) & Attachment.instance_id.is_null())
        .returning(Attachment.uid)
    )
    if missing := set(unlinked) - {row["uid"] for row in updated}:
        raise AttachmentNotFound(min(missing))  # deleted or purged meanwhile


async def purge_unreferenced(
    store: ObjectStore, now: datetime, *, older_than: timedelta = UNREFERENCED_LIFETIME, batch: int = 200
) -> int:
    """Remove unlinked uploads created before `now - older_than`; returns how many went.

    A periodic job: register `functools.partial(purge_unreferenced, store)` with the scheduler.
    """
    rows = (
        await Attachment.select()
        .where(Attachment.instance_id.is_null() & (Attachment.created_at < now - older_than))
        .order_by(Attachment.id)
        .limit(batch)
    )
    purged = 0
    for row in rows:
        try:
            await _remove_unlinked(store, _info(row), PURGE_ACTOR, "attachment.purged", now)
        except AttachmentLinked:
            continue  # linked since the query: it stays
        purged += 1
    if purged:
        log.info("purged %d unreferenced attachments", purged)
    return purged


async def _remove_unlinked(
    store: ObjectStore, attachment: AttachmentInfo, actor: audit.Actor, action: str, now: datetime
) -> None:
    async with write_transaction(Attachment._meta.db):
        gone = (
            await Attachment.delete()
            .where((Attachment.id == attachment.id) & Attachment.instance_id.is_null())
            .returning(Attachment.id)
        )
        if not gone:
            raise AttachmentLinked(attachment.uid)
        await store.delete(attachment.object_key)
        await audit.record(
            action,
            actor,
            target_type="attachment",
            target_id=attachment.uid,
            before=_view(attachment),
            now=now,
        )


def _content_check(name: str, kinds: frozenset[FileKind]) -> ContentCheck:
    def check(file: Any) -> str:
        kind = sniff(file)
        if kind is None or kind not in kinds:
            raise UnsupportedFileType(kinds)
        if _extension(name) not in EXTENSIONS[kind]:
            raise NameDoesNotMatchType(name, kind)
        return CONTENT_TYPES[kind]

    return check


async def _discard(store: ObjectStore, key: str) -> None:
    try:
        await store.delete(key)
    except ObjectStoreError:
        log.exception("could not remove the object %s of a failed upload; it is an orphan now", key)


def _extension(name: str) -> str:
    return PurePosixPath(name).suffix.lower()


def _allowed_extensions(kinds: frozenset[FileKind]) -> frozenset[str]:
    return frozenset().union(*(EXTENSIONS[kind] for kind in kinds))


def _describe(kinds: frozenset[FileKind]) -> str:
    return ", ".join(kind.name for kind in FileKind if kind in kinds)


def _view(attachment: Attachment | AttachmentInfo) -> dict[str, Any]:
    return {
        "name": attachment.name,
        "size": attachment.size,
        "content_type": attachment.content_type,
        "sha256": attachment.sha256,
    }


def _info(row: dict[str, Any]) -> AttachmentInfo:
    return AttachmentInfo(
        id=row["id"],
        uid=row["uid"],
        uploader_id=row["uploader"],
        name=row["name"],
        size=row["size"],
        content_type=row["content_type"],
        sha256=row["sha256"],
        object_key=row["object_key"],
        sensitive=row["sensitive"],
        instance_id=row["instance_id"],
        created_at=row["created_at"],
        linked_at=row["linked_at"],
    )
