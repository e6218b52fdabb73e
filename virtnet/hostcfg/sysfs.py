"""Read a host's links and bonds from sysfs and procfs, under a configurable root directory.

The files and their formats are the kernel's (drivers/net/bonding/bond_sysfs.c and
bond_procfs.c): ``/sys/class/net/bonding_masters`` ("bond0 bond1\\n"),
``/sys/class/net/BOND/bonding/mode`` ("active-backup 1\\n"), ``miimon`` and ``arp_interval``
("100\\n"), ``arp_ip_target`` and ``slaves`` (space-separated, empty when none),
``/sys/class/net/BR/brif/`` (one entry per bridge port), and ``/proc/net/bonding/BOND``
("Bonding Mode: fault-tolerance (active-backup)", "MII Polling Interval (ms): 100", ...).
Tests point ``root`` at fixture trees; on a live host it is ``/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from virtnet.errors import HostError
from virtnet.hostcfg.facts import BondSettings, HostView, Link, LinkKind
from virtnet.hostcfg.modes import parse_mode

ARPHRD_ETHER = "1"
IFF_UP = 0x1


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError):
        return None


def _int(path: Path, text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise HostError(f"{path}: expected a number, read {text.strip()!r}") from None


@dataclass(frozen=True)
class ProcBond:
    """What /proc/net/bonding/BOND says about a bond."""

    settings: BondSettings
    slaves: tuple[str, ...]
    mii_status: str | None


def parse_proc_bonding(text: str, *, where: str = "/proc/net/bonding") -> ProcBond:
    """Parse bond_procfs.c's output. The master part ends at the first "Slave Interface:";
    only the master's "MII Polling Interval" and "ARP ..." lines count."""
    mode_text: str | None = None
    miimon = arp_interval = 0
    targets: tuple[str, ...] = ()
    slaves: list[str] = []
    mii_status: str | None = None
    in_master = True
    for raw in text.splitlines():
        key, sep, value = raw.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "Slave Interface":
            in_master = False
            slaves.append(value)
        elif not in_master:
            continue
        elif key == "Bonding Mode":
            # "fault-tolerance (active-backup) (fail_over_mac active)": drop the suffix
            mode_text = value.split(" (fail_over_mac")[0]
        elif key == "MII Polling Interval (ms)":
            miimon = _int(Path(where), value)
        elif key == "ARP Polling Interval (ms)":
            arp_interval = _int(Path(where), value)
        elif key == "ARP IP target/s (n.n.n.n form)":
            targets = tuple(t.strip() for t in value.split(",") if t.strip())
        elif key == "MII Status" and mii_status is None:
            mii_status = value
    if mode_text is None:
        raise HostError(f"{where}: no 'Bonding Mode:' line; not a bonding status file")
    mode = parse_mode(mode_text, where=where)
    return ProcBond(BondSettings(mode, miimon, arp_interval, targets), tuple(slaves), mii_status)


def _read_bond_sysfs(dev: Path) -> tuple[BondSettings, tuple[str, ...]] | None:
    bonding = dev / "bonding"
    mode_text = _read(bonding / "mode")
    if mode_text is None:
        return None
    miimon_text = _read(bonding / "miimon") or "0"
    arp_text = _read(bonding / "arp_interval") or "0"
    settings = BondSettings(
        parse_mode(mode_text, where=str(bonding / "mode")),
        _int(bonding / "miimon", miimon_text),
        _int(bonding / "arp_interval", arp_text),
        tuple((_read(bonding / "arp_ip_target") or "").split()),
    )
    return settings, tuple((_read(bonding / "slaves") or "").split())


def _state(dev: Path) -> str | None:
    """ "down" when the device is not set up (IFF_UP clear in ``flags``), else "up"; a bridge
    with no carrier (all its ports down) is still up for attaching VMs. Without ``flags``,
    the operstate as it reads."""
    flags = (_read(dev / "flags") or "").strip()
    if flags:
        try:
            return "up" if int(flags, 16) & IFF_UP else "down"
        except ValueError:
            pass
    return (_read(dev / "operstate") or "").strip() or None


def _kind(dev: Path, uevent: str, is_bond: bool) -> LinkKind:
    devtype = ""
    for line in uevent.splitlines():
        if line.startswith("DEVTYPE="):
            devtype = line.split("=", 1)[1].strip()
    if is_bond or (dev / "bonding").is_dir() or devtype == "bond":
        return LinkKind.BOND
    if (dev / "bridge").is_dir() or devtype == "bridge":
        return LinkKind.BRIDGE
    # wireless/ is there for drivers with wireless extensions, phy80211 for every cfg80211 one
    if (dev / "wireless").is_dir() or os.path.lexists(dev / "phy80211") or devtype == "wlan":
        return LinkKind.WIRELESS
    if (dev / "tun_flags").exists():
        return LinkKind.TAP
    if devtype == "vlan":
        return LinkKind.VLAN
    if (_read(dev / "type") or "").strip() == ARPHRD_ETHER:
        return LinkKind.ETHERNET
    return LinkKind.OTHER


def link_kind(root: str | Path, name: str) -> LinkKind | None:
    """What ROOT/sys/class/net/NAME is, or None when there is no such interface."""
    dev = Path(root) / "sys" / "class" / "net" / name
    if not dev.is_dir():
        return None
    return _kind(dev, _read(dev / "uevent") or "", False)


def read_sysfs(root: str | Path = "/") -> HostView:
    """Every interface under ROOT/sys/class/net, with bridge ports, bond settings and ports
    (sysfs first; /proc/net/bonding/BOND when the sysfs bonding files cannot be read)."""
    root = Path(root)
    net = root / "sys" / "class" / "net"
    if not net.is_dir():
        raise HostError(
            f"{net} does not exist",
            hint="pass --sysfs-root pointing at a directory that holds sys/class/net",
        )
    masters = set((_read(net / "bonding_masters") or "").split())
    proc_dir = root / "proc" / "net" / "bonding"
    links: dict[str, Link] = {}
    for entry in sorted(os.listdir(net)):
        dev = net / entry
        if not dev.is_dir():
            continue  # bonding_masters and other files
        kind = _kind(dev, _read(dev / "uevent") or "", entry in masters)
        state = _state(dev)
        ports: tuple[str, ...] = ()
        bond: BondSettings | None = None
        origin = str(dev)
        if kind is LinkKind.BRIDGE:
            try:
                ports = tuple(sorted(os.listdir(dev / "brif")))
            except FileNotFoundError:
                ports = ()
        elif kind is LinkKind.BOND:
            found = _read_bond_sysfs(dev)
            if found is None:
                proc_text = _read(proc_dir / entry)
                if proc_text is None:
                    raise HostError(
                        f"bond {entry}: neither {dev / 'bonding'} nor {proc_dir / entry} "
                        "can be read",
                        hint="run as a user who can read sysfs, or check the bond by its "
                        "NetworkManager keyfile with 'virtnet host check FILE'",
                    )
                proc = parse_proc_bonding(proc_text, where=str(proc_dir / entry))
                found = (proc.settings, proc.slaves)
                origin = str(proc_dir / entry)
            bond, ports = found
        lower = tuple(sorted(n[len("lower_") :] for n in os.listdir(dev) if n.startswith("lower_")))
        links[entry] = Link(entry, kind, state, ports, lower, bond, origin)
    return HostView(links, source=f"sysfs under {root}")
