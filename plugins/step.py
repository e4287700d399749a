"""What a step plugin is: a name, titles, a config type and a few small hooks.

    class BudgetCheck(Step[BudgetConfig]):
        name = "budget-check"
        title = Text(zh="预算校验", en="Budget check")
        description = Text(zh="...", en="...")
        config_type = BudgetConfig

        def decide(self, step: StepInput[BudgetConfig]) -> Decision:
            ...

Hooks:
- `decide(step)` (required) is pure: no I/O, no clock (use `step.now`), deterministic. The
  engine calls it when a token enters the step, inside the transaction of that event; the
  actor may call it again with the same input before running `perform`.
- `perform(call)` (optional) does the side-effect work (HTTP, e-mail) in the dramatiq actor,
  after commit, retried per `retry_policy` with back-off; it may be sync (run in a thread) or
  async. It returns a `CallResult`; raising counts as a retryable failure.
- `check(config, site)` (optional) adds design-time problems beyond the config type's own
  constraints, e.g. "the amount field is not a money field".
- `retry_policy(config)` (optional) says how often and how patiently `perform` is retried.
- `callback_secret(config)` (optional) names the secret that signs callbacks to this step;
  None refuses callbacks.

`Step` is a convenience base class; any object with these attributes works (`StepPlugin`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Iterable, Mapping
from typing import Annotated, Any, ClassVar, Generic, Protocol, TypeVar

import msgspec
from msgspec import Meta

from forms.model import LocalizedText
from plugins.config import StepConfig
from plugins.decisions import CallResult, Decision, Fail
from plugins.inputs import CallInput, StepInput

C = TypeVar("C", bound=StepConfig)

Text = LocalizedText
"""A text in Chinese and English: `Text(zh="财务联审", en="Finance co-review")`."""

NAME_PATTERN = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
"""Plugin names: lower-case words joined by hyphens, e.g. "finance-co-review"."""


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How the actor retries a failing call: `attempts` in all (the first one included), the
    n-th retry after `backoff_seconds * 2**(n-1)` seconds, at most `max_backoff_seconds`."""

    attempts: Annotated[int, Meta(ge=1, le=50)] = 5
    backoff_seconds: Annotated[float, Meta(ge=0, le=3_600)] = 2.0
    max_backoff_seconds: Annotated[float, Meta(ge=0, le=86_400)] = 600.0

    def delay(self, attempt: int) -> dt.timedelta:
        """The wait before the retry that follows failed attempt `attempt` (0-based)."""
        seconds = self.backoff_seconds * 2 ** max(attempt, 0)
        return dt.timedelta(seconds=min(seconds, self.max_backoff_seconds))


class NodeSite(msgspec.Struct, frozen=True, kw_only=True):
    """Where a step sits, for `check`. `fields`: form field key ("table.column" for columns)
    -> its type ("money", "text", ...; a computed field's result type), None when the form is
    not known. `after`: approval and plugin steps passed on every path before this one;
    `alongside`: those on the other arms of the parallel split this step is on."""

    node_id: str
    fields: Mapping[str, str] | None = None
    after: tuple[str, ...] = ()
    alongside: tuple[str, ...] = ()


class StepPlugin(Protocol):
    """What the registry accepts as a step plugin."""

    name: str
    title: LocalizedText
    description: LocalizedText
    config_type: type[StepConfig]

    def decide(self, step: StepInput[Any]) -> Decision: ...

    def perform(self, call: CallInput[Any]) -> CallResult | Awaitable[CallResult]: ...

    def check(self, config: Any, site: NodeSite) -> Iterable[str]: ...

    def retry_policy(self, config: Any) -> RetryPolicy: ...

    def callback_secret(self, config: Any) -> str | None: ...


class Step(Generic[C]):
    """Base class of a step plugin: set the class attributes, implement `decide`."""

    name: ClassVar[str]
    title: ClassVar[LocalizedText]
    description: ClassVar[LocalizedText]
    config_type: ClassVar[type[StepConfig]]
    retry: ClassVar[RetryPolicy] = RetryPolicy()

    def decide(self, step: StepInput[C]) -> Decision:
        raise NotImplementedError(f"{type(self).__name__} does not implement decide")

    def perform(self, call: CallInput[C]) -> CallResult | Awaitable[CallResult]:
        return Fail(reason=f"step {self.name} has no side-effect hook (perform)", retry=False)

    def check(self, config: C, site: NodeSite) -> Iterable[str]:
        return ()

    def retry_policy(self, config: C) -> RetryPolicy:
        return self.retry

    def callback_secret(self, config: C) -> str | None:
        return None
