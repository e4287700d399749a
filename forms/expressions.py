"""CEL expressions: compiled once, analysed for the names they read, evaluated with a memo.

A condition, formula or rule is compiled by the `common-expression-language` package into a
`cel.Program` when the form compiles. `Expression` also records which names the source
reads (for the design-time check and for dependency order) and, for `row`, which columns
(`row.category`), so that only those values are handed to CEL: converting Python values
into CEL values dominates the cost of an evaluation (microseconds per string).

Evaluation is pure, so `Evaluator` memoizes results by the values of the inputs the
expression reads (bounded; cleared when full). Rows of a detail table mostly repeat a few
categories, so conditions inside rows are usually memo hits.

Values reach CEL as: Decimal -> double, date -> timestamp at midnight UTC, datetime ->
timestamp, lists and dicts element-wise. An evaluation that fails (a null operand, a type
mismatch) yields `FAILED`; callers treat that as "condition not established".

CEL has no loops, but comprehensions nest and a few library functions build values from their
arguments; both are bounded so that no expression runs long or grows huge: comprehensions nest
at most `MAX_COMPREHENSION_DEPTH` deep (refused when the expression compiles), `lists.range`
builds at most `MAX_LIST_ITEMS` items and text built by `replace`, `join` and `base64.encode`
has at most `MAX_TEXT_CHARS` characters (beyond that the evaluation fails).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal
from itertools import repeat
from operator import itemgetter
from typing import Any, Final

import cel
from cel.stdlib import STDLIB_FUNCTIONS

CONTEXT_NAMES: Final = frozenset({"row", "today", "user", "totals"})
"""Names CEL sees besides the field keys; reserved, so no field may use them as a key."""
NAMESPACES: Final = frozenset(name.split(".")[0] for name in STDLIB_FUNCTIONS if "." in name)
CEL_RESERVED: Final = frozenset(
    "true false null in as break const continue else for function if import let loop package "  # noqa: SIM905
    "namespace return var void while".split()
)
BUILTIN_FUNCTIONS: Final = frozenset(
    "size contains startsWith endsWith matches duration timestamp string bytes double int uint "  # noqa: SIM905
    "dyn type getFullYear getMonth getDate getDayOfMonth getDayOfWeek getDayOfYear getHours "
    "getMinutes getSeconds getMilliseconds".split()
)
_STDLIB_BY_SHORT_NAME: dict[str, list[str]] = {}
for _name in STDLIB_FUNCTIONS:
    _STDLIB_BY_SHORT_NAME.setdefault(_name.rsplit(".", 1)[-1], []).append(_name)

_MACRO_VARIABLE = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")
_MEMBER = re.compile(r"\b([A-Za-z_]\w*)\s*\.\s*([A-Za-z_]\w*)\b(?!\s*\()")
_NAME = re.compile(r"(?<![.\w])([A-Za-z_]\w*)\b")
_MEMO_LIMIT = 4_096
_COMPREHENSION = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(")
MAX_COMPREHENSION_DEPTH: Final = 2
"""Comprehensions inside comprehensions: two deep over 5,000-row tables is 25 million steps."""
MAX_LIST_ITEMS: Final = 10_000
"""Largest list `lists.range` builds."""
MAX_TEXT_CHARS: Final = 1_000_000
"""Longest text `replace`, `join` and `base64.encode` build."""


class _Failed:
    """The result of an evaluation that raised; falsy."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "FAILED"


FAILED: Final = _Failed()
_MISSING: Final = object()


class ExpressionSyntaxError(ValueError):
    """The CEL source does not parse (the message is the parser's) or nests comprehensions too deep."""


class _TooLarge(ValueError):
    """A library function was asked to build a value over its bound; the evaluation fails."""


def _range(n: int) -> list[int]:
    if n > MAX_LIST_ITEMS:
        raise _TooLarge(f"lists.range({n}): at most {MAX_LIST_ITEMS} items")
    return list(range(n))


def _replace(s: str, old: str, new: str, limit: int = -1) -> str:
    count = s.count(old) if old else len(s) + 1
    if limit >= 0:
        count = min(count, limit)
    if len(s) + count * (len(new) - len(old)) > MAX_TEXT_CHARS:
        raise _TooLarge(f"replace: the text would exceed {MAX_TEXT_CHARS} characters")
    return s.replace(old, new) if limit < 0 else s.replace(old, new, limit)


def _join(items: list[Any], sep: str = "") -> str:
    size = sum(len(item) if isinstance(item, str) else 0 for item in items) + len(sep) * len(items)
    if size > MAX_TEXT_CHARS:
        raise _TooLarge(f"join: the text would exceed {MAX_TEXT_CHARS} characters")
    return sep.join(items)


def _base64_encode(data: bytes | str) -> str:
    size = len(data.encode()) if isinstance(data, str) else len(data)
    if (size + 2) // 3 * 4 > MAX_TEXT_CHARS:
        raise _TooLarge(f"base64.encode: the text would exceed {MAX_TEXT_CHARS} characters")
    encode: Callable[[bytes | str], str] = STDLIB_FUNCTIONS["base64.encode"]
    return encode(data)


_BOUNDED: Final[dict[str, Callable[..., Any]]] = {
    "lists.range": _range,
    "replace": _replace,
    "join": _join,
    "base64.encode": _base64_encode,
}


def comprehension_depth(code: str) -> int:
    """How deep comprehensions (`all`, `exists`, `exists_one`, `map`, `filter`) nest in `code`
    (string literals already blanked)."""
    opens = {match.end() - 1 for match in _COMPREHENSION.finditer(code)}
    stack: list[bool] = []
    deepest = 0
    for index, char in enumerate(code):
        if char == "(":
            stack.append(index in opens)
            deepest = max(deepest, sum(stack))
        elif char == ")" and stack:
            stack.pop()
    return deepest


class Expression:
    """A compiled CEL expression and what it reads.

    `names`: free names (field keys and context names), without comprehension variables
    and stdlib namespaces. `members[name]`: the attributes read as `name.attr`, or None when
    `name` is also used some other way (then the whole value is needed).
    `unknown_functions`: functions that neither CEL nor `cel.stdlib` provides.
    """

    __slots__ = ("functions", "members", "names", "program", "source", "unknown_functions")

    def __init__(self, source: str) -> None:
        try:
            self.program = cel.compile(source)
        except Exception as exc:  # the binding raises ValueError, be broad about it
            raise ExpressionSyntaxError(_parser_message(str(exc))) from exc
        self.source = source
        code = strip_string_literals(source)
        if comprehension_depth(code) > MAX_COMPREHENSION_DEPTH:
            raise ExpressionSyntaxError(
                f"comprehensions (all, exists, exists_one, map, filter) nest at most {MAX_COMPREHENSION_DEPTH} deep"
            )
        bound = set(_MACRO_VARIABLE.findall(code))
        names = set(self.program.variables()) - bound
        functions = set(self.program.functions())
        self.names: frozenset[str] = frozenset(names - NAMESPACES)
        self.members: dict[str, frozenset[str] | None] = _member_use(code, self.names)
        self.functions: dict[str, Callable[..., Any]] = {
            full: _BOUNDED.get(full, STDLIB_FUNCTIONS[full])
            for short in functions
            for full in _STDLIB_BY_SHORT_NAME.get(short, ())
        }
        self.unknown_functions: frozenset[str] = frozenset(
            name
            for name in functions
            if name[0] not in "_@!" and name not in BUILTIN_FUNCTIONS and name not in _STDLIB_BY_SHORT_NAME
        )

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"

    def run(self, variables: dict[str, Any]) -> Any:
        """Execute with already converted CEL `variables`; `FAILED` if evaluation raises."""
        if self.functions:
            variables = {**variables, **self.functions}
        try:
            return self.program.execute(variables)
        except Exception:  # CEL raises TypeError, RuntimeError, KeyError... all mean "no value"
            return FAILED


def _parser_message(text: str) -> str:
    """The parser's complaint, short: "1:5: Syntax error: mismatched input '<EOF>'"."""
    first = text.split("\n")[0]
    _, marker, detail = first.partition("ERROR: <input>:")
    return (detail if marker else first).split(" expecting ")[0].strip()


def _member_use(code: str, names: frozenset[str]) -> dict[str, frozenset[str] | None]:
    members: dict[str, set[str] | None] = {name: set() for name in names}
    member_spans: set[int] = set()
    for match in _MEMBER.finditer(code):
        name = match.group(1)
        if name in members and _is_free(code, match.start(1)):
            used = members[name]
            if used is not None:
                used.add(match.group(2))
            member_spans.add(match.start(1))
    for match in _NAME.finditer(code):
        name = match.group(1)
        if name in members and match.start(1) not in member_spans:
            members[name] = None
    return {name: (frozenset(used) if used is not None else None) for name, used in members.items()}


def _is_free(code: str, start: int) -> bool:
    """True unless the name at `start` is itself a member (`a.row.x`)."""
    index = start - 1
    while index >= 0 and code[index].isspace():
        index -= 1
    return index < 0 or code[index] != "."


_STRING_LITERAL = re.compile(
    "|".join(
        [
            r"[rR]'''[\s\S]*?'''",
            r'[rR]"""[\s\S]*?"""',
            r"[rR]'[^'\n]*'",
            r'[rR]"[^"\n]*"',
            r"'''(?:\\[\s\S]|[^\\])*?'''",
            r'"""(?:\\[\s\S]|[^\\])*?"""',
            r"'(?:\\.|[^'\\\n])*'",
            r'"(?:\\.|[^"\\\n])*"',
        ]
    )
)


def strip_string_literals(source: str) -> str:
    """`source` with the contents of every CEL string literal blanked out (same length).

    Handles '...', "...", triple-quoted and raw (r"...") strings, so that names inside
    literals are not mistaken for references.
    """
    return _STRING_LITERAL.sub(lambda match: _blank(match.group()), source)


def _blank(literal: str) -> str:
    quote_at = 1 if literal[0] in "rR" else 0
    quote = (
        literal[quote_at : quote_at + 3]
        if literal[quote_at : quote_at + 3] in ("'''", '"""')
        else literal[quote_at]
    )
    inner = len(literal) - quote_at - 2 * len(quote)
    return literal[: quote_at + len(quote)] + " " * inner + quote


def to_cel(value: Any) -> Any:
    """A Python value as CEL receives it: Decimal -> float, date -> UTC-midnight timestamp."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or kind is float or value is None:
        return value
    if kind is Decimal:
        return float(value)
    if kind is dt.date:
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if kind is dict:
        return {key: to_cel(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [to_cel(item) for item in value]
    return value


class Evaluator:
    """Evaluates one expression against the values of a submission, memoized.

    `evaluator(values, row, scope)` reads the names the expression uses from `values` (the
    top-level field values), `row` (the current detail-table row, or None) and `scope`
    (`today`, `user`, `totals`). `row_columns` are the columns of the table whose rows the
    expression runs in, so that `row.x` can be read as a projection. Names in `scalars`
    (top-level keys and row columns whose values are never lists or dicts) are read with
    one `itemgetter` call, the common and fast case.
    """

    __slots__ = ("_convert", "_memo", "_read", "_row_key", "expression")

    def __init__(
        self,
        expression: Expression,
        row_columns: frozenset[str] | None = None,
        scalars: frozenset[str] = frozenset(),
    ) -> None:
        self.expression = expression
        self._memo: dict[Any, Any] = {}
        self._read, self._convert, self._row_key = _reader(expression, row_columns, scalars)

    def __call__(self, values: dict[str, Any], row: dict[str, Any] | None, scope: dict[str, Any]) -> Any:
        key = self._read(values, row, scope)
        memo = self._memo
        try:
            return memo[key]
        except KeyError:
            pass
        except TypeError:  # an input that cannot be hashed: evaluate without the memo
            return self.expression.run(self._convert(key))
        result = self.expression.run(self._convert(key))
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        memo[key] = result
        return result

    def each_row(
        self, values: dict[str, Any], rows: list[dict[str, Any]], scope: dict[str, Any]
    ) -> list[Any]:
        """The results for each of `rows`, in order (same as calling once per row, faster).

        When the expression reads only scalar columns of `row`, the memo keys of all rows
        are read and looked up in two C-level passes.
        """
        if self._row_key is None:
            return [self(values, row, scope) for row in rows]
        keys = list(map(self._row_key, rows))
        try:
            results = list(map(self._memo.get, keys, repeat(_MISSING)))
        except TypeError:
            return [self(values, row, scope) for row in rows]
        for index, result in enumerate(results):
            if result is _MISSING:
                results[index] = self(values, rows[index], scope)
        return results

    def clear(self) -> None:
        """Forget memoized results (the benchmark uses this to measure cold evaluation)."""
        self._memo.clear()


Reader = Callable[[dict[str, Any], dict[str, Any] | None, dict[str, Any]], Any]


def _reader(
    expression: Expression, row_columns: frozenset[str] | None, scalars: frozenset[str]
) -> tuple[Reader, Callable[[Any], dict[str, Any]], Callable[[dict[str, Any]], Any] | None]:
    """How to read the memo key of an evaluation, how to turn a key into CEL variables, and,
    when the key is read from the row alone, how to read it from a row."""
    names = tuple(sorted(expression.names))
    if names and all(name in scalars and name not in CONTEXT_NAMES for name in names):
        get = itemgetter(*names)
        if len(names) == 1:
            (name,) = names
            return (lambda values, row, scope: get(values)), (lambda key: {name: to_cel(key)}), None
        return (
            (lambda values, row, scope: get(values)),
            (lambda key: {name: to_cel(part) for name, part in zip(names, key, strict=True)}),
            None,
        )
    attrs = expression.members.get("row")
    if names == ("row",) and row_columns is not None and attrs and attrs <= (scalars & row_columns):
        columns = tuple(sorted(attrs))
        get = itemgetter(*columns)
        if len(columns) == 1:
            (column,) = columns
            return (lambda values, row, scope: get(row)), (lambda key: {"row": {column: to_cel(key)}}), get
        return (
            (lambda values, row, scope: get(row)),
            (lambda key: {"row": {c: to_cel(part) for c, part in zip(columns, key, strict=True)}}),
            get,
        )
    inputs = [_input(name, expression.members.get(name), row_columns) for name in names]
    getters = tuple(getter for getter, _ in inputs)
    converters = tuple(converter for _, converter in inputs)

    def read(values: dict[str, Any], row: dict[str, Any] | None, scope: dict[str, Any]) -> Any:
        return tuple([getter(values, row, scope) for getter in getters])

    def convert(key: Any) -> dict[str, Any]:
        return {name: conv(part) for name, conv, part in zip(names, converters, key, strict=True)}

    return read, convert, None


class _Frozen:
    """A list or dict input wrapped so that it can be a memo key (hashed and compared by value)."""

    __slots__ = ("_hash", "value")

    def __init__(self, value: Any) -> None:
        self.value = value
        self._hash = hash(_freeze(value))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return type(other) is _Frozen and self.value == other.value


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((key, _freeze(item)) for key, item in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(item) for item in value)
    return value


def _key(value: Any) -> Any:
    kind = type(value)
    if kind is list or kind is dict:
        return _Frozen(value)
    return value


def _unkey(part: Any) -> Any:
    return to_cel(part.value) if type(part) is _Frozen else to_cel(part)


def _input(
    name: str, members: frozenset[str] | None, row_columns: frozenset[str] | None
) -> tuple[Reader, Callable[[Any], Any]]:
    """How to read one input (for the memo key) and turn what was read into a CEL value."""
    if name == "row":
        projectable = members is not None and row_columns is not None and members <= row_columns
        if projectable and members is not None and len(members) == 1:
            (attr,) = members
            return (lambda values, row, scope: _key(row[attr])), (  # type: ignore[index]
                lambda part: {attr: _unkey(part)}
            )
        if projectable and members is not None:
            attrs = tuple(sorted(members))
            return (lambda values, row, scope: tuple([_key(row[a]) for a in attrs])), (  # type: ignore[index]
                lambda part: {a: _unkey(item) for a, item in zip(attrs, part, strict=True)}
            )
        return (lambda values, row, scope: _Frozen(row)), _unkey
    if name in CONTEXT_NAMES:
        return (lambda values, row, scope: _key(scope.get(name))), _unkey
    return (lambda values, row, scope: _key(values.get(name))), _unkey
