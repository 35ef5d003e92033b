"""A faster ``__init__`` for frozen, slotted dataclasses built on every trade (orders, fills).

A frozen dataclass's own ``__init__`` sets each field with ``object.__setattr__`` (its
``__setattr__`` refuses): about twice the cost of writing the slot through its descriptor,
which is what :func:`direct_init` does. The class stays frozen; values, defaults, default
factories, equality and ``repr`` are the dataclass's."""

from __future__ import annotations

from dataclasses import MISSING, fields, is_dataclass
from typing import Any, TypeVar

T = TypeVar("T")


def direct_init(cls: type[T]) -> type[T]:
    """Give ``cls`` (a frozen dataclass with ``slots=True``, every field a positional-or-keyword
    ``__init__`` parameter) an ``__init__`` that writes each slot directly."""
    params = getattr(cls, "__dataclass_params__", None)
    if not is_dataclass(cls) or params is None or not params.frozen or "__slots__" not in vars(cls):
        raise TypeError(f"{cls.__name__} is not a frozen dataclass with slots")
    names: dict[str, Any] = {"MISSING": MISSING}
    args, body = ["self"], []
    for f in fields(cls):
        if not f.init or f.kw_only:
            raise TypeError(f"{cls.__name__}.{f.name}: only plain init fields are supported")
        names[f"set_{f.name}"] = vars(cls)[f.name].__set__  # the slot's descriptor
        if f.default is not MISSING:
            names[f"default_{f.name}"] = f.default
            args.append(f"{f.name}=default_{f.name}")
        elif f.default_factory is not MISSING:
            names[f"factory_{f.name}"] = f.default_factory
            args.append(f"{f.name}=MISSING")
            body.append(f"if {f.name} is MISSING: {f.name} = factory_{f.name}()")
        else:
            args.append(f.name)
        body.append(f"set_{f.name}(self, {f.name})")
    source = f"def __init__({', '.join(args)}):\n" + "".join(f"    {line}\n" for line in body)
    exec(source, names)  # the same technique as dataclasses' own generated __init__
    init = names["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = getattr(cls.__init__, "__doc__", None)
    type.__setattr__(cls, "__init__", init)
    return cls
