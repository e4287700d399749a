"""Piccolo tables for the organisation, sign-in and the audit trail.

Invariants:
- `Department.head_id` / `leader_id` and `Person.manager_id` are person ids kept as plain
  integers: the organisation refers to itself in a cycle (a department's head belongs to a
  department) that foreign keys on both engines cannot express without deferred constraints.
  `storage.org` checks them on every write.
- Roles are bound to positions (`Position.roles`), never to people: a person who moves to
  another position loses the old position's rights at once. Heading or supervising a
  department adds the department-head / supervising-leader role.
- `AuditEntry` rows are only ever inserted (see `storage.audit`).
- Every timestamp is UTC.
"""

from __future__ import annotations

from piccolo.columns import (
    JSON,
    BigInt,
    Boolean,
    ForeignKey,
    Integer,
    OnDelete,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table


class Position(Table, tablename="position"):
    id = Serial(primary_key=True)
    code = Varchar(length=64, unique=True)
    name_zh = Varchar(length=100)
    name_en = Varchar(length=100)
    roles = JSON(default=[])


class Department(Table, tablename="department"):
    id = Serial(primary_key=True)
    code = Varchar(length=64, unique=True)
    name_zh = Varchar(length=100)
    name_en = Varchar(length=100)
    parent: ForeignKey = ForeignKey("self", null=True, on_delete=OnDelete.restrict)
    head_id = Integer(null=True, default=None)
    leader_id = Integer(null=True, default=None)
    created_at = Timestamptz()


class Person(Table, tablename="person"):
    id = Serial(primary_key=True)
    employee_no = Varchar(length=32, unique=True, index=True)
    name = Varchar(length=100)
    email = Varchar(length=254, default="")
    phone = Varchar(length=32, default="")
    department = ForeignKey(Department, null=True, on_delete=OnDelete.restrict)
    position = ForeignKey(Position, null=True, on_delete=OnDelete.restrict)
    manager_id = Integer(null=True, default=None)
    active = Boolean(default=True)
    password_hash = Varchar(length=255, default="")
    failed_logins = Integer(default=0)
    locked_until = Timestamptz(null=True, default=None)
    last_login_at = Timestamptz(null=True, default=None)
    locale = Varchar(length=8, default="zh-CN")
    created_at = Timestamptz()


class UserSession(Table, tablename="user_session"):
    """A signed-in browser. The cookie carries a random token; only its SHA-256 is stored."""

    id = Serial(primary_key=True)
    token_hash = Varchar(length=64, unique=True, index=True)
    person = ForeignKey(Person, on_delete=OnDelete.cascade)
    created_at = Timestamptz()
    expires_at = Timestamptz()
    last_seen_at = Timestamptz()
    ip = Varchar(length=64, default="")
    user_agent = Varchar(length=300, default="")


class ApiToken(Table, tablename="api_token"):
    """A personal access token for integrations (`Authorization: Bearer`); stored hashed."""

    id = Serial(primary_key=True)
    person = ForeignKey(Person, on_delete=OnDelete.cascade)
    name = Varchar(length=100)
    token_hash = Varchar(length=64, unique=True, index=True)
    prefix = Varchar(length=12)
    created_at = Timestamptz()
    last_used_at = Timestamptz(null=True, default=None)
    expires_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)


class AuditEntry(Table, tablename="audit_entry"):
    """One audited action. `hash` = SHA-256 over `prev_hash` and the canonical entry."""

    id = Serial(primary_key=True)
    at = Timestamptz(index=True)
    actor_id = Integer(null=True, default=None)
    actor_name = Varchar(length=100, default="")
    action = Varchar(length=64, index=True)
    target_type = Varchar(length=64, default="")
    target_id = Varchar(length=64, default="")
    ip = Varchar(length=64, default="", index=True)
    request_id = Varchar(length=64, default="")
    before = JSON(null=True, default=None)
    after = JSON(null=True, default=None)
    prev_hash = Varchar(length=64)
    hash = Varchar(length=64, unique=True)


class ProcessTemplate(Table, tablename="process_template"):
    """A process template (流程模板): a stable key, a category, and its versions."""

    id = Serial(primary_key=True)
    key = Varchar(length=64, unique=True, index=True)
    category = Varchar(length=64, default="general")
    name_zh = Varchar(length=100)
    name_en = Varchar(length=100)
    description_zh = Text(default="")
    description_en = Text(default="")
    created_at = Timestamptz()


class TemplateVersion(Table, tablename="template_version"):
    """One immutable published version of a template: its form schema and flow graph as JSON.

    Instances pin the version they started on; a new version never changes running requests.
    """

    id = Serial(primary_key=True)
    template = ForeignKey(ProcessTemplate, on_delete=OnDelete.restrict, index=True)
    version = Integer()
    form = JSON()
    flow = JSON(null=True, default=None)
    change_note = Text(default="")
    effective_from = Timestamptz()
    published_at = Timestamptz()
    published_by = Integer(null=True, default=None)


class TemplateDraft(Table, tablename="template_draft"):
    """The design in progress of a template (one per template key), saved on every change.

    `form` and `flow` hold the designer's JSON as it stands, problems and all; publishing turns
    a clean draft into a new `TemplateVersion`. `revision` is the current entry of the draft's
    `TemplateDraftRevision` history (undo moves it back, redo forward); `row_version` guards
    against two designers overwriting each other.
    """

    id = Serial(primary_key=True)
    key = Varchar(length=64, unique=True)
    category = Varchar(length=64, default="general")
    name_zh = Varchar(length=100)
    name_en = Varchar(length=100, default="")
    description_zh = Text(default="")
    description_en = Text(default="")
    form = JSON()
    flow = JSON(null=True, default=None)
    revision = Integer(default=1)
    row_version = Integer(default=1)
    updated_at = Timestamptz()
    updated_by = Integer(null=True, default=None)


class TemplateDraftRevision(Table, tablename="template_draft_revision"):
    """One saved state of a draft, for undo and redo (the newest 100 are kept)."""

    id = Serial(primary_key=True)
    draft = ForeignKey(TemplateDraft, on_delete=OnDelete.cascade, index=True)
    revision = Integer()
    form = JSON()
    flow = JSON(null=True, default=None)
    label = Varchar(length=200, default="")
    created_at = Timestamptz()
    created_by = Integer(null=True, default=None)


class Attachment(Table, tablename="attachment"):
    """An uploaded file. The object key is generated, never the uploader's file name.

    It belongs to its uploader until a draft or instance references it (`instance_id`); a
    referenced attachment is immutable. Unreferenced uploads are removed after a day.
    """

    id = Serial(primary_key=True)
    uid = Varchar(length=32, unique=True, index=True)
    uploader = ForeignKey(Person, on_delete=OnDelete.restrict)
    name = Varchar(length=255)
    size = BigInt()
    content_type = Varchar(length=100)
    sha256 = Varchar(length=64)
    object_key = Varchar(length=200, unique=True)
    sensitive = Boolean(default=False)
    instance_id = Integer(null=True, default=None, index=True)
    created_at = Timestamptz()
    linked_at = Timestamptz(null=True, default=None)


class Instance(Table, tablename="instance"):
    """A live request: its data, the engine's state, and columns copied out of them for lists.

    `row_version` is the optimistic lock: every command updates the row with
    `WHERE id = ? AND row_version = ?`; zero rows updated means someone else acted first.
    """

    id = Serial(primary_key=True)
    number = Varchar(length=20, unique=True)
    template_key = Varchar(length=64, index=True)
    template_version = ForeignKey(TemplateVersion, on_delete=OnDelete.restrict)
    version = Integer()
    initiator = ForeignKey(Person, on_delete=OnDelete.restrict, index=True)
    department_id = Integer(null=True, default=None, index=True)
    title = Varchar(length=200, default="")
    status = Varchar(length=32, index=True)
    urgent = Boolean(default=False)
    data = JSON()
    state = JSON()
    row_version = Integer(default=0)
    current_step = Varchar(length=200, default="")
    created_at = Timestamptz()
    submitted_at = Timestamptz(null=True, default=None)
    updated_at = Timestamptz()
    closed_at = Timestamptz(null=True, default=None)


class InstanceCounter(Table, tablename="instance_counter"):
    """The per-month sequence behind instance numbers like FL202406001."""

    id = Serial(primary_key=True)
    month = Varchar(length=6, unique=True)
    last = Integer(default=0)


class InstanceEvent(Table, tablename="instance_event"):
    """The append-only event log of an instance: the timeline, analytics and replay read it."""

    id = Serial(primary_key=True)
    instance = ForeignKey(Instance, on_delete=OnDelete.restrict, index=True)
    seq = Integer()
    at = Timestamptz()
    actor_id = Integer(null=True, default=None)
    kind = Varchar(length=48)
    node_id = Varchar(length=64, null=True, default=None)
    task_key = Varchar(length=120, null=True, default=None)
    data = JSON(default={})


class Task(Table, tablename="task"):
    """A task as the inbox sees it; the engine's state stays the source of truth."""

    id = Serial(primary_key=True)
    task_key = Varchar(length=120, unique=True)
    instance = ForeignKey(Instance, on_delete=OnDelete.restrict, index=True)
    node_id = Varchar(length=64)
    kind = Varchar(length=16)
    title = Varchar(length=200, default="")
    assignee = ForeignKey(Person, on_delete=OnDelete.restrict, index=True)
    status = Varchar(length=16, default="open", index=True)
    outcome = Varchar(length=32, null=True, default=None)
    reason = JSON(default={})
    created_at = Timestamptz()
    due_at = Timestamptz(null=True, default=None, index=True)
    closed_at = Timestamptz(null=True, default=None)
    closed_by = Integer(null=True, default=None)


class Timer(Table, tablename="timer"):
    """A deadline, reminder or wait: a row claimed by the scheduler when due, never a sleep."""

    id = Serial(primary_key=True)
    timer_key = Varchar(length=160, unique=True)
    instance = ForeignKey(Instance, on_delete=OnDelete.restrict, index=True)
    kind = Varchar(length=32)
    task_key = Varchar(length=120, null=True, default=None)
    node_id = Varchar(length=64, null=True, default=None)
    due_at = Timestamptz(index=True)
    status = Varchar(length=16, default="pending", index=True)
    fired_at = Timestamptz(null=True, default=None)


class OutboxMessage(Table, tablename="outbox_message"):
    """A message for a dramatiq actor, written in the transaction of the change that causes it."""

    id = Serial(primary_key=True)
    key = Varchar(length=200, unique=True)
    actor = Varchar(length=64)
    payload = JSON()
    status = Varchar(length=16, default="pending", index=True)
    attempts = Integer(default=0)
    next_attempt_at = Timestamptz(index=True)
    last_error = Text(default="")
    created_at = Timestamptz()
    sent_at = Timestamptz(null=True, default=None)


class Incident(Table, tablename="incident"):
    """Work that failed for good (retries exhausted): visible to admins, who can retry it."""

    id = Serial(primary_key=True)
    created_at = Timestamptz()
    source = Varchar(length=64)
    key = Varchar(length=200, index=True)
    message = Text()
    payload = JSON(default={})
    resolved_at = Timestamptz(null=True, default=None)
    resolved_by = Integer(null=True, default=None)


class Notification(Table, tablename="notification"):
    """An in-app message; delivered at most once per key."""

    id = Serial(primary_key=True)
    key = Varchar(length=200, unique=True)
    person = ForeignKey(Person, on_delete=OnDelete.cascade, index=True)
    kind = Varchar(length=48)
    title = Varchar(length=200)
    body = Text(default="")
    link = Varchar(length=300, default="")
    created_at = Timestamptz()
    read_at = Timestamptz(null=True, default=None)


class IdempotencyRecord(Table, tablename="idempotency_record"):
    """The first response to an API action sent with an `Idempotency-Key` header.

    `scope_key` is "<person id>:<key>", so one person's key never replays another's response.
    `fingerprint` is the SHA-256 of the request (method, path, body): the same key on a
    different request is refused. Written in the transaction of the action it answers.
    """

    id = Serial(primary_key=True)
    scope_key = Varchar(length=240, unique=True)
    person_id = Integer()
    fingerprint = Varchar(length=64)
    status_code = Integer()
    body = JSON()
    created_at = Timestamptz(index=True)


ALL_TABLES: list[type[Table]] = [
    Position,
    Department,
    Person,
    UserSession,
    ApiToken,
    AuditEntry,
    ProcessTemplate,
    TemplateVersion,
    TemplateDraft,
    TemplateDraftRevision,
    Attachment,
    Instance,
    InstanceCounter,
    InstanceEvent,
    Task,
    Timer,
    OutboxMessage,
    Incident,
    Notification,
    IdempotencyRecord,
]
