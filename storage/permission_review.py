"""The quarterly permission review (权限复核): who may do what, and what changed since the last one.

    review_id = await start_review(actor, now)     # findings listed as items, everyone snapshotted
    report = await review_report(review_id, now)  # people by role and scope, items by kind
    await decide(item_id, "revoked", actor, now)  # revoked: the account is switched off
    await complete_review(review_id, actor, now)  # once every item is decided

Findings (one item per person and kind):
- `dormant`: an active account with no sign-in for 90 days;
- `role_change` / `department_move`: roles or department differ from the last completed
  review's snapshot;
- `outlived_position`: a switched-off account still set as a department's head or leader or
  someone's manager, or an active head of a department they no longer belong to.
Revoking switches the account off, ends its sessions and removes its access tokens; keeping
changes nothing. Every step is audited.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import msgspec

from storage import audit
from storage.access import ROLE_PERMISSIONS, Role, roles_from
from storage.database import write_transaction
from storage.org import department_nodes, subtree
from storage.tables import (
    ApiToken,
    PermissionReview,
    PermissionReviewItem,
    Person,
    UserSession,
)

DORMANT_DAYS = 90
KINDS = ("dormant", "role_change", "department_move", "outlived_position")
DECISIONS = ("kept", "revoked")


class ReviewError(Exception):
    pass


class ReviewNotFound(ReviewError):
    pass


class ReviewOpen(ReviewError):
    """A review is already in progress; finish it first."""


class ReviewIncomplete(ReviewError):
    """Some items are still undecided."""


class RoleLine(msgspec.Struct, frozen=True, kw_only=True):
    role: str
    scope: str
    people: list[str]


class Item(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    person_id: int
    employee_no: str
    name: str
    kind: str
    detail: dict[str, Any]
    decision: str
    decided_at: datetime | None


class Report(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    started_at: datetime
    completed_at: datetime | None
    roles: list[RoleLine]
    items: list[Item]

    @property
    def undecided(self) -> int:
        return sum(1 for item in self.items if not item.decision)


async def _facts() -> dict[str, dict[str, Any]]:
    """Person id (as text, the JSON key) -> department, position, roles, active, last sign-in."""
    nodes = await department_nodes()
    rows = await Person.select(
        Person.id,
        Person.employee_no,
        Person.name,
        Person.active,
        Person.department.as_alias("department_id"),
        Person.department.code.as_alias("department"),
        Person.position.code.as_alias("position"),
        Person.position.roles.as_alias("position_roles"),
        Person.last_login_at,
        Person.created_at,
    ).output(load_json=True)
    heads: dict[int, list[int]] = {}
    leaders: set[int] = set()
    for node in nodes:
        if node.head_id is not None:
            heads.setdefault(node.head_id, []).append(node.id)
        if node.leader_id is not None:
            leaders.add(node.leader_id)
    facts: dict[str, dict[str, Any]] = {}
    for row in rows:
        headed = heads.get(row["id"], [])
        roles = roles_from(row["position_roles"] or [], bool(headed), row["id"] in leaders)
        facts[str(row["id"])] = {
            "employee_no": row["employee_no"],
            "name": row["name"],
            "active": row["active"],
            "department_id": row["department_id"],
            "department": row["department"],
            "position": row["position"],
            "roles": sorted(role.value for role in roles),
            "headed": headed,
            "last_login_at": row["last_login_at"].isoformat() if row["last_login_at"] else None,
            "created_at": row["created_at"].isoformat() if row["created_at"] else None,
        }
    return facts


def findings(
    facts: dict[str, dict[str, Any]],
    previous: dict[str, dict[str, Any]] | None,
    references: dict[int, list[str]],
    members: dict[int, set[int]],
    now: datetime,
) -> list[tuple[int, str, dict[str, Any]]]:
    """(person id, kind, detail) for everything a reviewer should look at; pure."""
    found: list[tuple[int, str, dict[str, Any]]] = []
    cutoff = now - timedelta(days=DORMANT_DAYS)
    for key, person in facts.items():
        person_id = int(key)
        if person["active"]:
            last = person["last_login_at"] or person["created_at"]
            if last is None or datetime.fromisoformat(last) < cutoff:
                found.append((person_id, "dormant", {"last_login_at": person["last_login_at"]}))
        before = (previous or {}).get(key)
        if before is not None:
            if before.get("roles") != person["roles"]:
                found.append(
                    (person_id, "role_change", {"before": before.get("roles"), "after": person["roles"]})
                )
            if before.get("department") != person["department"]:
                found.append(
                    (
                        person_id,
                        "department_move",
                        {"before": before.get("department"), "after": person["department"]},
                    )
                )
        if not person["active"] and references.get(person_id):
            found.append((person_id, "outlived_position", {"still": references[person_id]}))
        elif person["active"]:
            strays = [d for d in person["headed"] if person["department_id"] not in members.get(d, set())]
            if strays:
                found.append((person_id, "outlived_position", {"heads_departments_outside": strays}))
    return found


async def start_review(actor: audit.Actor, now: datetime) -> int:
    """Begin a review: snapshot everyone and list the findings. Refused while one is open."""
    async with write_transaction(PermissionReview._meta.db):
        if await PermissionReview.exists().where(PermissionReview.completed_at.is_null()):
            raise ReviewOpen("a permission review is already in progress")
        facts = await _facts()
        last = await (
            PermissionReview.select(PermissionReview.snapshot)
            .where(PermissionReview.completed_at.is_not_null())
            .order_by(PermissionReview.completed_at, ascending=False)
            .first()
            .output(load_json=True)
        )
        nodes = await department_nodes()
        references: dict[int, list[str]] = {}
        for node in nodes:
            if node.head_id:
                references.setdefault(node.head_id, []).append(f"head:{node.code}")
            if node.leader_id:
                references.setdefault(node.leader_id, []).append(f"leader:{node.code}")
        for row in await Person.select(Person.manager_id).where(
            Person.active.eq(True) & Person.manager_id.is_not_null()
        ):
            references.setdefault(row["manager_id"], [])
            if "manager" not in references[row["manager_id"]]:
                references[row["manager_id"]].append("manager")
        members = {node.id: set(subtree(nodes, [node.id])) for node in nodes}
        rows = await PermissionReview.insert(
            PermissionReview(started_at=now, started_by=actor.id, snapshot=facts)
        ).returning(PermissionReview.id)
        review_id = int(rows[0]["id"])
        items = findings(facts, last["snapshot"] if last else None, references, members, now)
        if items:
            await PermissionReviewItem.insert(
                *(
                    PermissionReviewItem(review=review_id, person=person_id, kind=kind, detail=detail)
                    for person_id, kind, detail in items
                )
            )
        await audit.record(
            "permission_review.started",
            actor,
            target_type="permission_review",
            target_id=review_id,
            after={"items": len(items)},
            now=now,
        )
    return review_id


async def review_report(review_id: int) -> Report:
    review = (
        await PermissionReview.select().where(PermissionReview.id == review_id).first().output(load_json=True)
    )
    if review is None:
        raise ReviewNotFound(f"no permission review {review_id}")
    snapshot: dict[str, dict[str, Any]] = review["snapshot"] or {}
    by_role: dict[str, list[str]] = {}
    for person in sorted(snapshot.values(), key=lambda p: p["employee_no"]):
        if person["active"]:
            for role in person["roles"]:
                by_role.setdefault(role, []).append(f"{person['name']} ({person['employee_no']})")
    roles = [
        RoleLine(
            role=role,
            scope=", ".join(
                f"{permission.value}: {scope.name.lower()}"
                for permission, scope in ROLE_PERMISSIONS[Role(role)].items()
                if permission.value != "signed_in"
            ),
            people=people,
        )
        for role, people in sorted(by_role.items())
    ]
    rows = await (
        PermissionReviewItem.select(
            PermissionReviewItem.id,
            PermissionReviewItem.person.as_alias("person_id"),
            PermissionReviewItem.person.employee_no.as_alias("employee_no"),
            PermissionReviewItem.person.name.as_alias("name"),
            PermissionReviewItem.kind,
            PermissionReviewItem.detail,
            PermissionReviewItem.decision,
            PermissionReviewItem.decided_at,
        )
        .where(PermissionReviewItem.review == review_id)
        .order_by(PermissionReviewItem.kind)
        .order_by(PermissionReviewItem.id)
        .output(load_json=True)
    )
    return Report(
        id=review_id,
        started_at=review["started_at"],
        completed_at=review["completed_at"],
        roles=roles,
        items=[Item(**row) for row in rows],
    )


async def decide(item_id: int, decision: str, actor: audit.Actor, now: datetime) -> Item:
    """Keep or revoke one finding; revoking switches the person's account off."""
    if decision not in DECISIONS:
        raise ReviewError(f"decision must be one of {', '.join(DECISIONS)}")
    async with write_transaction(PermissionReviewItem._meta.db):
        row = await (
            PermissionReviewItem.select(
                PermissionReviewItem.id,
                PermissionReviewItem.person,
                PermissionReviewItem.review.completed_at.as_alias("completed_at"),
                PermissionReviewItem.review.id.as_alias("review_id"),
            )
            .where(PermissionReviewItem.id == item_id)
            .first()
        )
        if row is None:
            raise ReviewNotFound(f"no review item {item_id}")
        if row["completed_at"] is not None:
            raise ReviewError("this review is completed; start a new one")
        await PermissionReviewItem.update(
            {
                PermissionReviewItem.decision: decision,
                PermissionReviewItem.decided_by: actor.id,
                PermissionReviewItem.decided_at: now,
            }
        ).where(PermissionReviewItem.id == item_id)
        if decision == "revoked":
            await Person.update({Person.active: False}).where(Person.id == row["person"])
            await UserSession.delete().where(UserSession.person == row["person"])
            await ApiToken.delete().where(ApiToken.person == row["person"])
        await audit.record(
            f"permission_review.{decision}",
            actor,
            target_type="person",
            target_id=row["person"],
            after={"review": row["review_id"], "item": item_id},
            now=now,
        )
    report = await review_report(int(row["review_id"]))
    return next(item for item in report.items if item.id == item_id)


async def complete_review(review_id: int, actor: audit.Actor, now: datetime) -> None:
    async with write_transaction(PermissionReview._meta.db):
        review = (
            await PermissionReview.select(PermissionReview.completed_at)
            .where(PermissionReview.id == review_id)
            .first()
        )
        if review is None:
            raise ReviewNotFound(f"no permission review {review_id}")
        if review["completed_at"] is not None:
            raise ReviewError("this review is completed already")
        open_items = await PermissionReviewItem.count().where(
            (PermissionReviewItem.review == review_id) & (PermissionReviewItem.decision == "")
        )
        if open_items:
            raise ReviewIncomplete(f"{open_items} item(s) still need a decision")
        await PermissionReview.update(
            {PermissionReview.completed_at: now, PermissionReview.completed_by: actor.id}
        ).where(PermissionReview.id == review_id)
        await audit.record(
            "permission_review.completed",
            actor,
            target_type="permission_review",
            target_id=review_id,
            now=now,
        )


async def list_reviews() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = await PermissionReview.select(
        PermissionReview.id, PermissionReview.started_at, PermissionReview.completed_at
    ).order_by(PermissionReview.id, ascending=False)
    return rows


__all__ = [
    "DECISIONS",
    "KINDS",
    "ReviewError",
    "ReviewIncomplete",
    "ReviewNotFound",
    "ReviewOpen",
    "complete_review",
    "decide",
    "findings",
    "list_reviews",
    "review_report",
    "start_review",
]
