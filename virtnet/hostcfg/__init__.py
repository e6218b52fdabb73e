"""Host configuration for bridged mode: inspect bridges, bonds and uplinks, apply the rules,
and write host configuration that passes them.

- ``read_sysfs(root)``: a live host (or a fixture tree) from sysfs/procfs under ``root``.
- ``read_files(paths)``: NetworkManager keyfiles and nmstate YAML, for a host not set up yet.
- ``check_view(view, bridges, force=...)`` / ``check_bridge(...)``: the rules, as ``Verdict``s
  in a ``CheckReport`` (``.raise_if_refused()`` raises UnsafeHostConfig).
- ``make_spec(...)``, ``check_spec``, ``render_nmstate`` / ``render_keyfiles`` /
  ``render_nmcli``: a bridge (on a bond) that passes the rules.
"""

from virtnet.hostcfg.facts import BondSettings, HostView, Link, LinkKind
from virtnet.hostcfg.files import read_files
from virtnet.hostcfg.generate import (
    BridgeSpec,
    check_spec,
    make_spec,
    render_keyfiles,
    render_nmcli,
    render_nmstate,
)
from virtnet.hostcfg.modes import MODES, BondMode, parse_mode
from virtnet.hostcfg.rules import (
    CheckReport,
    Severity,
    Verdict,
    check_bond,
    check_bridge,
    check_view,
)
from virtnet.hostcfg.sysfs import parse_proc_bonding, read_sysfs

__all__ = [
    "MODES",
    "BondMode",
    "BondSettings",
    "BridgeSpec",
    "CheckReport",
    "HostView",
    "Link",
    "LinkKind",
    "Severity",
    "Verdict",
    "check_bond",
    "check_bridge",
    "check_spec",
    "check_view",
    "make_spec",
    "parse_mode",
    "parse_proc_bonding",
    "read_files",
    "read_sysfs",
    "render_keyfiles",
    "render_nmcli",
    "render_nmstate",
]
