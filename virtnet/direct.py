"""macvtap direct modes: ``<forward mode='bridge|private|vepa|passthrough'>`` on host interfaces.

A VM port on such a network is not on any bridge of virtnet's: it is a macvtap device (for
QEMU: a macvlan plus a ``/dev/tapN`` character device) on one interface of the network's pool,
in libvirt's mode of the same name (the kernel calls passthrough ``passthru``). For a VM that is
a namespace (labs, containers) the port is a plain macvlan of the same mode moved into that
namespace. ``<forward mode='bridge'>`` *with* ``<bridge name=...>`` is bridged mode
(``virtnet.bridged``); without one, but with ``dev=``/``<interface>``, it is macvtap bridge mode.

libvirt's rules (``src/network/bridge_driver.c``):
- the pool is the ``<interface dev=...>`` list; ``<forward dev=...>`` alone is a pool of one;
  ``<pf dev=...>`` makes the pool the PF's SR-IOV virtual functions (networkCreateInterfacePool);
- networkAllocatePort: passthrough (and private with an 802.1Qbh virtualport) needs a device
  of its own: the first with no connections, else "requires exclusive access to interfaces,
  but none are available"; bridge/private/vepa share: the least used device, ties to the first;
- hostdev gives each VM an SR-IOV VF by PCI passthrough: that is the hypervisor's job and needs
  SR-IOV hardware, so starting it is refused here with how to check for such hardware.

What virtnet adds at start: every pool device exists in the namespace, is up, is no port of a
bridge or bond (the kernel refuses a macvlan there) and is not Wi-Fi (an access point drops
frames from the VMs' MAC addresses); ``force`` starts anyway with warnings for down/Wi-Fi.

The runtime record's ``direct`` entry lists the ports created, each written *before* its device
is made (``state: creating``), so connection counts survive restarts and stop (or a start after
a crash) deletes exactly the devices virtnet made -- found by name and checked by their alias.
"""

from __future__ import annotations

import contextlib
import errno
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError

from virtnet.errors import (
    Conflict,
    HostError,
    InvalidDefinition,
    NotFound,
    NotSupported,
    UnsafeHostConfig,
)
from virtnet.host import netns as netns_mod
from virtnet.host.links import PORT_ALIAS, Netlink
from virtnet.host.ports import Port, check_name
from virtnet.hostcfg.facts import HostView, LinkKind
from virtnet.model.network import ForwardMode, Network

# libvirt forward mode -> the kernel's macvlan/macvtap mode name
KERNEL_MODES = {
    ForwardMode.BRIDGE: "bridge",
    ForwardMode.PRIVATE: "private",
    ForwardMode.VEPA: "vepa",
    ForwardMode.PASSTHROUGH: "passthru",
}
PORT_KINDS = ("tap", "macvtap", "veth", "macvlan")  # tap = macvtap; veth = macvlan in a netns
SRIOV_HINT = (
    "SR-IOV needs a network card with virtual functions: 'cat /sys/class/net/PF/device/"
    "sriov_totalvfs' shows how many it can have (no such file: none), 'echo N > "
    "/sys/class/net/PF/device/sriov_numvfs' enables them; without such hardware use "
    "mode='bridge' with <interface dev=...> (macvtap) or a host bridge"
)

Save = Callable[[dict[str, Any]], None]


def is_direct(net: Network) -> bool:
    """Whether NET's VMs connect through macvtap (or SR-IOV VFs) on host interfaces."""
    if net.mode is ForwardMode.BRIDGE:
        return not net.bridge_name and net.forward is not None and bool(
            net.forward.dev or net.forward.interfaces or net.forward.pfs)
    return net.mode.is_direct


def kernel_mode(net: Network) -> str:
    try:
        return KERNEL_MODES[net.mode]
    except KeyError:
        raise NotSupported(f"network {net.name!r}: forward mode {net.mode.value!r} makes no "
                           "macvtap devices", element="forward") from None


def exclusive(net: Network) -> bool:
    """libvirt: passthrough, and private with an 802.1Qbh port profile, own a device each."""
    if net.mode is ForwardMode.PASSTHROUGH:
        return True
    vp = net.virtualport
    return net.mode is ForwardMode.PRIVATE and vp is not None and vp.type == "802.1Qbh"


def pool_of(net: Network) -> tuple[str, ...]:
    """The interface pool as defined: the <interface> list, or dev= alone (a pool of one).
    A <pf> pool is its virtual functions, read from the host (``vf_pool``)."""
    fw = net.forward
    if fw is None:
        return ()
    if fw.interfaces:
        return fw.interfaces
    return (fw.dev,) if fw.dev else ()


def select_device(net: Network, pool: Sequence[str], connections: Mapping[str, int]) -> str:
    """libvirt's networkAllocatePort choice of a device for one more port. Pure."""
    if not pool:
        raise InvalidDefinition(
            f"network {net.name!r} uses a direct mode, but has no forward dev and no "
            "interface pool", element="forward",
            hint="give <forward dev=...> or <interface dev=...> elements")
    if exclusive(net):
        for dev in pool:
            if connections.get(dev, 0) == 0:
                return dev
        raise Conflict(
            f"network {net.name!r} requires exclusive access to interfaces, but none are "
            f"available (every device of its pool {', '.join(pool)} has a VM)",
            element="forward",
            hint="delete a port of this network first, or add <interface dev=...> elements",
        )
    best = pool[0]
    for dev in pool[1:]:
        if connections.get(dev, 0) < connections.get(best, 0):
            best = dev
    return best


def allocation(net: Network, count: int, pool: Sequence[str] | None = None) -> list[str | None]:
    """The device each of COUNT ports made one after another gets (None: refused, the pool
    is used up). Pure: what the reach model uses to place VM I of a network."""
    pool = tuple(pool_of(net) if pool is None else pool)
    used: dict[str, int] = {}
    out: list[str | None] = []
    for _ in range(count):
        try:
            dev = select_device(net, pool, used)
        except (Conflict, InvalidDefinition):
            out.append(None)
            continue
        used[dev] = used.get(dev, 0) + 1
        out.append(dev)
    return out


# -- start ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DirectStart:
    network: str
    mode: str  # the kernel's macvlan mode
    pool: tuple[str, ...]
    messages: tuple[str, ...]


def hostdev_refusal(net: Network, sriov: Mapping[str, tuple[int, int]],
                    netns: str | None) -> NotSupported:
    """The error for starting a hostdev network; SRIOV: {PF: (totalvfs, numvfs)} found."""
    where = f"namespace {netns}" if netns else "this host"
    if sriov:
        found = ", ".join(f"{pf} ({num} of {total} VFs enabled)"
                          for pf, (total, num) in sorted(sriov.items()))
        fact = f"{where} has SR-IOV capable interfaces ({found}), but "
    else:
        fact = f"{where} has no SR-IOV capable interface (no */device/sriov_totalvfs), and "
    return NotSupported(
        f"network {net.name!r}: forward mode 'hostdev' gives each VM an SR-IOV virtual "
        "function (VF) of a physical function (PF) by PCI passthrough, which needs SR-IOV "
        f"hardware; {fact}virtnet does not assign PCI devices to VMs (libvirt/QEMU do, "
        "with vfio-pci)",
        element="forward[mode='hostdev']",
        hint=SRIOV_HINT,
    )


def check_direct(net: Network, view: HostView, pool: Sequence[str], *,
                 force: bool = False) -> DirectStart:
    """Pure: the start checks of NET's POOL on the host VIEW shows."""
    mode = kernel_mode(net)
    if not pool:
        select_device(net, pool, {})  # raises: no device at all
    vp = net.virtualport
    if vp is not None and vp.type not in (None, "802.1Qbg", "802.1Qbh"):
        raise NotSupported(
            f"network {net.name!r}: <virtualport type='{vp.type}'> is not supported for a "
            "network which uses a macvtap device", element="virtualport",
            hint="remove it, or use 802.1Qbg/802.1Qbh")
    warnings: list[str] = []
    for dev in pool:
        el = f"forward/interface[dev='{dev}']"
        link = view.get(dev)
        if link is None:
            raise NotFound(
                f"network {net.name!r}: interface {dev} does not exist ({view.source})",
                element=el, hint="name an existing host interface in dev= / <interface dev=...>")
        upper = view.upper_of(dev)
        up_link = view.get(upper) if upper else None
        if up_link is not None and up_link.kind in (LinkKind.BRIDGE, LinkKind.BOND):
            raise UnsafeHostConfig(
                f"network {net.name!r}: interface {dev} is a port of {up_link.kind} {upper}; "
                "the kernel cannot put macvtap devices on it",
                element=el,
                hint=f"use {upper} itself as the device, or attach VMs to bridge {upper} "
                f"(<forward mode='bridge'/> with <bridge name='{upper}'/>)"
                if up_link.kind is LinkKind.BRIDGE else f"use {upper} itself as the device")
        problems = []
        if link.kind is LinkKind.WIRELESS:
            problems.append((
                f"interface {dev} is wireless: Wi-Fi drops frames from MAC addresses other "
                "than the station's own, so macvtap VMs on it get no traffic",
                "use a wired interface, or a nat/route network for VMs on a Wi-Fi host"))
        if link.state == "down":
            problems.append((f"interface {dev} is down: VMs on it would have no connection",
                             f"bring it up (ip link set {dev} up)"))
        for msg, fix in problems:
            if not force:
                raise UnsafeHostConfig(f"network {net.name!r}: {msg}", element=el, hint=fix)
            warnings.append(f"warning (forced): {msg} (fix: {fix})")
    share = "one VM per interface" if exclusive(net) else "interfaces shared, least used first"
    messages = (
        f"macvtap network {net.name!r}: VMs get {mode} mode macvtap devices on "
        f"{', '.join(pool)} ({share}); the host cannot reach its own VMs through them",
        *warnings,
    )
    return DirectStart(net.name, mode, tuple(pool), messages)


def sriov_interfaces(netns: str | None) -> dict[str, tuple[int, int]]:
    """SR-IOV capable interfaces of NETNS: {name: (sriov_totalvfs, sriov_numvfs)}."""
    script = ("cd /sys/class/net 2>/dev/null || exit 0; for d in *; do "
              "[ -r $d/device/sriov_totalvfs ] && echo $d $(cat $d/device/sriov_totalvfs) "
              "$(cat $d/device/sriov_numvfs 2>/dev/null || echo 0); done; true")
    out: dict[str, tuple[int, int]] = {}
    r = netns_mod.run(netns, ["sh", "-c", script])
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            out[parts[0]] = (int(parts[1]), int(parts[2]))
    return out


def vf_pool(net: Network, netns: str | None) -> tuple[str, ...]:
    """The network interfaces of the VFs of NET's <pf> (libvirt's implicit pool)."""
    assert net.forward is not None and net.forward.pfs
    pf = net.forward.pfs[0]
    # the name goes in as $1, never into the script text
    script = ('cd "/sys/class/net/$1/device" 2>/dev/null || exit 0; '
              'for v in virtfn*; do [ -d "$v/net" ] && ls "$v/net"; done; true')
    names = tuple(netns_mod.run(netns, ["sh", "-c", script, "sh", pf]).stdout.split())
    if not names:
        raise NotSupported(
            f"network {net.name!r}: no usable VFs present on SR-IOV PF {pf}",
            element=f"forward/pf[dev='{pf}']", hint=SRIOV_HINT)
    return names


def start_direct(net: Network, *, netns: str | None, force: bool = False) -> DirectStart:
    """Check NET's pool in NETNS. Changes nothing: ports are made one by one later."""
    from virtnet.hostcfg.iplink import read_live

    if net.mode is ForwardMode.HOSTDEV:
        raise hostdev_refusal(net, sriov_interfaces(netns), netns)
    pool = vf_pool(net, netns) if net.forward and net.forward.pfs else pool_of(net)
    started = check_direct(net, read_live(netns), pool, force=force)
    if net.mode is ForwardMode.PASSTHROUGH:
        flux = _arp_flux(netns, pool)
        if flux:
            return replace(started, messages=(*started.messages, flux))
    return started


def _arp_flux(netns: str | None, pool: Sequence[str]) -> str | None:
    """Passthrough gives a pool device the VM's MAC, yet the host still sees the broadcasts
    arriving on it; with arp_ignore=0 it answers ARP for its own addresses there, claiming
    them at the VM's MAC (measured: the host's neighbours then send to the VM)."""
    from virtnet.host import sysctl
    from virtnet.host.nsenter import entered

    with entered(netns):
        values = {d: max(int(sysctl.read(f"net/ipv4/conf/{c}/arp_ignore") or 0)
                         for c in ("all", d)) for d in pool}
    loose = [d for d, v in values.items() if v == 0]
    if not loose:
        return None
    return (f"warning: arp_ignore is 0 on {', '.join(loose)}: the host answers ARP for its "
            "own addresses there with the VM's MAC (ARP flux); set "
            "net.ipv4.conf.all.arp_ignore=1")


def runtime_record(net: Network, started: DirectStart, definition_json: Any) -> dict[str, Any]:
    """The engine's record: no bridge, rules or dnsmasq; ``direct`` holds pool and ports."""
    return {
        "state": "active",
        "definition": definition_json,
        "bridge": "",
        "firewall": False,
        "dnsmasq": None,
        "ports": False,
        "direct": {"mode": started.mode, "pool": list(started.pool), "ports": []},
    }


# -- ports ---------------------------------------------------------------------------------


def connections(rec: Mapping[str, Any]) -> dict[str, int]:
    """Ports per pool device (libvirt's per-device ``connections``)."""
    out: dict[str, int] = {}
    for p in rec["direct"]["ports"]:
        out[p["dev"]] = out.get(p["dev"], 0) + 1
    return out


def _alias(network: str, p: Mapping[str, Any]) -> str:
    peer = f"{p['peer_netns']}/{p['peer_name']}" if p.get("peer_netns") else "-"
    return (f"{PORT_ALIAS}{network} kind={p['kind']} peer={peer} mac={p.get('mac') or '-'} "
            f"dev={p['dev']} port={p['name']}")


def _port(network: str, p: Mapping[str, Any]) -> Port:
    return Port(name=p["name"], network=network, kind=p["kind"], bridge=p["dev"],
                mac=p.get("mac"), peer_netns=p.get("peer_netns"), peer_name=p.get("peer_name"))


def tap_device(nl: Netlink, port: Port) -> str:
    """The character device QEMU opens for a macvtap port: /dev/tap<ifindex>."""
    link = nl.get(port.name)
    if link is None:
        raise NotFound(f"macvtap port {port.name} does not exist")
    return f"/dev/tap{link.index}"


def add_port(
    nl: Netlink,
    rec: dict[str, Any],
    save: Save,
    *,
    network: str,
    kind: str,
    name: str | None,
    peer_netns: str | None,
    peer_name: str,
    mac: str | None,
) -> Port:
    """One port of direct network NETWORK (REC is its runtime record, SAVE stores it)."""
    from virtnet.host.record import network_from_json

    if kind not in PORT_KINDS:
        raise InvalidDefinition(f"port kind {kind!r} is not known", element="port kind",
                                hint="use tap (macvtap, for QEMU) or veth/macvlan (a netns)")
    in_netns = kind in ("veth", "macvlan")
    if in_netns:
        if not peer_netns:
            raise InvalidDefinition(
                "a macvlan port needs the namespace it goes into", element="peer_netns",
                hint="pass peer_netns (--peer-netns NAME), or use kind tap (macvtap)")
        if not netns_mod.exists(peer_netns):
            raise NotFound(f"network namespace {peer_netns!r} does not exist",
                           hint=f"create it first: ip netns add {peer_netns}")
        check_name(peer_name)
    if name is not None:
        check_name(name)
        if any(p["name"] == name for p in rec["direct"]["ports"]) or nl.get(name) is not None:
            raise Conflict(f"cannot create port {name}: an interface of that name exists",
                           hint="choose another port name")
    net = network_from_json(rec["definition"])
    dev = select_device(net, rec["direct"]["pool"], connections(rec))
    lower = nl.get(dev)
    if lower is None:
        raise HostError(f"interface {dev} of network {network!r} is gone",
                        hint="recreate it, or stop the network")
    mode = rec["direct"]["mode"]
    pname = name or ("macvtap" if not in_netns else "vnmv") + secrets.token_hex(3)
    entry: dict[str, Any] = {
        "name": pname, "kind": "macvlan" if in_netns else "macvtap", "dev": dev,
        "mac": mac, "peer_netns": peer_netns if in_netns else None,
        "peer_name": peer_name if in_netns else None, "state": "creating",
        "lower_mac": lower.mac if mode == "passthru" else None,
    }
    rec["direct"]["ports"].append(entry)
    save(rec)  # the intent first: a crash from here on leaves a record stop can act on
    try:
        _create(nl, network, entry, lower.index, mode)
    except BaseException:
        with contextlib.suppress(Exception):
            _remove(nl, network, entry)
        rec["direct"]["ports"].remove(entry)
        save(rec)
        raise
    entry["state"] = "active"
    save(rec)
    return _port(network, entry)


def _create(nl: Netlink, network: str, entry: dict[str, Any], lower: int, mode: str) -> None:
    kind = entry["kind"]
    kw: dict[str, Any] = {"ifname": entry["name"], "kind": kind, "link": lower,
                          f"{kind}_mode": mode}
    if entry["mac"] and mode != "passthru":  # passthru takes the lower device's MAC
        kw["address"] = entry["mac"]
    try:
        _add_link(nl, kw, passthru=mode == "passthru")
    except NetlinkError as exc:
        if exc.code == errno.EEXIST:
            raise Conflict(f"cannot create port {entry['name']}: an interface of that "
                           "name exists", hint="choose another port name") from None
        if exc.code == errno.EINVAL and mode == "passthru":
            raise Conflict(
                f"cannot create a passthrough port on {entry['dev']}: the interface already "
                "carries macvlan/macvtap devices (passthrough needs it alone)",
                hint=f"remove the other macvlan/macvtap devices on {entry['dev']}") from None
        if exc.code == errno.EBUSY:
            raise Conflict(f"interface {entry['dev']} is busy (a port of a bridge or bond?)",
                           hint="use an interface that is no bridge or bond port") from None
        raise HostError(f"cannot create {kind} port on {entry['dev']}: {exc.args[-1]}") from None
    link = nl.get(entry["name"])
    assert link is not None
    if entry["mac"] and mode == "passthru":
        nl._set(link.index, address=entry["mac"])  # sets the device's MAC; undone on delete
    if not entry["mac"]:  # the kernel's random MAC is the one the VM must use
        made = nl.get(entry["name"])
        entry["mac"] = made.mac if made is not None else None
    nl._set(link.index, ifalias=_alias(network, entry))
    if entry["peer_netns"]:
        try:
            nl.ipr.link("set", index=link.index, net_ns_fd=entry["peer_netns"],
                        ifname=entry["peer_name"])
        except NetlinkError as exc:
            raise Conflict(f"cannot move port {entry['name']} into namespace "
                           f"{entry['peer_netns']} as {entry['peer_name']}: {exc.args[-1]}",
                           hint="choose another peer name") from None
    else:
        nl.set_up(link.index)


def _add_link(nl: Netlink, kw: dict[str, Any], *, passthru: bool) -> None:
    """Create the macvlan/macvtap. passthru fails (EINVAL) while the device still carries
    another macvlan, and one whose namespace was just deleted lingers for some milliseconds
    (the kernel dismantles namespaces in a work queue): retry for up to a second."""
    deadline = time.monotonic() + 1.0
    while True:
        try:
            nl.ipr.link("add", **kw)
            return
        except NetlinkError as exc:
            if not (passthru and exc.code == errno.EINVAL) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _owned(link_alias: str | None, network: str, entry: Mapping[str, Any]) -> bool:
    return bool(link_alias) and f"{PORT_ALIAS}{network} " in f"{link_alias} " and (
        f" port={entry['name']}" in f"{link_alias}")


def _remove(nl: Netlink, network: str, entry: Mapping[str, Any]) -> bool:
    """Delete ENTRY's device wherever it is, only if its alias says it is this port.
    False when it no longer exists (its namespace or lower device went away)."""
    gone = True
    link = nl.get(entry["name"])  # not moved yet, or a macvtap
    if link is not None and _owned(link.alias, network, entry):
        nl.delete(entry["name"])
        gone = False
    ns = entry.get("peer_netns")
    if ns and netns_mod.exists(ns):
        with Netlink(ns) as peer:
            link = peer.get(entry["peer_name"])
            if link is not None and _owned(link.alias, network, entry):
                peer.delete(entry["peer_name"])
                gone = False
    lower_mac = entry.get("lower_mac")
    if lower_mac:  # passthrough: the kernel restores the device's MAC; make sure of it
        lower = nl.get(entry["dev"])
        if lower is not None and lower.mac != lower_mac:
            nl._set(lower.index, address=lower_mac)
    return not gone


def _exists(nl: Netlink, network: str, entry: Mapping[str, Any]) -> bool:
    ns = entry.get("peer_netns")
    if ns:
        if not netns_mod.exists(ns):
            return False
        with Netlink(ns) as peer:
            link = peer.get(entry["peer_name"])
    else:
        link = nl.get(entry["name"])
    return link is not None and _owned(link.alias, network, entry)


def list_ports(nl: Netlink, network: str, rec: Mapping[str, Any]) -> list[Port]:
    """The network's ports whose devices exist."""
    return [_port(network, p) for p in rec["direct"]["ports"] if _exists(nl, network, p)]


def delete_port(nl: Netlink, network: str, rec: dict[str, Any], save: Save,
                port_name: str) -> None:
    for entry in rec["direct"]["ports"]:
        if entry["name"] == port_name:
            _remove(nl, network, entry)
            rec["direct"]["ports"].remove(entry)
            save(rec)
            return
    raise NotFound(f"network {network!r} has no port {port_name!r}",
                   hint=f"virtnet port-list {network} shows its ports")


def teardown(nl: Netlink, network: str, rec: Mapping[str, Any]) -> list[str]:
    """Delete every port device the record lists (and nothing else); what was removed."""
    done: list[str] = []
    errors: list[str] = []
    for entry in (rec.get("direct") or {}).get("ports", []):
        try:
            if _remove(nl, network, entry):
                done.append(f"port {entry['name']}")
        except Exception as exc:
            errors.append(f"port {entry['name']}: {exc}")
    if errors:
        raise HostError(f"stopping network {network!r}: could not remove " + "; ".join(errors),
                        hint="run 'virtnet reconcile' to retry")
    return done


def recheck(nl: Netlink, network: str, rec: dict[str, Any], save: Save) -> list[str]:
    """For reconcile: release ports whose device is gone (their VM namespace was deleted, or
    the lower device), and report pool devices that are missing or down (never recreated:
    they are the host's)."""
    out: list[str] = []
    keep = []
    for entry in rec["direct"]["ports"]:
        if _exists(nl, network, entry):
            keep.append(entry)
        else:
            with contextlib.suppress(Exception):
                _remove(nl, network, entry)  # restores a passthrough device's MAC
            out.append(f"port {entry['name']} is gone: released its place on {entry['dev']}")
    if len(keep) != len(rec["direct"]["ports"]):
        rec["direct"]["ports"] = keep
        save(rec)
    for dev in rec["direct"]["pool"]:
        link = nl.get(dev)
        if link is None:
            out.append(f"interface {dev} is gone: VMs on it have no connection (recreate it)")
        elif not link.up:
            out.append(f"interface {dev} is down: VMs on it have no connection "
                       f"(ip link set {dev} up)")
    return out
