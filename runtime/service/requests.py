"""What commands take: the request bodies of the instance API, decoded and constrained by msgspec.

Every shape refuses unknown fields, so a typo in a client fails loudly instead of being
ignored. Person ids are the `person` table's ids; task ids are the `task` table's ids;
attachment ids are the 32-hex-digit uids the upload returned.
"""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from runtime.flow.events import SignerPosition

Note = Annotated[str, Meta(max_length=2_000)]
RequiredNote = Annotated[str, Meta(min_length=1, max_length=2_000)]
TemplateKey = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_-]{0,63}$")]
NodeId = Annotated[str, Meta(min_length=1, max_length=64)]
RowId = Annotated[int, Meta(ge=1, le=2**31 - 1)]
"""A table row id (an integer column on both engines)."""
PersonId = RowId
AttachmentUid = Annotated[str, Meta(pattern=r"^[0-9a-f]{32}$")]
Attachments = Annotated[list[AttachmentUid], Meta(max_length=50)]
Chosen = Annotated[dict[NodeId, Annotated[list[PersonId], Meta(max_length=50)]], Meta(max_length=50)]
"""Node id -> the people the initiator picks for it (发起人自选)."""


class _Body(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class CreateRequest(_Body, frozen=True, kw_only=True):
    """A new request: saved as a draft, or submitted at once (`submit`)."""

    template: TemplateKey
    data: dict[str, Any] = {}
    submit: bool = False
    urgent: bool = False
    chosen: Chosen = {}


class SubmitRequest(_Body, frozen=True, kw_only=True):
    """Submit a draft or resubmit a returned request; `data` replaces the stored data first."""

    data: dict[str, Any] | None = None
    urgent: bool = False
    chosen: Chosen = {}


class DataUpdate(_Body, frozen=True, kw_only=True):
    """New data for a draft or a returned request (checked as a draft: types, not completeness)."""

    data: dict[str, Any]


class TaskAction(enum.StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    RETURN = "return"
    TRANSFER = "transfer"
    ADD_SIGNER = "add_signer"


class TaskActionRequest(_Body, frozen=True, kw_only=True):
    """An approver's decision. `note` is required to return (what to add); `to` to transfer;
    `people` and `position` to add signers; `to_node` returns to an earlier step instead of
    the applicant."""

    action: TaskAction
    comment: Note = ""
    note: Note = ""
    to: PersonId | None = None
    to_node: NodeId | None = None
    people: Annotated[list[PersonId], Meta(max_length=50)] = []
    position: SignerPosition | None = None


class NoteRequest(_Body, frozen=True, kw_only=True):
    """Withdraw or urge, with an optional note."""

    note: Note = ""


class CommentRequest(_Body, frozen=True, kw_only=True):
    text: RequiredNote


class ProgressRequest(_Body, frozen=True, kw_only=True):
    """A work stage is done (the execution record): its result, exception note and photos.
    `task_id` may be left out when the caller has exactly one open stage on the request."""

    task_id: RowId | None = None
    result: Annotated[str, Meta(min_length=1, max_length=200)] = "done"
    note: Note = ""
    attachments: Attachments = []


class ChangeRequestBody(_Body, frozen=True, kw_only=True):
    """流程变更申请: new values for some fields and why; applied once approved again."""

    changes: Annotated[dict[str, Any], Meta(min_length=1, max_length=200)]
    reason: RequiredNote


class SummaryRequest(_Body, frozen=True, kw_only=True):
    """The summary report: actual spend (yuan, not negative), results, problems, and the files."""

    actual_spend: Decimal | None = None
    results: Note = ""
    problems: Note = ""
    note: Note = ""
    attachments: Attachments = []


class PreviewRequest(_Body, frozen=True, kw_only=True):
    """Draft data to predict the route for (who would approve, by when)."""

    data: dict[str, Any] = {}
    urgent: bool = False
