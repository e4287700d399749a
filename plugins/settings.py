"""What the host gives side-effect hooks: secrets by name, the mail server, its public URL.

The composition root builds one `DeliverySettings` from its own settings and calls
`configure_delivery` at start-up (web and worker alike); tests pass one explicitly. Nothing
here reads the environment, so no setting escapes `web.settings`.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta


class SmtpSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An SMTP server for e-mail steps. `starttls` upgrades a plain connection; `ssl` connects
    with TLS from the start (port 465). `timeout_seconds` bounds every network wait."""

    host: Annotated[str, Meta(min_length=1)]
    port: Annotated[int, Meta(ge=1, le=65_535)] = 25
    sender: Annotated[str, Meta(min_length=3)]
    username: str = ""
    password: str = ""
    starttls: bool = False
    ssl: bool = False
    timeout_seconds: Annotated[float, Meta(gt=0, le=300)] = 10.0


class DeliverySettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`secrets`: name -> value, for the secrets step configs name (webhook signing keys,
    robot webhook URLs). `smtp`: None when e-mail is not configured (e-mail steps then skip
    e-mail). `public_url`: the app's base URL, for links and callback addresses."""

    secrets: dict[str, str] = {}
    smtp: SmtpSettings | None = None
    public_url: str = ""


_current = DeliverySettings()


def configure_delivery(settings: DeliverySettings) -> None:
    """Set what side-effect hooks get from now on (call once at start-up)."""
    global _current
    _current = settings


def delivery_settings() -> DeliverySettings:
    """The settings `configure_delivery` set (empty until it is called)."""
    return _current
