"""The registry: built-ins and entry points loaded the same way; broken plugins disabled, visibly."""

from __future__ import annotations

import logging
from importlib.metadata import EntryPoint

import pytest

import plugins.registry as registry_module
from plugins import GROUP, Registry, default_registry, discover, engine_plugins, validate_plugin_nodes
from plugins.builtin.webhook import Webhook
from plugins.errors import DuplicatePluginError, PluginLoadError
from plugins.registry import BUILTINS, DisabledStep
from runtime.flow import Status
from runtime.flow.effects import CallPlugin, RecordEvent
from runtime.flow.events import Submit
from runtime.flow.graph import PluginNode
from tests.plugins.steps import Flaky, NoDecide
from tests.runtime.driver import Driver
from tests.runtime.graphs import approval, chain
from tests.runtime.org import MKT_HEAD, MONDAY, STAFF, env

BUILT_IN = ["auto-decide", "finance-co-review", "notify", "webhook"]


def point(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=GROUP)


def test_the_built_in_steps_are_registered() -> None:
    registry = discover(found=[])
    assert list(registry.names()) == BUILT_IN and registry.problems == []
    assert {registry.get(n).source for n in BUILT_IN} == {"formflow"}  # type: ignore[union-attr]


def test_the_main_projects_entry_points_replace_the_fallback_list() -> None:
    declared = [point(name, value) for name, value in BUILTINS]
    registry = discover(found=declared)
    assert list(registry.names()) == BUILT_IN and registry.problems == []


def test_a_third_party_entry_point_is_registered_like_a_built_in() -> None:
    registry = discover(found=[point("flaky", "tests.plugins.steps:Flaky")])
    assert "flaky" in registry.names()
    assert isinstance(registry.get("flaky").plugin, Flaky)  # type: ignore[union-attr]


def test_a_plugin_that_fails_to_import_is_disabled_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="formflow.plugins"):
        registry = discover(found=[point("broken", "tests.plugins._broken_plugin:Step")])
    assert list(registry.names()) == BUILT_IN, "the others still load"
    (problem,) = registry.problems
    assert problem.name == "broken"
    assert (
        problem.message == "ModuleNotFoundError: No module named 'formflow_dependency_that_is_not_installed'"
    )
    assert "step plugin 'broken'" in caplog.text and "is disabled" in caplog.text


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            point("no-decide", "tests.plugins.steps:NoDecide"),
            "no-decide: a step plugin needs a `decide` hook",
        ),
        (
            point("unbuildable", "tests.plugins.steps:Unbuildable"),
            "Unbuildable() failed: ValueError: needs a licence key",
        ),
        (point("webhook", "tests.plugins.steps:Flaky"), "the entry point 'webhook' names plugin 'flaky'"),
        (
            point("absent", "tests.plugins.steps:Absent"),
            "AttributeError: module 'tests.plugins.steps' has no attribute 'Absent'",
        ),
    ],
)
def test_malformed_plugins_are_disabled(entry: EntryPoint, message: str) -> None:
    registry = discover(found=[entry])
    assert [(p.name, p.message) for p in registry.problems] == [(entry.name, message)]


def test_a_second_plugin_of_the_same_name_is_refused() -> None:
    registry = discover(found=[])
    with pytest.raises(DuplicatePluginError, match="'webhook' is already registered by formflow"):
        registry.register(Webhook)
    registry = discover(
        found=[point("flaky", "tests.plugins.steps:Flaky"), point("flaky2", "tests.plugins.steps:Flaky")]
    )
    assert [p.name for p in registry.problems] == ["flaky2"]


def test_a_plugin_object_must_have_the_protocols_attributes() -> None:
    with pytest.raises(PluginLoadError, match="needs a `decide` hook"):
        Registry().register(NoDecide())


def test_the_steps_of_a_disabled_plugin_fail_visibly_and_the_instance_waits() -> None:
    registry = discover(found=[point("broken", "tests.plugins._broken_plugin:Step")])
    assert isinstance(registry.engine_plugins()["broken"], DisabledStep)
    graph = chain(PluginNode(id="x", plugin="broken"), approval("z", MKT_HEAD))
    driver = Driver(graph, env(plugins=registry.engine_plugins()), MONDAY)
    driver.apply(Submit(actor=STAFF))
    assert driver.status is Status.IN_APPROVAL
    (failed,) = [e for e in driver.last if isinstance(e, RecordEvent) and e.kind == "plugin_failed"]
    assert failed.data["reason"].startswith("step plugin 'broken' is disabled: ModuleNotFoundError")
    (call,) = driver.of_type(CallPlugin)
    assert driver.state.tokens[0].wait == call.call_id, "the step waits; the actor turns it into an incident"


def test_saving_a_flow_reports_unknown_and_disabled_plugins_at_their_nodes() -> None:
    registry = discover(found=[point("broken", "tests.plugins._broken_plugin:Step")])
    graph = chain(PluginNode(id="a", plugin="broken"), PluginNode(id="b", plugin="nobody"))
    assert [(p.node_id, p.message) for p in validate_plugin_nodes(graph, registry=registry)] == [
        (
            "a",
            "step plugin 'broken' is disabled: ModuleNotFoundError: No module named "
            "'formflow_dependency_that_is_not_installed'",
        ),
        ("b", "no step plugin named 'nobody' is installed"),
    ]


def test_a_raising_check_hook_is_reported_not_raised() -> None:
    class Checker(Flaky):
        name = "checker"

        def check(self, config, site):  # type: ignore[no-untyped-def]
            raise KeyError("oops")

    registry = Registry()
    registry.register(Checker())
    problems = validate_plugin_nodes(chain(PluginNode(id="c", plugin="checker")), registry=registry)
    assert [p.message for p in problems] == [
        "step plugin 'checker' failed to check its config: KeyError: 'oops'"
    ]


def test_the_palette_lists_each_plugin_with_its_config_schema() -> None:
    infos = {info.name: info for info in discover(found=[]).infos()}
    finance = infos["finance-co-review"]
    assert (finance.title.zh, finance.title.en) == ("财务联审", "Finance co-review")
    schema = finance.config_schema["$defs"]["FinanceCoReviewConfig"]
    assert schema["required"] == ["amount_field"]
    assert schema["properties"]["threshold"] == {
        "type": "number",
        "minimum": 0,
        "maximum": 1e13,
        "default": 50000,
    }


def test_the_default_registry_never_fails_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = [point("broken", "tests.plugins._broken_plugin:Step")]
    monkeypatch.setattr(registry_module, "entry_points", lambda group: broken)
    registry_module.set_default_registry(None)
    try:
        assert [p.name for p in default_registry().problems] == ["broken"]
        assert set(engine_plugins()) == {*BUILT_IN, "broken"}
    finally:
        registry_module.set_default_registry(None)
