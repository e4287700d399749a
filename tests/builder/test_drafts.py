"""Designing templates against the real database: drafts, undo and redo, conflicts, publishing, history."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from builder.drafts import (
    DraftConflict,
    DraftEdit,
    DraftMeta,
    NothingToUndo,
    PublishRefused,
    PublishRequest,
    TemplateExists,
    create_template,
    diff_draft,
    diff_published,
    list_versions,
    open_draft,
    publish,
    redo,
    rollback,
    save_draft,
    undo,
)
from runtime.service import CreateRequest, create_instance
from storage import audit
from storage.tables import AuditEntry, Instance, Notification
from storage.templates import version_in_effect
from tests.service.support import caller, marketing_data, person_id

NOW = dt.datetime.now(dt.UTC)  # replaced per test by `_after_the_seed`


@pytest.fixture(autouse=True)
def _after_the_seed(db: None) -> None:
    """"Now" for a test: just after the demo seed published its templates (they take effect when
    seeded, which happens at the first database test, not when this module is imported)."""
    global NOW
    NOW = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
KEY = "marketing-activity"


async def _admin() -> audit.Actor:
    return audit.Actor(id=await person_id("admin"), name="admin")


def _with_field(form: dict[str, Any], key: str = "venue_contact") -> dict[str, Any]:
    field = {"type": "text", "key": key, "label": {"zh": "场地联系人", "en": "Venue contact"}}
    return {**form, "fields": [*form["fields"], field]}


async def test_a_draft_opens_from_the_version_in_effect_without_problems(db: None) -> None:
    draft = await open_draft(KEY, NOW)
    published = await version_in_effect(KEY, NOW)
    assert published is not None
    assert draft.form == published.form and draft.flow == published.flow
    assert draft.problems == []
    assert (draft.can_undo, draft.can_redo, draft.published_version) == (False, False, published.version)


async def test_saves_undo_and_redo_walk_the_history(db: None) -> None:
    actor = await _admin()
    draft = await open_draft(KEY, NOW)
    original = draft.form
    saved = await save_draft(
        KEY,
        DraftEdit(form=_with_field(original), flow=draft.flow, label="added venue contact"),
        row_version=draft.row_version,
        actor=actor,
        now=NOW,
    )
    assert saved.form["fields"][-1]["key"] == "venue_contact" and saved.can_undo
    undone = await undo(KEY, row_version=saved.row_version, actor=actor, now=NOW)
    assert undone.form == original and undone.can_redo and not undone.can_undo
    redone = await redo(KEY, row_version=undone.row_version, actor=actor, now=NOW)
    assert redone.form == saved.form
    with pytest.raises(NothingToUndo):
        await redo(KEY, row_version=redone.row_version, actor=actor, now=NOW)
    # a new change after an undo drops what could have been redone
    back = await undo(KEY, row_version=redone.row_version, actor=actor, now=NOW)
    other = await save_draft(
        KEY,
        DraftEdit(form=_with_field(original, "dress_code"), flow=back.flow),
        row_version=back.row_version,
        actor=actor,
        now=NOW,
    )
    assert not other.can_redo
    actions = [
        row["action"] for row in await AuditEntry.select(AuditEntry.action).where(AuditEntry.target_id == KEY)
    ]
    assert actions.count("template.draft_saved") == 2 and "template.draft_undone" in actions


async def test_a_stale_draft_is_a_conflict_and_changes_nothing(db: None) -> None:
    actor = await _admin()
    draft = await open_draft(KEY, NOW)
    await save_draft(
        KEY,
        DraftEdit(form=_with_field(draft.form), flow=draft.flow),
        row_version=draft.row_version,
        actor=actor,
        now=NOW,
    )
    with pytest.raises(DraftConflict):
        await save_draft(
            KEY,
            DraftEdit(form=_with_field(draft.form, "other"), flow=draft.flow),
            row_version=draft.row_version,
            actor=actor,
            now=NOW,
        )
    assert [f["key"] for f in (await open_draft(KEY, NOW)).form["fields"]][-1] == "venue_contact"


async def test_problems_are_kept_in_the_draft_and_block_publishing(db: None) -> None:
    actor = await _admin()
    draft = await open_draft(KEY, NOW)
    broken = {**draft.form, "fields": [f for f in draft.form["fields"] if f["key"] != "budget"]}
    saved = await save_draft(
        KEY, DraftEdit(form=broken, flow=draft.flow), row_version=draft.row_version, actor=actor, now=NOW
    )
    assert any("budget" in problem.message for problem in saved.problems)
    before = (await version_in_effect(KEY, NOW)).version  # type: ignore[union-attr]
    with pytest.raises(PublishRefused) as refused:
        await publish(
            KEY,
            PublishRequest(change_note="x", effective_from=NOW),
            row_version=saved.row_version,
            actor=actor,
            now=NOW,
        )
    assert refused.value.problems and not refused.value.breaking
    assert (await version_in_effect(KEY, NOW)).version == before  # type: ignore[union-attr]


async def test_publishing_makes_a_version_that_takes_effect_when_set_and_running_requests_stay(
    db: None,
) -> None:
    actor = await _admin()
    e1001 = await caller("e1001")
    running = await create_instance(
        e1001, CreateRequest(template=KEY, data=marketing_data(), submit=True), NOW
    )
    draft = await open_draft(KEY, NOW)
    saved = await save_draft(
        KEY,
        DraftEdit(form=_with_field(draft.form), flow=draft.flow),
        row_version=draft.row_version,
        actor=actor,
        now=NOW,
    )
    later = NOW + dt.timedelta(days=3)
    number = await publish(
        KEY,
        PublishRequest(change_note="加场地联系人", effective_from=later),
        row_version=saved.row_version,
        actor=actor,
        now=NOW,
    )
    assert (await version_in_effect(KEY, NOW)).version == number - 1  # type: ignore[union-attr]
    assert (await version_in_effect(KEY, later)).version == number  # type: ignore[union-attr]
    row = await Instance.select(Instance.version).where(Instance.id == running.id).first()
    assert row["version"] == number - 1
    versions = await list_versions(KEY, later)
    assert [(v.version, v.change_note, v.in_effect) for v in versions[:1]] == [(number, "加场地联系人", True)]
    assert versions[0].published_by == "admin" or versions[0].published_by
    changes = await diff_published(KEY, number - 1, number)
    assert [(c.key, c.change.value) for c in changes.fields] == [("venue_contact", "added")]


async def test_removing_a_field_drafts_hold_needs_the_designer_to_accept_it(db: None) -> None:
    actor = await _admin()
    e1001 = await caller("e1001")
    await create_instance(e1001, CreateRequest(template=KEY, data={"venue": "上海国际会议中心"}), NOW)
    draft = await open_draft(KEY, NOW)
    without_venue = {**draft.form, "fields": [f for f in draft.form["fields"] if f["key"] != "venue"]}
    saved = await save_draft(
        KEY,
        DraftEdit(form=without_venue, flow=draft.flow),
        row_version=draft.row_version,
        actor=actor,
        now=NOW,
    )
    assert saved.problems == []
    diff = await diff_draft(KEY, NOW)
    assert diff is not None and [(c.key, c.change.value) for c in diff.fields] == [("venue", "removed")]
    with pytest.raises(PublishRefused) as refused:
        await publish(
            KEY,
            PublishRequest(change_note="去掉场地", effective_from=NOW),
            row_version=saved.row_version,
            actor=actor,
            now=NOW,
        )
    assert [(b.key, b.kind, b.drafts) for b in refused.value.breaking] == [("venue", "removed_field", 1)]
    number = await publish(
        KEY,
        PublishRequest(change_note="去掉场地", effective_from=NOW, accept_breaking=True),
        row_version=saved.row_version,
        actor=actor,
        now=NOW,
    )
    notices = await Notification.select(Notification.title).where(Notification.person == e1001.principal.id)
    assert any(f"V{number}" in n["title"] for n in notices)


async def test_rollback_publishes_the_old_version_again(db: None) -> None:
    actor = await _admin()
    draft = await open_draft(KEY, NOW)
    saved = await save_draft(
        KEY,
        DraftEdit(form=_with_field(draft.form), flow=draft.flow),
        row_version=draft.row_version,
        actor=actor,
        now=NOW,
    )
    v2 = await publish(
        KEY,
        PublishRequest(change_note="v2", effective_from=NOW),
        row_version=saved.row_version,
        actor=actor,
        now=NOW,
    )
    v3 = await rollback(KEY, v2 - 1, actor=actor, now=NOW + dt.timedelta(minutes=1))
    current = await version_in_effect(KEY, NOW + dt.timedelta(minutes=2))
    assert current is not None and current.version == v3
    assert "venue_contact" not in {f["key"] for f in current.form["fields"]}
    assert "venue_contact" not in {f["key"] for f in (await open_draft(KEY, NOW)).form["fields"]}


async def test_a_new_template_starts_with_a_runnable_flow_and_keys_are_unique(db: None) -> None:
    actor = await _admin()
    meta = DraftMeta(name_zh="会议室预订", name_en="Room booking", category="administration")
    await create_template("room-booking", meta, actor=actor, now=NOW)
    draft = await open_draft("room-booking", NOW)
    assert draft.published_version is None and draft.flow is not None
    with pytest.raises(TemplateExists):
        await create_template("room-booking", meta, actor=actor, now=NOW)
    with pytest.raises(TemplateExists):
        await create_template(KEY, meta, actor=actor, now=NOW)
    with_field = _with_field(draft.form, "room")
    saved = await save_draft(
        "room-booking",
        DraftEdit(form=with_field, flow=draft.flow),
        row_version=draft.row_version,
        actor=actor,
        now=NOW,
    )
    assert saved.problems == []
    assert (
        await publish(
            "room-booking",
            PublishRequest(change_note="首版", effective_from=NOW),
            row_version=saved.row_version,
            actor=actor,
            now=NOW,
        )
        == 1
    )
