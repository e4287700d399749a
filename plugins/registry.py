"""Finding, loading and holding the step plugins; what the engine and the builder get from them.

Built-in steps and third-party steps are loaded the same way: as entry points of the group
`formflow.steps` ("name = module:attribute"), the built-ins from `BUILTINS` unless the main
project's own metadata already lists them. The attribute is a plugin object or a class made
without arguments. A plugin that fails to import or is malformed is left out: it is listed
in `Registry.problems` (and logged), its steps fail visibly (`engine_plugins`) and are
reported when a flow is saved (`validate_plugin_nodes`); the app starts all the same.

    registry = discover()                      # once per process: default_registry()
    env = Environment(..., plugins=registry.engine_plugins())
    problems = validate_plugin_nodes(graph, form_schema)   # [GraphProblem(node_id, message)]
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import threading
from collections.abc import Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import msgspec

from forms.model import LocalizedText
from plugins._engine import calendar_of, decode_config, failed, node_title, to_engine
from plugins.config import StepConfig
from plugins.decisions import CallResult, Decision
from plugins.errors import ConfigInvalid, DuplicatePluginError, PluginLoadError
from plugins.inputs import CallInput, StepInput, step_input
from plugins.step import NAME_PATTERN, NodeSite, RetryPolicy
from runtime.flow.graph import PluginNode
from runtime.flow.plugins import PluginContext, PluginDecision, PluginFail
from runtime.flow.plugins import StepPlugin as EngineStep

log = logging.getLogger("formflow.plugins")

GROUP = "formflow.steps"
"""The entry-point group third-party steps register in."""

BUILTIN_SOURCE = "formflow"

BUILTINS: tuple[tuple[str, str], ...] = (
    ("finance-co-review", "plugins.builtin.finance_co_review:FinanceCoReview"),
    ("webhook", "plugins.builtin.webhook:Webhook"),
    ("notify", "plugins.builtin.notify:Notify"),
    ("auto-decide", "plugins.builtin.auto_decide:AutoDecide"),
)
"""The built-in steps, as the entry points the main project declares for them."""

_NAME = re.compile(NAME_PATTERN)


class PluginProblem(msgspec.Struct, frozen=True, kw_only=True):
    """A plugin that was left out: `name` (the entry point's), where it came from, and why."""

    name: str
    source: str
    message: str


class PluginInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A plugin for the designer's palette; `config_schema` is the JSON Schema of its config."""

    name: str
    title: LocalizedText
    description: LocalizedText
    source: str
    config_schema: dict[str, Any]


class RegisteredStep:
    """A loaded plugin with every hook present (defaults for the optional ones), usable by the
    engine as a `runtime.flow.plugins.StepPlugin`."""

    __slots__ = ("config_type", "description", "name", "plugin", "source", "title")

    def __init__(self, plugin: Any, source: str) -> None:
        name = getattr(plugin, "name", None)
        if not isinstance(name, str) or not _NAME.match(name):
            raise PluginLoadError(f"{plugin!r}: `name` must be lower-case words joined by hyphens")
        config_type = getattr(plugin, "config_type", None)
        if not (isinstance(config_type, type) and issubclass(config_type, StepConfig)):
            raise PluginLoadError(f"{name}: `config_type` must be a subclass of plugins.StepConfig")
        if not callable(getattr(plugin, "decide", None)):
            raise PluginLoadError(f"{name}: a step plugin needs a `decide` hook")
        self.plugin = plugin
        self.name: str = name
        self.title = _text(plugin, "title")
        self.description = _text(plugin, "description")
        self.config_type: type[StepConfig] = config_type
        self.source = source

    def __repr__(self) -> str:
        return f"RegisteredStep({self.name!r}, source={self.source!r})"

    # -- the hooks ------------------------------------------------------------------------

    def config(self, raw: Mapping[str, Any]) -> StepConfig:
        """The node's config decoded and checked (`ConfigInvalid` when it does not fit)."""
        return decode_config(self.name, self.config_type, raw)

    def decide(self, step: StepInput[Any]) -> Decision:
        decision: Decision = self.plugin.decide(step)
        return decision

    @property
    def has_perform(self) -> bool:
        return callable(getattr(self.plugin, "perform", None))

    async def perform(self, call: CallInput[Any]) -> CallResult:
        """Run `perform`, in a thread when it is synchronous (it may block on the network)."""
        hook = getattr(self.plugin, "perform", None)
        if hook is None:
            raise PluginLoadError(f"{self.name}: decide asked for perform, but there is no perform hook")
        if inspect.iscoroutinefunction(hook):
            result: CallResult = await hook(call)
            return result
        outcome = await asyncio.to_thread(hook, call)
        if inspect.isawaitable(outcome):
            outcome = await outcome
        return outcome  # type: ignore[no-any-return]

    def check(self, config: StepConfig, site: NodeSite) -> list[str]:
        hook = getattr(self.plugin, "check", None)
        return [str(message) for message in hook(config, site)] if hook is not None else []

    def retry_policy(self, config: StepConfig | None) -> RetryPolicy:
        hook = getattr(self.plugin, "retry_policy", None)
        if hook is None or config is None:
            return getattr(self.plugin, "retry", None) or RetryPolicy()
        policy: RetryPolicy = hook(config)
        return policy

    def callback_secret(self, config: StepConfig) -> str | None:
        hook = getattr(self.plugin, "callback_secret", None)
        return hook(config) if hook is not None else None

    # -- the engine's protocol --------------------------------------------------------------

    def enter(self, node: PluginNode, context: PluginContext) -> PluginDecision:
        """The engine's decision for a token entering `node`; never raises."""
        try:
            config = self.config(node.config)
            step = step_input(config, context, title=node_title(node), calendar=calendar_of(context))
            return to_engine(self.decide(step), self.name)
        except ConfigInvalid as exc:
            return PluginFail(reason=f"invalid config: {'; '.join(exc.messages)}")
        except Exception as exc:
            return failed(exc)

    def info(self) -> PluginInfo:
        return PluginInfo(
            name=self.name,
            title=self.title,
            description=self.description,
            source=self.source,
            config_schema=msgspec.json.schema(self.config_type),
        )


class DisabledStep:
    """Stands in, for the engine, for a plugin that failed to load: its steps fail visibly."""

    __slots__ = ("problem",)

    def __init__(self, problem: PluginProblem) -> None:
        self.problem = problem

    def enter(self, node: PluginNode, context: PluginContext) -> PluginDecision:
        return PluginFail(reason=f"step plugin {self.problem.name!r} is disabled: {self.problem.message}")


class Registry:
    """The loaded plugins by name, and the problems of those left out."""

    def __init__(self) -> None:
        self._steps: dict[str, RegisteredStep] = {}
        self.problems: list[PluginProblem] = []
        self._engine: dict[str, EngineStep] | None = None

    def register(self, plugin: Any, *, source: str = "") -> RegisteredStep:
        """Add a plugin object (or a class made without arguments); raises `PluginLoadError`."""
        if inspect.isclass(plugin):
            try:
                plugin = plugin()
            except Exception as exc:
                raise PluginLoadError(f"{plugin.__name__}() failed: {type(exc).__name__}: {exc}") from exc
        step = RegisteredStep(plugin, source)
        if step.name in self._steps:
            first = self._steps[step.name].source
            raise DuplicatePluginError(f"{step.name!r} is already registered by {first}")
        self._steps[step.name] = step
        self._engine = None
        return step

    def load(self, entry_point: EntryPoint, source: str) -> RegisteredStep | None:
        """Load one entry point; a failure is recorded in `problems` (and logged), not raised."""
        try:
            step = self.register(entry_point.load(), source=source)
            if step.name != entry_point.name:
                del self._steps[step.name]
                raise PluginLoadError(f"the entry point {entry_point.name!r} names plugin {step.name!r}")
            return step
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}" if not isinstance(exc, PluginLoadError) else str(exc)
            problem = PluginProblem(name=entry_point.name, source=source, message=message[:2_000])
            self.problems.append(problem)
            self._engine = None
            log.warning("step plugin %r from %s is disabled: %s", problem.name, source, problem.message)
            return None

    def get(self, name: str) -> RegisteredStep | None:
        return self._steps.get(name)

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._steps))

    def problem_for(self, name: str) -> PluginProblem | None:
        return next((p for p in self.problems if p.name == name), None)

    def infos(self) -> list[PluginInfo]:
        """Every usable plugin, for the designer's palette, by name."""
        return [self._steps[name].info() for name in self.names()]

    def engine_plugins(self) -> Mapping[str, EngineStep]:
        """`Environment.plugins`: every plugin by name; a disabled one fails its steps."""
        if self._engine is None:
            engine: dict[str, EngineStep] = {p.name: DisabledStep(p) for p in self.problems}
            engine.update(self._steps)
            self._engine = engine
        return self._engine


def discover(
    group: str = GROUP, *, found: Iterable[EntryPoint] | None = None, builtins: bool = True
) -> Registry:
    """A registry of the built-in steps and every entry point in `group` (installed packages'
    metadata unless `found` is given). Never raises for a plugin: see `Registry.problems`."""
    points = list(entry_points(group=group) if found is None else found)
    registry = Registry()
    declared = {point.name for point in points}
    if builtins:
        for name, reference in BUILTINS:
            if name not in declared:
                registry.load(EntryPoint(name=name, value=reference, group=group), BUILTIN_SOURCE)
    for point in sorted(points, key=lambda p: (_source(p) != BUILTIN_SOURCE, p.name)):
        registry.load(point, _source(point))
    return registry


def _source(point: EntryPoint) -> str:
    dist = point.dist
    return dist.name if dist is not None else "unknown distribution"


def _text(plugin: Any, attribute: str) -> LocalizedText:
    value = getattr(plugin, attribute, None)
    if isinstance(value, LocalizedText):
        return value
    try:
        return msgspec.convert(value, LocalizedText)
    except msgspec.ValidationError as exc:
        name = getattr(plugin, "name", plugin)
        raise PluginLoadError(f"{name}: `{attribute}` must be Text(zh=..., en=...)") from exc


_default: Registry | None = None
_lock = threading.Lock()


def default_registry() -> Registry:
    """The process's registry, discovered on first use."""
    global _default
    if _default is None:
        with _lock:
            if _default is None:
                _default = discover()
    return _default


def set_default_registry(registry: Registry | None) -> None:
    """Replace the process's registry (None: discover again on next use); for tests and hosts."""
    global _default
    _default = registry


def engine_plugins() -> Mapping[str, EngineStep]:
    """`Environment.plugins` for the engine, from the process's registry."""
    return default_registry().engine_plugins()
