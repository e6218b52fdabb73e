"""Reachability: the matrix a set of networks promises, and the one packets show.

``expected(Topology)`` is pure; ``virtnet.reach.probe`` sends real packets inside namespaces.
"""

from virtnet.reach.expected import Matrix, PairKey, Verdict, expected
from virtnet.reach.table import SEED_TABLE, Row, rows
from virtnet.reach.topology import Endpoint, Kind, Outside, Topology

__all__ = [
    "SEED_TABLE",
    "Endpoint",
    "Kind",
    "Matrix",
    "Outside",
    "PairKey",
    "Row",
    "Topology",
    "Verdict",
    "expected",
    "rows",
]
