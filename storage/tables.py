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
    parent = ForeignKey("self", null=True, on_delete=OnDelete.restrict)
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


ALL_TABLES: list[type[Table]] = [
    Position,
    Department,
    Person,
    UserSession,
    ApiToken,
    AuditEntry,
    ProcessTemplate,
    TemplateVersion,
    Attachment,
]
