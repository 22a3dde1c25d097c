"""JSON patterns of the vectors: what a server's answer must look like, and templates filled
with what the run learned.

A pattern is JSON. A literal matches an equal value. An object matches an object that has
every key of the pattern (more keys are allowed: clients ignore fields they do not know);
``"?key"`` may be absent, ``"!key"`` must be absent. A string ``"$KIND"`` matches by kind:
``$any``, ``$number``, ``$int``, ``$string``, ``$bool``, ``$object``, ``$array``, ``$error``
(any value but 200: an error code); ``"$KIND:NAME"`` also stores the value as variable
``NAME``. In a template, the string ``"${NAME}"`` is replaced by that variable's value.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["MissingVariable", "kind_names", "match", "substitute"]


class MissingVariable(KeyError):
    """A template names a variable the run does not have."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"no value for ${{{self.name}}}"


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_KINDS: dict[str, Callable[[Any], bool]] = {
    "any": lambda value: True,
    "number": _number,
    "int": lambda value: _number(value) and float(value).is_integer(),
    "string": lambda value: isinstance(value, str),
    "bool": lambda value: isinstance(value, bool),
    "object": lambda value: isinstance(value, dict),
    "array": lambda value: isinstance(value, list),
    "error": lambda value: value != 200,
}


def kind_names() -> list[str]:
    """The kinds a ``$KIND`` placeholder may name."""
    return sorted(_KINDS)


def match(pattern: Any, value: Any, captured: dict[str, Any], path: str = "") -> str | None:
    """None when ``value`` matches ``pattern`` (storing captures in ``captured``), else what
    differs, naming the place (``sys.heartbeat: expected a number, got "3"``)."""
    where = path or "the body"
    if isinstance(pattern, str) and pattern.startswith("$") and not pattern.startswith("${"):
        kind, _, name = pattern[1:].partition(":")
        test = _KINDS.get(kind)
        if test is None:
            raise ValueError(f"unknown placeholder {pattern!r} at {where}")
        if not test(value):
            wanted = "an error code" if kind == "error" else kind
            return f"{where}: expected {wanted}, got {_show(value)}"
        if name:
            captured[name] = value
        return None
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return f"{where}: expected an object, got {_show(value)}"
        for key, sub in pattern.items():
            name = key[1:] if key[:1] in ("?", "!") else key
            inner = f"{path}.{name}" if path else name
            if key.startswith("!"):
                if name in value:
                    return f"{inner}: must be absent, got {_show(value[name])}"
                continue
            if name not in value:
                if key.startswith("?"):
                    continue
                return f"{inner}: missing"
            problem = match(sub, value[name], captured, inner)
            if problem is not None:
                return problem
        return None
    if isinstance(pattern, list):
        if not isinstance(value, list) or len(value) != len(pattern):
            return f"{where}: expected a list of {len(pattern)}, got {_show(value)}"
        for index, (sub, item) in enumerate(zip(pattern, value, strict=True)):
            problem = match(sub, item, captured, f"{path}[{index}]")
            if problem is not None:
                return problem
        return None
    if _number(pattern) and _number(value):
        same = pattern == value
    else:
        same = type(pattern) is type(value) and pattern == value
    return None if same else f"{where}: expected {_show(pattern)}, got {_show(value)}"


def substitute(template: Any, variables: Mapping[str, Any]) -> Any:
    """``template`` with every ``"${NAME}"`` string replaced by ``variables[NAME]``;
    :class:`MissingVariable` when one is not there."""
    if isinstance(template, str) and template.startswith("${") and template.endswith("}"):
        name = template[2:-1]
        if name not in variables:
            raise MissingVariable(name)
        return variables[name]
    if isinstance(template, dict):
        return {key: substitute(value, variables) for key, value in template.items()}
    if isinstance(template, list):
        return [substitute(item, variables) for item in template]
    return template


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= 60 else text[:57] + "..."
