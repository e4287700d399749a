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
    Date,
    DoublePrecision,
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


class PermissionReview(Table, tablename="permission_review"):
    """A quarterly review of who may do what (权限复核).

    `snapshot` is everyone's department, position, roles and standing when the review began
    (person id -> facts); the next review compares against it to list role changes and moves.
    """

    id = Serial(primary_key=True)
    started_at = Timestamptz()
    started_by = Integer(null=True, default=None)
    completed_at = Timestamptz(null=True, default=None)
    completed_by = Integer(null=True, default=None)
    snapshot = JSON(default={})


class PermissionReviewItem(Table, tablename="permission_review_item"):
    """One finding of a review about one person, decided kept or revoked by the reviewer."""

    id = Serial(primary_key=True)
    review = ForeignKey(PermissionReview, on_delete=OnDelete.cascade, index=True)
    person = ForeignKey(Person, on_delete=OnDelete.cascade)
    kind = Varchar(length=32)
    detail = JSON(default={})
    decision = Varchar(length=16, default="")
    decided_by = Integer(null=True, default=None)
    decided_at = Timestamptz(null=True, default=None)


class Suggestion(Table, tablename="suggestion"):
    """An optimization suggestion (流程优化建议) against a template and, optionally, one of its steps.

    `status`: open -> accepted -> done, or open -> rejected; `implemented_version` names the
    template version that put an accepted suggestion into effect.
    """

    id = Serial(primary_key=True)
    template_key = Varchar(length=64, index=True)
    node_id = Varchar(length=64, default="")
    problem = Text()
    suggestion = Text()
    expected_effect = Text(default="")
    status = Varchar(length=16, default="open", index=True)
    created_by = ForeignKey(Person, on_delete=OnDelete.restrict, index=True)
    created_at = Timestamptz()
    decided_by = Integer(null=True, default=None)
    decided_at = Timestamptz(null=True, default=None)
    decision_note = Text(default="")
    implemented_version = Integer(null=True, default=None)


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


class PasskeyCredential(Table, tablename="passkey_credential"):
    """A WebAuthn passkey a person registered: the public key only, never biometric data.

    `sign_count` is the authenticator's counter from the last accepted assertion; an
    assertion that does not raise it (when either side counts) is refused as a replay. A
    revoked passkey stays listed (`revoked_at`) and never signs anyone in again.
    """

    id = Serial(primary_key=True)
    person = ForeignKey(Person, on_delete=OnDelete.cascade, index=True)
    credential_id = Varchar(length=1400, unique=True)
    public_key = Text()
    sign_count = BigInt(default=0)
    transports = JSON(default=[])
    name = Varchar(length=100)
    backed_up = Boolean(default=False)
    created_at = Timestamptz()
    last_used_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)


class SignInChallenge(Table, tablename="sign_in_challenge"):
    """A pending sign-in ceremony: an SSO redirect (state, nonce, PKCE verifier) or a passkey challenge.

    `binding` is the SHA-256 of the browser's pre-sign-in cookie (or of its session token when a
    signed-in person registers a passkey): a ceremony only completes in the browser that began
    it. Each row is used once (deleted when answered) and refused after `expires_at`.
    """

    id = Serial(primary_key=True)
    key = Varchar(length=64, unique=True)
    purpose = Varchar(length=32)
    binding = Varchar(length=64, index=True)
    person_id = Integer(null=True, default=None)
    data = JSON(default={})
    created_at = Timestamptz()
    expires_at = Timestamptz(index=True)


class SsoSession(Table, tablename="sso_session"):
    """The identity provider behind a session signed in through SSO, for RP-initiated logout."""

    id = Serial(primary_key=True)
    session = ForeignKey(UserSession, on_delete=OnDelete.cascade, unique=True)
    provider = Varchar(length=64)
    id_token = Text(default="")
    created_at = Timestamptz()


class TaskStat(Table, tablename="task_stat"):
    """A closed task of a submitted request as analytics reads it: the insight rollup's row.

    Written once per task by `runtime.service.insight_rollup` (upsert by `task_id`, so a second
    run or a second scheduler writes nothing twice). `working_hours` is the business calendar's
    duration, set only for decided tasks; `has_due`, `late`, `returned` and `rejected` are 0/1
    so they sum. `remaining_hours` (working hours from this last visit of the step to the
    request's closing) is set once the request finished. Request columns are copied in so the
    viewer's scope and the filters apply without a join.
    """

    id = Serial(primary_key=True)
    task_id = Integer(unique=True)
    instance_id = Integer(index=True)
    template_key = Varchar(length=64)
    node_id = Varchar(length=64)
    step = Varchar(length=200, default="")
    department_id = Integer(null=True, default=None)
    initiator_id = Integer()
    submitted_at = Timestamptz()
    created_at = Timestamptz()
    closed_at = Timestamptz()
    outcome = Varchar(length=32, null=True, default=None)
    working_hours = DoublePrecision(null=True, default=None)
    has_due = Integer(default=0)
    late = Integer(default=0)
    returned = Integer(default=0)
    rejected = Integer(default=0)
    closed_week = Date()
    remaining_hours = DoublePrecision(null=True, default=None)


class RequestStat(Table, tablename="request_stat"):
    """A closed request as analytics reads it: the insight rollup's row, one per request.

    `working_hours` runs from submission to closing and is set for finished requests (archived
    or rejected); `returns`, `rejections` and `resubmissions` are counted from the event log;
    `overdue` is 1 when any of its tasks was decided after its deadline. Weeks are the local
    Mondays that start them. `budget` (the first budget field of the form) and `actual_spend`
    (of its last summary report) are decimal text; `deviation` is their difference, for
    ordering; `budget_roles` is None unless the budget field is sensitive, then the roles that
    may read it (comma-separated; the initiator always may).
    """

    id = Serial(primary_key=True)
    instance_id = Integer(unique=True)
    number = Varchar(length=20)
    title = Varchar(length=200, default="")
    template_key = Varchar(length=64, index=True)
    department_id = Integer(null=True, default=None)
    initiator_id = Integer()
    status = Varchar(length=32)
    submitted_at = Timestamptz()
    closed_at = Timestamptz()
    working_hours = DoublePrecision(null=True, default=None)
    returns = Integer(default=0)
    rejections = Integer(default=0)
    resubmissions = Integer(default=0)
    overdue = Integer(default=0)
    submitted_week = Date()
    closed_week = Date()
    budget = Varchar(length=40, null=True, default=None)
    actual_spend = Varchar(length=40, null=True, default=None)
    deviation = DoublePrecision(null=True, default=None)
    budget_roles = Varchar(length=400, null=True, default=None)


class StepEstimate(Table, tablename="step_estimate"):
    """How long requests of a template usually still take once they enter a step (working hours).

    The median of `task_stat.remaining_hours` over every finished request, refreshed by the
    insight rollup; monitoring reads it to show when a request in flight is expected to close.
    """

    id = Serial(primary_key=True)
    template_key = Varchar(length=64)
    node_id = Varchar(length=64)
    median_hours = DoublePrecision()
    samples = Integer()
    computed_at = Timestamptz()


class InsightMark(Table, tablename="insight_mark"):
    """How far the insight rollup has read: the newest `closed_at` it saw, per kind of row."""

    id = Serial(primary_key=True)
    name = Varchar(length=32, unique=True)
    mark = Timestamptz()


class InsightFigure(Table, tablename="insight_figure"):
    """Analytics' medians kept ready: one group's figures (a step, a template or a week) for the
    whole organisation (`scope` -1) or one department, recomputed by the insight rollup for the
    groups it adds rows to (`runtime.service.insight_figures`). `key` names the group within its
    kind and scope (unique together); `cases` counts the step's decided tasks, the template's
    finished requests or the week's decided tasks (the samples of the median). A step's sums
    (`has_due`, `late`, `returned`, `rejected`) count its tasks; a template's (`requests`,
    `finished`, `rejected`, `returned`, `overdue`, `resubmissions`) its closed requests; a
    week's `submitted` and `finished` the closed requests submitted and finished in it."""

    id = Serial(primary_key=True)
    kind = Varchar(length=16)
    scope = Integer()
    key = Varchar(length=140)
    template_key = Varchar(length=64, default="")
    node_id = Varchar(length=64, default="")
    week = Date(null=True, default=None)
    step = Varchar(length=200, default="")
    first = Timestamptz(null=True, default=None)
    cases = Integer(default=0)
    has_due = Integer(default=0)
    late = Integer(default=0)
    returned = Integer(default=0)
    rejected = Integer(default=0)
    requests = Integer(default=0)
    finished = Integer(default=0)
    overdue = Integer(default=0)
    resubmissions = Integer(default=0)
    submitted = Integer(default=0)
    median_hours = DoublePrecision(null=True, default=None)
    p90_hours = DoublePrecision(null=True, default=None)


class OrgRevision(Table, tablename="org_revision"):
    """One row (id 1) whose `token` changes whenever the organisation does.

    Database triggers on `person`, `department` and `position` set it to a fresh random value
    on every insert, delete, or update of a column the org directory reads (see the migration
    "org revision triggers"), so every process can tell with one tiny query whether its cached
    `runtime.service.org_directory` is still current. Random, never a counter: a restored older
    database must not repeat a token with different contents.
    """

    id = Integer(primary_key=True)
    token = BigInt(default=0)


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
    PermissionReview,
    PermissionReviewItem,
    Suggestion,
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
    PasskeyCredential,
    SignInChallenge,
    SsoSession,
    TaskStat,
    RequestStat,
    StepEstimate,
    InsightMark,
    InsightFigure,
    OrgRevision,
]
