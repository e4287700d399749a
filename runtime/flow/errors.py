"""Exceptions raised by the flow engine.

Every error says whether retrying the same command can help (`retryable`). The service maps
them to HTTP responses in one place; the comments give the intended status.

    FlowError                         base of the package
    ├── DefinitionError               the flow graph cannot run (carries the problems found)    500/422
    │   └── GraphDecodeError          stored JSON does not match the flow-graph format
    ├── StateDecodeError              a stored instance state cannot be read or upgraded        500
    ├── CommandError                  the event cannot be applied to the instance as it is now
    │   ├── TransitionError           the status does not accept this event, or the status
    │   │                             change is not in `TRANSITIONS`                            409
    │   ├── TaskNotOpenError          the task is closed, or not a task of this instance        409
    │   ├── NotAssigneeError          the actor is not the task's assignee                      403
    │   ├── NotPermittedError         the actor may not do this (not the initiator, not admin)  403
    │   ├── ActionNotAllowedError     the node's settings do not allow this action              403
    │   ├── InvalidCommandError       the command's data is wrong: a missing note, an unknown
    │   │                             person, a return target that is not an earlier node       422
    │   └── UrgeTooSoonError          urged less than an hour ago (retryable, `retry_after`)    429
    ├── NoAssigneeError               nobody resolves for a node whose policy is "error"        422
    └── FlowLoopError                 tokens kept moving without reaching a waiting node        500
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime.flow.validate import GraphProblem


class FlowError(Exception):
    """Base of every error raised by `runtime.flow`."""

    retryable = False


class DefinitionError(FlowError):
    """The flow graph cannot be run; `problems` lists what is wrong, each with its node id."""

    def __init__(self, message: str, problems: list[GraphProblem] | None = None) -> None:
        super().__init__(message)
        self.problems: list[GraphProblem] = list(problems or [])


class GraphDecodeError(DefinitionError):
    """The JSON of a flow graph is malformed or does not match the flow-graph format."""


class StateDecodeError(FlowError):
    """A stored instance state does not decode, or no migration leads from its schema version."""


class CommandError(FlowError):
    """The event is refused; the instance is unchanged. Retrying the same command fails again."""


class TransitionError(CommandError):
    """The instance's status does not accept the event, or the status change is not declared."""

    def __init__(self, message: str, *, status: str, attempted: str) -> None:
        super().__init__(message)
        self.status = status
        self.attempted = attempted


class TaskNotOpenError(CommandError):
    """The task was already decided, withdrawn or reassigned, or never belonged to this instance."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"task {task_id} is not open")
        self.task_id = task_id


class NotAssigneeError(CommandError):
    """Someone other than the task's assignee tried to act on it."""

    def __init__(self, task_id: str, actor: int | None) -> None:
        super().__init__(f"person {actor} is not the assignee of task {task_id}")
        self.task_id = task_id
        self.actor = actor


class NotPermittedError(CommandError):
    """The actor lacks the standing for this command (only the initiator may withdraw, ...)."""


class ActionNotAllowedError(CommandError):
    """The node was configured without this action (e.g. no add-signer on this approval)."""


class InvalidCommandError(CommandError):
    """The command's own data is wrong; `field` names the offending part of the event."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class UrgeTooSoonError(CommandError):
    """Urging is limited to once an hour; retrying after `retry_after` helps."""

    retryable = True

    def __init__(self, retry_after: dt.datetime) -> None:
        super().__init__(f"already urged; next urge allowed at {retry_after.isoformat()}")
        self.retry_after = retry_after


class NoAssigneeError(FlowError):
    """No approver resolved for a node whose empty policy is "error" (or no process admin exists).

    Retrying helps only after the organisation is fixed, so `retryable` is False.
    """

    def __init__(self, node_id: str, reason: dict[str, Any]) -> None:
        super().__init__(f"no assignee for node {node_id} ({reason.get('rule')})")
        self.node_id = node_id
        self.reason = reason


class FlowLoopError(FlowError):
    """One step moved tokens more often than the graph allows: a loop with no waiting node."""
