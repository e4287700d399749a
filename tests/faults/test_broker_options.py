"""The Redis broker options the fault tests rely on: read from the broker URL, checked at start-up."""

from __future__ import annotations

import dramatiq.broker
import pytest

from runtime.broker import configure_broker, redis_options
from web.settings import SettingsError, load_settings


def test_the_options_leave_the_url_and_reach_the_broker() -> None:
    url = "redis://:p%40ss@redis:6379/0?heartbeat_timeout=3000&maintenance_chance=1000000&socket_timeout=5"
    assert redis_options(url) == (
        "redis://:p%40ss@redis:6379/0?socket_timeout=5",
        {"heartbeat_timeout": 3000, "maintenance_chance": 1_000_000},
    )
    previous = dramatiq.broker.global_broker  # configure_broker sets the process-wide broker
    broker = configure_broker("redis://127.0.0.1:6399/0?heartbeat_timeout=3000&maintenance_chance=5000")
    try:
        assert (broker.heartbeat_timeout, broker.maintenance_chance) == (3000, 5000)  # type: ignore[attr-defined]
    finally:
        broker.close()
        dramatiq.broker.global_broker = previous


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("heartbeat_timeout=soon", "heartbeat_timeout: expected a whole number from 1000 to 86400000"),
        ("heartbeat_timeout=10", "heartbeat_timeout: expected a whole number from 1000 to 86400000"),
        ("maintenance_chance=0", "maintenance_chance: expected a whole number from 1 to 1000000"),
    ],
)
def test_a_bad_option_stops_start_up_naming_the_variable(query: str, reason: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"FORMFLOW_BROKER_URL": f"redis://redis:6379/0?{query}"})
    assert str(caught.value) == f"FORMFLOW_BROKER_URL: broker URL option {reason}"
