"""Branch conditions: CEL over `form.<field>` and `initiator.<attribute>`, compiled once.

A `Condition` records the form fields and initiator attributes its source reads, so that
only those values are converted for CEL (conversion dominates an evaluation's cost) and so
that validation can report unknown fields. Results are memoized by the values read.

Values reach CEL as: Decimal -> double, date -> timestamp at midnight UTC, lists and dicts
element-wise. An evaluation that fails (a missing field, a type mismatch) counts as false:
the branch falls through to its next condition or its default edge.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

import cel

from forms.expressions import (  # the form compiler and the engine hand CEL the same values
    MAX_COMPREHENSION_DEPTH,
    comprehension_depth,
    strip_string_literals,
    to_cel,
)

INITIATOR_ATTRIBUTES: Final = frozenset(
    {"id", "name", "department", "department_id", "department_code", "position", "roles", "manager_id"}
)
"""What `initiator.<attribute>` may read."""

_STRING = re.compile(r"\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'")
_MACRO_VARIABLE = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")
_MEMBER = re.compile(r"(?<![.\w])(form|initiator)\s*\.\s*([A-Za-z_]\w*)")
_WHOLE = re.compile(r"(?<![.\w])(form|initiator)\b(?!\s*\.)")
_MEMO_LIMIT = 1_024


class ConditionSyntaxError(ValueError):
    """The CEL source does not parse, or nests comprehensions deeper than the form compiler allows."""


class Condition:
    """A compiled condition. `fields`/`attributes`: what it reads of `form`/`initiator`;
    `unknown_names`: free names other than `form` and `initiator`."""

    __slots__ = ("_memo", "attributes", "fields", "program", "source", "unknown_names", "whole")

    def __init__(self, source: str) -> None:
        try:
            self.program = cel.compile(source)
        except Exception as exc:  # the binding raises ValueError or RuntimeError
            raise ConditionSyntaxError(str(exc).split("\n")[0]) from exc
        self.source = source
        if comprehension_depth(strip_string_literals(source)) > MAX_COMPREHENSION_DEPTH:
            raise ConditionSyntaxError(
                f"comprehensions (all, exists, exists_one, map, filter) nest at most {MAX_COMPREHENSION_DEPTH} deep"
            )
        code = _STRING.sub('""', source)
        bound = set(_MACRO_VARIABLE.findall(code))
        names = set(self.program.variables()) - bound
        self.unknown_names: frozenset[str] = frozenset(names - {"form", "initiator"})
        members = _MEMBER.findall(code)
        self.fields: tuple[str, ...] = tuple(sorted({m for owner, m in members if owner == "form"}))
        self.attributes: tuple[str, ...] = tuple(sorted({m for owner, m in members if owner == "initiator"}))
        self.whole: frozenset[str] = frozenset(_WHOLE.findall(code))
        """`form` or `initiator` used other than as `name.member` (then all of it is passed)."""
        self._memo: dict[Any, bool] = {}

    def __repr__(self) -> str:
        return f"Condition({self.source!r})"

    def holds(self, form: Mapping[str, Any], initiator: Callable[[], Mapping[str, Any]]) -> bool:
        """Whether the condition is true for `form`; `initiator()` is called only if needed."""
        person = initiator() if self.attributes or "initiator" in self.whole else None
        form_key = tuple([form.get(name) for name in self.fields]) if "form" not in self.whole else None
        person_key = tuple([person.get(name) for name in self.attributes]) if person is not None else None
        key = (form_key, person_key)
        try:
            return self._memo[key]
        except KeyError:
            pass
        except TypeError:  # a value that cannot be hashed (a list): evaluate without the memo
            return self._run(form, person)
        result = self._run(form, person)
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        self._memo[key] = result
        return result

    def _run(self, form: Mapping[str, Any], person: Mapping[str, Any] | None) -> bool:
        variables: dict[str, Any] = {}
        if "form" in self.whole:
            variables["form"] = to_cel(dict(form))
        elif self.fields:
            variables["form"] = {name: to_cel(form[name]) for name in self.fields if name in form}
        if person is not None:
            variables["initiator"] = to_cel(dict(person))
        try:
            return self.program.execute(variables) is True
        except Exception:  # CEL raises TypeError, RuntimeError, KeyError...: "not established"
            return False
