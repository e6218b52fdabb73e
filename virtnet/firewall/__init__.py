"""virtnet's nftables table ``inet virtnet``: rendering (pure) and applying (in a namespace).

Only this one table is ever created, changed or deleted. See ``schema.py`` for its shape,
``elements.py`` for what each network mode contributes, ``render.py`` for the scripts and
``live.py`` for applying, reading back and drift. ``diagnose.foreign_drops`` reports other
tables whose drops would kill virtnet's traffic (in nftables a drop at any table's hook is
final, whatever our table accepted).
"""

from virtnet.firewall.diagnose import foreign_drops
from virtnet.firewall.elements import has_rules, network_elements
from virtnet.firewall.live import (
    apply_script,
    check_script,
    delete_table,
    drift,
    read_table,
    table_digest,
)
from virtnet.firewall.render import render_add, render_remove, render_table
from virtnet.firewall.schema import TABLE, path_rule_count
from virtnet.firewall.sync import add_network, remove_network

__all__ = [
    "TABLE",
    "add_network",
    "remove_network",
    "apply_script",
    "check_script",
    "delete_table",
    "drift",
    "foreign_drops",
    "has_rules",
    "network_elements",
    "path_rule_count",
    "read_table",
    "render_add",
    "render_remove",
    "render_table",
    "table_digest",
]
