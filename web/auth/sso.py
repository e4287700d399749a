"""Who an SSO identity is in Formflow: matched by the mapped claim, or created when allowed.

The provider's `match_by` names the claim that identifies people: the employee number (exact)
or the e-mail address (case-insensitive, and refused when the provider says it is not
verified or when two people share it). Someone unknown is refused, or, with
`FORMFLOW_SSO_UNKNOWN_PEOPLE=create`, created as an employee of `FORMFLOW_SSO_DEFAULT_DEPARTMENT`
(no password, no position: the employee role only) and audited as `org.person_created`.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime

import msgspec

from storage import audit
from storage.org import OrgError, PersonDraft, upsert_person
from storage.tables import Person
from web.auth.oidc import Identity
from web.auth.oidc_config import OidcProvider
from web.settings import Settings


class Refusal(enum.StrEnum):
    UNKNOWN_PERSON = "unknown_person"
    AMBIGUOUS_EMAIL = "ambiguous_email"
    UNVERIFIED_EMAIL = "unverified_email"
    INACTIVE = "inactive"
    CANNOT_CREATE = "cannot_create"


class Match(msgspec.Struct, frozen=True, kw_only=True):
    person_id: int | None = None
    person_name: str = ""
    refusal: Refusal | None = None
    created: bool = False


async def match_person(
    settings: Settings, provider: OidcProvider, identity: Identity, actor: audit.Actor
) -> Match:
    """Find (or create) the person; call inside the sign-in's write transaction."""
    if provider.match_by == "email":
        if identity.email_verified is False:
            return Match(refusal=Refusal.UNVERIFIED_EMAIL)
        rows = await Person.raw(
            "SELECT id, name, active FROM person WHERE lower(email) = {}", identity.email.lower()
        )
        if len(rows) > 1:
            return Match(refusal=Refusal.AMBIGUOUS_EMAIL)
    else:
        rows = await Person.select(Person.id, Person.name, Person.active).where(
            Person.employee_no == identity.employee_no
        )
    if rows:
        row = rows[0]
        if not row["active"]:
            return Match(refusal=Refusal.INACTIVE)
        await Person.update({Person.last_login_at: datetime.now(UTC)}).where(Person.id == row["id"])
        return Match(person_id=row["id"], person_name=row["name"])
    if settings.sso_unknown_people != "create":
        return Match(refusal=Refusal.UNKNOWN_PERSON)
    return await _create(settings, identity, actor)


async def _create(settings: Settings, identity: Identity, actor: audit.Actor) -> Match:
    if not identity.employee_no or await Person.exists().where(Person.employee_no == identity.employee_no):
        return Match(refusal=Refusal.CANNOT_CREATE)
    draft = PersonDraft(
        employee_no=identity.employee_no,
        name=identity.name or identity.employee_no,
        email=identity.email,
        department_code=settings.sso_default_department,
    )
    try:
        person_id, _, after = await upsert_person(draft)
    except OrgError:
        return Match(refusal=Refusal.CANNOT_CREATE)
    await Person.update({Person.last_login_at: datetime.now(UTC)}).where(Person.id == person_id)
    await audit.record(
        "org.person_created",
        actor,
        target_type="person",
        target_id=person_id,
        after={**after, "source": f"sso:{identity.provider}"},
    )
    return Match(person_id=person_id, person_name=draft.name, created=True)
