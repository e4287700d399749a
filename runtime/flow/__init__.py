"""The flow runtime's pure core: flow graphs, their validation, the engine, route previews.

    from runtime.flow import advance, decode_graph, events, new_instance, validate_graph

    graph = decode_graph(published_json)
    problems = validate_graph(graph, form_field_keys)              # design time
    state = new_instance("FL202406001")
    step = advance(graph, state, events.Submit(actor=7), now, env)  # step.state, step.effects

Nothing here performs I/O, reads the clock or draws random numbers: time (`now`), the
organisation, the calendar, the form data and the id factory come in through the arguments.
Node, rule, event and effect types live in `graph`, `rules`, `events` and `effects`; errors
in `errors`; the status table in `lifecycle`.
"""

from runtime.flow.codec import decode_graph, decode_state, encode, graph_from_dict
from runtime.flow.effects import Effect
from runtime.flow.engine import Step, advance
from runtime.flow.environment import Environment, sequential_id
from runtime.flow.errors import FlowError
from runtime.flow.events import Event
from runtime.flow.graph import FlowGraph
from runtime.flow.lifecycle import TRANSITIONS, Status
from runtime.flow.org import Department, OrgDirectory, Person
from runtime.flow.preview import PlannedStep, preview_route
from runtime.flow.state import InstanceState, new_instance
from runtime.flow.validate import GraphProblem, validate_graph

__all__ = [
    "TRANSITIONS",
    "Department",
    "Effect",
    "Environment",
    "Event",
    "FlowError",
    "FlowGraph",
    "GraphProblem",
    "InstanceState",
    "OrgDirectory",
    "Person",
    "PlannedStep",
    "Status",
    "Step",
    "advance",
    "decode_graph",
    "decode_state",
    "encode",
    "graph_from_dict",
    "new_instance",
    "preview_route",
    "sequential_id",
    "validate_graph",
]
