"""The runtime record of an active network: what the engine created, as JSON for the Store.

It holds the definition the network runs with (so reconcile and stop need nothing else) and
exactly the host objects created for it (so stop touches those and nothing more). It is
written with ``state: starting`` *before* the first host change: after a crash the next
start finds the intent and removes whatever part of it exists.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from functools import cache
from typing import Any

from virtnet.model.network import Network

STARTING = "starting"
ACTIVE = "active"
STOPPING = "stopping"


def to_json(obj: Any) -> Any:
    """A frozen dataclass tree as plain JSON values (tuples become lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, tuple | list):
        return [to_json(x) for x in obj]
    return obj


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _from_json(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        arms = [a for a in typing.get_args(tp) if a is not type(None)]
        return _from_json(arms[0], value)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_from_json(args[0], v) for v in value)
        return tuple(_from_json(a, v) for a, v in zip(args, value, strict=True))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        return tp(**{k: _from_json(hints[k], v) for k, v in value.items() if k in hints})
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(value)
    return value


def network_to_json(net: Network) -> dict[str, Any]:
    result = to_json(net)
    assert isinstance(result, dict)
    return result


def network_from_json(data: dict[str, Any]) -> Network:
    net = _from_json(Network, data)
    assert isinstance(net, Network)
    return net
