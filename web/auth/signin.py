"""Checking an employee number and password: throttling, lockout, audit.

One function serves the login page and the token API so both obey the same rules:
- more than `login_ip_failures_per_10min` failures from one address in ten minutes -> throttled;
- `login_max_failures` wrong passwords in a row lock the account for `login_lockout_minutes`;
- every success and failure is audited, with the reason, in the same transaction as the
  counters it changes;
- where passkeys are required for admins, an admin who has one cannot use the password.

`record_failure` writes the `auth.login_failed` entry for every sign-in method (password,
SSO, passkey): the method, the reason and, for SSO, the provider.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta

import msgspec

from storage import audit
from storage.database import write_transaction
from storage.org import load_principal
from storage.tables import AuditEntry, Person
from web.auth.passkeys import passkey_required
from web.auth.passwords import burn_time, hash_password, needs_rehash, verify_password
from web.settings import Settings


class Failure(enum.StrEnum):
    BAD_CREDENTIALS = "bad_credentials"
    LOCKED = "locked"
    THROTTLED = "throttled"
    PASSKEY_REQUIRED = "passkey_required"
    PASSWORD_DISABLED = "password_disabled"


class SignInResult(msgspec.Struct, frozen=True, kw_only=True):
    person_id: int | None = None
    person_name: str = ""
    failure: Failure | None = None
    attempts_left: int | None = None
    locked_until: datetime | None = None


async def check_password(
    settings: Settings, employee_no: str, password: str, actor: audit.Actor, method: str = "password"
) -> SignInResult:
    now = datetime.now(UTC)
    employee_no = employee_no.strip()[:32]
    async with write_transaction(Person._meta.db):
        recent = await AuditEntry.count().where(
            (AuditEntry.action == "auth.login_failed")
            & (AuditEntry.ip == actor.ip)
            & (AuditEntry.at > now - timedelta(minutes=10))
        )
        if actor.ip and recent >= settings.login_ip_failures_per_10min:
            await _failed(actor, employee_no, Failure.THROTTLED, method, now)
            return SignInResult(failure=Failure.THROTTLED)

        person = await Person.objects().where(Person.employee_no == employee_no).first()
        if person is None or not person.active:
            burn_time(password)
            await _failed(actor, employee_no, Failure.BAD_CREDENTIALS, method, now)
            return SignInResult(failure=Failure.BAD_CREDENTIALS)

        if person.locked_until is not None and person.locked_until > now:
            await _failed(actor, employee_no, Failure.LOCKED, method, now, person.id)
            return SignInResult(failure=Failure.LOCKED, locked_until=person.locked_until)

        if not verify_password(person.password_hash, password):
            failures = person.failed_logins + 1
            locked_until = None
            if failures >= settings.login_max_failures:
                locked_until = now + timedelta(minutes=settings.login_lockout_minutes)
                failures = 0
            await Person.update({Person.failed_logins: failures, Person.locked_until: locked_until}).where(
                Person.id == person.id
            )
            reason = Failure.LOCKED if locked_until else Failure.BAD_CREDENTIALS
            await _failed(actor, employee_no, reason, method, now, person.id)
            if locked_until:
                return SignInResult(failure=Failure.LOCKED, locked_until=locked_until)
            return SignInResult(
                failure=Failure.BAD_CREDENTIALS, attempts_left=settings.login_max_failures - failures
            )

        principal = await load_principal(person.id)
        if principal is not None and await passkey_required(settings, person.id, principal.roles):
            await _failed(actor, employee_no, Failure.PASSKEY_REQUIRED, method, now, person.id)
            return SignInResult(failure=Failure.PASSKEY_REQUIRED)

        changes = {Person.failed_logins: 0, Person.locked_until: None, Person.last_login_at: now}
        if needs_rehash(person.password_hash):
            changes[Person.password_hash] = hash_password(password)
        await Person.update(changes).where(Person.id == person.id)
        return SignInResult(person_id=person.id, person_name=person.name)


async def _failed(
    actor: audit.Actor,
    employee_no: str,
    reason: Failure,
    method: str,
    now: datetime,
    person_id: int | None = None,
) -> None:
    await record_failure(actor, employee_no, reason.value, method, person_id=person_id, now=now)


async def record_failure(
    actor: audit.Actor,
    who: str,
    reason: str,
    method: str,
    *,
    person_id: int | None = None,
    provider: str | None = None,
    now: datetime | None = None,
) -> None:
    """Audit a refused sign-in; call inside a write transaction. `who` is what the caller claimed."""
    after: dict[str, str] = {"reason": reason, "method": method, "employee_no": who}
    if provider:
        after["provider"] = provider
    await audit.record(
        "auth.login_failed",
        msgspec.structs.replace(actor, id=person_id, name=who),
        target_type="person",
        target_id=person_id or "",
        after=after,
        now=now,
    )
