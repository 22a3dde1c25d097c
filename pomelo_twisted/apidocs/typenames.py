"""A msgspec type as Python and TypeScript source text (the stubs' field types)."""

from __future__ import annotations

import msgspec.inspect as mi

__all__ = ["python_type", "typescript_type"]

_PY_SCALARS: dict[type, str] = {
    mi.StrType: "str",
    mi.IntType: "int",
    mi.FloatType: "float",
    mi.BoolType: "bool",
    mi.NoneType: "None",
    mi.BytesType: "bytes",
}
_TS_SCALARS: dict[type, str] = {
    mi.StrType: "string",
    mi.IntType: "number",
    mi.FloatType: "number",
    mi.BoolType: "boolean",
    mi.NoneType: "null",
    mi.BytesType: "string",
}


def python_type(info: mi.Type) -> str:
    """``info`` as a Python annotation (Structs are the stubs' TypedDicts of that name)."""
    scalar = _PY_SCALARS.get(type(info))
    if scalar is not None:
        return scalar
    if isinstance(info, mi.StructType):
        return info.cls.__name__
    if isinstance(info, mi.ListType | mi.VarTupleType | mi.SetType | mi.FrozenSetType):
        return f"list[{python_type(info.item_type)}]"
    if isinstance(info, mi.DictType):
        return f"dict[{python_type(info.key_type)}, {python_type(info.value_type)}]"
    if isinstance(info, mi.UnionType):
        return " | ".join(python_type(t) for t in info.types)
    if isinstance(info, mi.LiteralType):
        return f"Literal[{', '.join(repr(v) for v in info.values)}]"
    return "Any"


def typescript_type(info: mi.Type) -> str:
    """``info`` as a TypeScript type (Structs are the stubs' interfaces of that name)."""
    scalar = _TS_SCALARS.get(type(info))
    if scalar is not None:
        return scalar
    if isinstance(info, mi.StructType):
        return info.cls.__name__
    if isinstance(info, mi.ListType | mi.VarTupleType | mi.SetType | mi.FrozenSetType):
        return f"Array<{typescript_type(info.item_type)}>"
    if isinstance(info, mi.DictType):
        return f"Record<string, {typescript_type(info.value_type)}>"
    if isinstance(info, mi.UnionType):
        return " | ".join(typescript_type(t) for t in info.types)
    if isinstance(info, mi.LiteralType):
        return " | ".join(_ts_literal(v) for v in info.values)
    return "unknown"


def _ts_literal(value: object) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value).lower() if isinstance(value, bool) else str(value)
