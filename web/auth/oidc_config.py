"""Identity providers for single sign-on, as configured in `FORMFLOW_OIDC_PROVIDERS`.

The variable holds a JSON list, one object per provider:

    [{"name": "corp", "label": "企业账号", "issuer": "https://sso.example.com/realms/corp",
      "client_id": "formflow", "client_secret": "...", "scopes": ["openid", "profile", "email"],
      "match_by": "employee_no", "employee_no_claim": "employee_no", "email_claim": "email"}]

`name` appears in URLs (`/auth/sso/<name>`), so it is a short slug. People are matched to
accounts by the claim named by `match_by`. This module parses and checks the text only; it
talks to nobody (see `web.auth.oidc`).
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Literal
from urllib.parse import urlparse

import msgspec

Slug = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]
Claim = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class OidcProvider(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Slug
    label: Annotated[str, msgspec.Meta(min_length=1, max_length=60)] = ""
    issuer: Annotated[str, msgspec.Meta(min_length=8, max_length=500)]
    client_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    client_secret: Annotated[str, msgspec.Meta(max_length=500)] = ""
    scopes: list[Annotated[str, msgspec.Meta(pattern=r"^[\x21\x23-\x5b\x5d-\x7e]+$")]] = msgspec.field(
        default_factory=lambda: ["openid", "profile", "email"]
    )
    match_by: Literal["employee_no", "email"] = "employee_no"
    employee_no_claim: Claim = "employee_no"
    email_claim: Claim = "email"
    name_claim: Claim = "name"
    # RP-initiated logout: sign out at the provider too when it offers `end_session_endpoint`.
    end_session: bool = True

    @property
    def display_name(self) -> str:
        return self.label or self.name


class OidcConfigError(ValueError):
    """The providers' JSON is malformed or inconsistent; the message says where."""


@cache
def parse_providers(raw: str) -> dict[str, OidcProvider]:
    """The providers by name; raises `OidcConfigError` naming the bad entry and field."""
    if not raw.strip():
        return {}
    try:
        providers = msgspec.json.decode(raw, type=list[OidcProvider])
    except msgspec.ValidationError as exc:
        raise OidcConfigError(str(exc)) from exc
    except msgspec.DecodeError as exc:
        raise OidcConfigError(f"not valid JSON ({exc})") from exc
    by_name: dict[str, OidcProvider] = {}
    for index, provider in enumerate(providers):
        where = f"provider {index} ({provider.name})"
        issuer = urlparse(provider.issuer)
        if issuer.scheme not in ("https", "http") or not issuer.netloc or issuer.query or issuer.fragment:
            raise OidcConfigError(f"{where}: issuer must be an https URL without query or fragment")
        if issuer.scheme == "http" and issuer.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise OidcConfigError(f"{where}: issuer must use https (plain http only on loopback)")
        if "openid" not in provider.scopes:
            raise OidcConfigError(f"{where}: scopes must include openid")
        if provider.name in by_name:
            raise OidcConfigError(f"{where}: the name is used twice")
        by_name[provider.name] = provider
    return by_name
