"""The base of every step's config type, and the field types configs share.

A step's config is the `config` object of its plugin node in the flow JSON, decoded into the
plugin's `config_type` (a `StepConfig` subclass): unknown keys are refused, constraints
(`Meta(ge=..., pattern=...)`) are checked when the flow is saved and published, and the
builder renders the config form from the type's JSON Schema (`Registry.infos()`).

Secrets never appear in a flow: a config names a secret (`SecretName`), and the host supplies
its value (`DeliverySettings.secrets`).
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from forms.permissions import FieldAccess

FieldKey = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$")]
"""A form field key, or "table.column" for a detail-table column."""

SecretName = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_\-]*$")]
"""The name of a secret the host holds (e.g. "crm-webhook"), never the secret itself."""

Expression = Annotated[str, Meta(min_length=1, max_length=4_000)]
"""A CEL expression over `form.<field>` and `initiator.<attribute>`."""


class StepConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Options every step has; subclass it for a plugin's own config.

    `field_permissions`: field key (or "table.column") -> access at this step. A plugin reads
    the request's data through this mask: "hidden" fields never reach its hooks (nor a
    webhook's payload); unlisted fields are readable. Subclasses repeat `frozen=True,
    kw_only=True` (msgspec applies `kw_only` per class).
    """

    field_permissions: dict[str, FieldAccess] = {}
