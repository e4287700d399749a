"""The step-plugin SDK: new kinds of flow steps, built-in and third-party alike.

    from plugins import Complete, OpenTasks, RoleRule, Step, StepConfig, StepInput, Text

    class BigSpend(Step[BigSpendConfig]):
        name = "big-spend"
        title = Text(zh="大额审批", en="Big spend")
        description = Text(zh="...", en="...")
        config_type = BigSpendConfig

        def decide(self, step: StepInput[BigSpendConfig]) -> Decision:
            if step.data["amount"] > step.config.limit:
                return OpenTasks(assignees=RoleRule(role="cfo"), why={"because": "over_limit"})
            return Complete(note="under the limit")

Register it as an entry point of the group `formflow.steps` (see PLUGINS.md); test it with
`plugins.testing.StepKit`. Hooks are pure (`decide`) or run by the `call_plugin` actor with
retries and an idempotency key (`perform`); decisions are data (`plugins.decisions`).

For the host: `default_registry()` discovers the plugins once per process (`problems` lists
those that failed to load), `engine_plugins()` is `Environment.plugins`, and
`validate_plugin_nodes(graph, form)` checks a flow's plugin steps when it is saved. The
actor's side lives in `plugins.calls`, admins' incident actions in `plugins.incidents`, and
callbacks from outside systems in `plugins.callbacks`.
"""

from plugins.config import Expression, FieldKey, SecretName, StepConfig
from plugins.decisions import (
    CallResult,
    Complete,
    Decision,
    Fail,
    Notice,
    OpenTasks,
    Outcome,
    Perform,
    ScheduleTimer,
    WaitForCallback,
)
from plugins.errors import ConfigInvalid, PluginError, PluginLoadError
from plugins.inputs import CallInput, Contacts, Directory, Initiator, StepInput
from plugins.registry import (
    GROUP,
    PluginInfo,
    PluginProblem,
    Registry,
    default_registry,
    discover,
    engine_plugins,
)
from plugins.settings import DeliverySettings, SmtpSettings, configure_delivery
from plugins.signing import sign, verify_signature
from plugins.step import NodeSite, RetryPolicy, Step, StepPlugin, Text
from plugins.validation import validate_plugin_nodes
from runtime.flow.graph import Action, ApprovalMode, Sla
from runtime.flow.plugins import RejectAction as OnReject
from runtime.flow.rules import AssigneeRule, DepartmentFieldHeadRule, PeopleRule, RoleRule

__all__ = [
    "GROUP",
    "Action",
    "ApprovalMode",
    "AssigneeRule",
    "CallInput",
    "CallResult",
    "Complete",
    "ConfigInvalid",
    "Contacts",
    "Decision",
    "DeliverySettings",
    "DepartmentFieldHeadRule",
    "Directory",
    "Expression",
    "Fail",
    "FieldKey",
    "Initiator",
    "NodeSite",
    "Notice",
    "OnReject",
    "OpenTasks",
    "Outcome",
    "PeopleRule",
    "Perform",
    "PluginError",
    "PluginInfo",
    "PluginLoadError",
    "PluginProblem",
    "Registry",
    "RetryPolicy",
    "RoleRule",
    "ScheduleTimer",
    "SecretName",
    "Sla",
    "SmtpSettings",
    "Step",
    "StepConfig",
    "StepInput",
    "StepPlugin",
    "Text",
    "WaitForCallback",
    "configure_delivery",
    "default_registry",
    "discover",
    "engine_plugins",
    "sign",
    "validate_plugin_nodes",
    "verify_signature",
]
