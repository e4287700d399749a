"""The structural part of validation, described once and interpreted twice.

A `Node` tree says which JSON shape each value must have: scalars with a msgspec type
(constraints included), lists with a length cap, objects with known attributes. From it:

- `fast_type(node)` builds msgspec types (Structs with `forbid_unknown_fields`) so a whole
  submission decodes and is checked in one C pass: the fast path for valid data;
- `Walker` checks a generically decoded document against the same tree, collecting every
  error with its path and message: the slow path, run only when the fast path fails.

Scalars are checked in both paths by msgspec itself (`msgspec.convert` on the slow path),
so the two paths accept exactly the same values; the slow path only adds the messages.
Lists check their length before looking at any item.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from forms.i18n import N_

Describe = Callable[[Any], tuple[str, dict[str, object]]]
"""Given a value msgspec refused: the msgid of the message and its parameters."""

EXPECTED_LIST = N_("Expected a list.")
EXPECTED_OBJECT = N_("Expected an object.")
UNKNOWN_FIELD = N_("Unknown field.")
REQUIRED = N_("This field is required.")

INVALID: Any = object()
"""What the walker returns for a value that failed; the error is already recorded."""


class Node:
    """A shape of a JSON value."""

    __slots__ = ()


class Scalar(Node):
    """A value msgspec checks on its own: `type_` with its constraints (not None)."""

    __slots__ = ("_holder", "describe", "type_")

    def __init__(self, type_: Any, describe: Describe) -> None:
        self.type_ = type_
        self.describe = describe
        self._holder: Any = None

    def convert(self, value: Any) -> Any:
        """`value` checked by msgspec exactly as the fast path checks it; raises ValidationError.

        Goes through a one-field Struct: msgspec looks converters up by type, and hashing a
        Struct class is much cheaper than hashing an `Annotated[...]` or `Literal[...]`.
        """
        holder = self._holder
        if holder is None:
            holder = self._holder = msgspec.defstruct("Value", [("v", self.type_)])
        return msgspec.convert({"v": value}, holder).v


class Opaque(Node):
    """Any JSON value, passed through: checked later by the form's rules (money) or ignored."""

    __slots__ = ()


class ListOf(Node):
    """A list of `item`s, at most `max_items` (checked before the items are looked at).

    `min_items` is 0 or 1: 1 for a required list, reported as "required" when empty.
    """

    __slots__ = ("item", "max_items", "min_items", "too_many")

    def __init__(self, item: Node, max_items: int, too_many: str, min_items: int = 0) -> None:
        self.item = item
        self.max_items = max_items
        self.too_many = too_many
        self.min_items = min_items


class Obj(Node):
    """An object with the given attributes; unknown keys are refused.

    `attrs` maps a key to its node and whether it must be present and non-null. Optional
    attributes default to None.
    """

    __slots__ = ("_list", "_plain", "_struct", "attrs", "name")

    def __init__(self, name: str, attrs: dict[str, tuple[Node, bool]]) -> None:
        self.name = name
        self.attrs = attrs
        self._struct: Any = None
        self._plain: Any = None
        self._list: Any = None

    def list_type(self) -> Any:
        """`list[Struct]` of this object, built once (msgspec caches converters by type)."""
        if self._list is None:
            self._list = list[self.struct()]  # type: ignore[misc]
        return self._list

    def struct(self) -> Any:
        """The Struct type of this object, built once."""
        if self._struct is None:
            fields: list[tuple[str, Any] | tuple[str, Any, Any]] = [
                (key, fast_type(child)) if required else (key, fast_type(child) | None, None)
                for key, (child, required) in self.attrs.items()
            ]
            # gc=False: these hold only plain values, never cycles; untracked they cost the GC nothing.
            self._struct = msgspec.defstruct(
                self.name, fields, kw_only=True, forbid_unknown_fields=True, gc=False
            )
        return self._struct


def fast_type(node: Node) -> Any:
    """The msgspec type that decodes and checks values of `node` in one pass."""
    if isinstance(node, Scalar):
        return node.type_
    if isinstance(node, Opaque):
        return Any
    if isinstance(node, ListOf):
        limits = Meta(min_length=node.min_items, max_length=node.max_items)
        return Annotated[list[fast_type(node.item)], limits]  # type: ignore[misc]
    assert isinstance(node, Obj)
    return node.struct()


def plain(node: Node) -> Callable[[Any], Any] | None:
    """How to turn a decoded fast-path value into plain dicts and lists (None: already plain)."""
    if isinstance(node, ListOf):
        item = plain(node.item)
        if item is None:
            return None
        return lambda items: list(map(item, items))
    if isinstance(node, Obj):
        if node._plain is None:
            node._plain = _plain_object(node)
        return node._plain  # type: ignore[no-any-return]
    return None


def _plain_object(node: Obj) -> Callable[[Any], dict[str, Any]]:
    nested = [(key, conv) for key, (child, _) in node.attrs.items() if (conv := plain(child))]
    asdict = msgspec.structs.asdict
    if not nested:
        return asdict

    def convert(struct: Any) -> dict[str, Any]:
        values = asdict(struct)
        for key, conv in nested:
            value = values[key]
            if value is not None:
                values[key] = conv(value)
        return values

    return convert


class Problems:
    """Where the walker records errors: `add(path, msgid, params)` and the failed paths."""

    __slots__ = ("errors", "invalid")

    def __init__(self) -> None:
        self.errors: list[tuple[str, str, dict[str, object]]] = []
        self.invalid: set[str] = set()

    def add(self, path: str, msgid: str, params: dict[str, object] | None = None) -> None:
        self.errors.append((path, msgid, params or {}))
        self.invalid.add(path)


def walk(node: Node, value: Any, path: str, problems: Problems) -> Any:
    """`value` checked against `node` with every error recorded; `INVALID` if it failed.

    Objects come back as dicts of every attribute (None where missing or invalid), so
    that one bad cell does not hide the rest of its row.
    """
    if isinstance(node, Scalar):
        try:
            return node.convert(value)
        except msgspec.ValidationError:
            msgid, params = node.describe(value)
            problems.add(path, msgid, params)
            return INVALID
    if isinstance(node, Opaque):
        return value
    if isinstance(node, ListOf):
        if type(value) is not list:
            problems.add(path, EXPECTED_LIST)
            return INVALID
        if len(value) > node.max_items:
            problems.add(path, node.too_many, {"max": node.max_items})
            return INVALID
        if len(value) < node.min_items:
            problems.add(path, REQUIRED)
            return INVALID
        item_node = node.item
        if isinstance(item_node, Obj):  # rows: check the whole list in one call first
            try:
                structs = msgspec.convert(value, item_node.list_type())
            except msgspec.ValidationError:
                pass
            else:
                to_dict = plain(item_node)
                return [to_dict(struct) for struct in structs]  # type: ignore[misc]
        items = []
        for index, item in enumerate(value):
            result = walk(node.item, item, f"{path}[{index}]", problems)
            items.append(None if result is INVALID else result)
        return items
    assert isinstance(node, Obj)
    return walk_object(node, value, path, problems)


def walk_object(node: Obj, value: Any, path: str, problems: Problems) -> Any:
    """The `Obj` case of `walk`; `path` "" is the document root (known to have failed)."""
    if type(value) is not dict:
        problems.add(path, EXPECTED_OBJECT)
        return INVALID
    if path:  # most rows of a failing document are fine: check them in one call first
        try:
            struct = msgspec.convert(value, node.struct())
        except msgspec.ValidationError:
            pass
        else:
            return plain(node)(struct)  # type: ignore[misc]
    prefix = f"{path}." if path else ""
    attrs = node.attrs
    result: dict[str, Any] = {}
    for key, (child, required) in attrs.items():
        item = value.get(key)
        if item is None:
            if required:
                problems.add(f"{prefix}{key}", REQUIRED)
            result[key] = None
            continue
        checked = walk(child, item, f"{prefix}{key}", problems)
        result[key] = None if checked is INVALID else checked
    for key in value:
        if key not in attrs:
            problems.add(f"{prefix}{key}", UNKNOWN_FIELD)
    return result
