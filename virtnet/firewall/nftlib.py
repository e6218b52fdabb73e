"""Run nft commands in-process through libnftables (the library the ``nft`` tool is built on).

An ``nft`` process inside a namespace costs ~10 ms (``ip netns exec`` plus nft's own
start-up and library loading); the same transaction through libnftables in this process
costs ~1 ms. libnftables opens its netlink socket when its context is created, and a
socket belongs to the namespace of the thread that creates it, so the context is created
and used inside ``nsenter.entered(netns)`` and freed before the thread leaves it: a cached
context could outlive a namespace deleted and re-created under the same name.

The library comes with Debian's ``nftables`` package (``libnftables1``). Where it cannot be
loaded, or when ``VIRTNET_NFT=process`` is set, every call runs ``nft`` as before.
"""

from __future__ import annotations

import ctypes
import os
import threading
from dataclasses import dataclass
from typing import Any

from virtnet.errors import HostError
from virtnet.host import netns as netns_mod
from virtnet.host.nsenter import entered

LIBRARY = "libnftables.so.1"
ENV = "VIRTNET_NFT"  # "process": always run the nft tool (tests compare both paths)

# enum nft_output_flags (nftables/libnftables.h)
OUTPUT_JSON = 1 << 4


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


class _Lib:
    def __init__(self, lib: ctypes.CDLL) -> None:
        vp, cp, u32 = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint32
        self.ctx_new = _fn(lib.nft_ctx_new, vp, [u32])
        self.ctx_free = _fn(lib.nft_ctx_free, None, [vp])
        self.buffer_output = _fn(lib.nft_ctx_buffer_output, ctypes.c_int, [vp])
        self.buffer_error = _fn(lib.nft_ctx_buffer_error, ctypes.c_int, [vp])
        self.get_output = _fn(lib.nft_ctx_get_output_buffer, cp, [vp])
        self.get_error = _fn(lib.nft_ctx_get_error_buffer, cp, [vp])
        self.set_dry_run = _fn(lib.nft_ctx_set_dry_run, None, [vp, ctypes.c_bool])
        self.output_set_flags = _fn(lib.nft_ctx_output_set_flags, None, [vp, ctypes.c_uint])
        self.run_file = _fn(lib.nft_run_cmd_from_filename, ctypes.c_int, [vp, cp])


def _fn(f: Any, restype: object, argtypes: list[object]) -> Any:
    f.restype = restype
    f.argtypes = argtypes
    return f


_loaded: _Lib | None = None
_tried = False
_load_lock = threading.Lock()


def library() -> _Lib | None:
    """libnftables, or None when it is missing (or VIRTNET_NFT=process)."""
    global _loaded, _tried
    if os.environ.get(ENV) == "process":
        return None
    with _load_lock:
        if not _tried:
            _tried = True
            try:
                _loaded = _Lib(ctypes.CDLL(LIBRARY, use_errno=True))
            except (OSError, AttributeError):
                _loaded = None
    return _loaded


def run(netns: str | None, script: str, *, check_only: bool = False,
        json: bool = False) -> Result:
    """Run SCRIPT (nft syntax, several commands = one transaction) in NETNS. JSON: print
    listings as JSON (SCRIPT is then one command)."""
    lib = library()
    if lib is None:
        if json:  # with -j, nft reads -f input as JSON: pass the (one) command as words
            proc = netns_mod.run(netns, ["nft", "-j", *script.split()], check=False)
        else:
            argv = ["nft", *(["-c"] if check_only else []), "-f", "-"]
            proc = netns_mod.run(netns, argv, input=script, check=False)
        return Result(proc.returncode, proc.stdout or "", proc.stderr or "")
    if netns is not None and not netns_mod.exists(netns):
        netns_mod.prefix(netns)  # raises the NotFound with its hint
    with entered(netns):
        ctx = lib.ctx_new(0)
        if not ctx:
            raise HostError("libnftables could not create a context (out of memory?)",
                            hint=f"set {ENV}=process to use the nft tool instead")
        try:
            lib.buffer_output(ctx)
            lib.buffer_error(ctx)
            if json:
                lib.output_set_flags(ctx, OUTPUT_JSON)
            if check_only:
                lib.set_dry_run(ctx, True)
            # From a file, as ``nft -f`` reads it: from a buffer, libnftables 1.0.6 points
            # a kernel error at the wrong command. A memfd is a file that touches no disk.
            fd = os.memfd_create("virtnet-nft", os.MFD_CLOEXEC)
            try:
                os.write(fd, script.encode())
                os.lseek(fd, 0, os.SEEK_SET)
                path = f"/proc/self/fd/{fd}"
                rc = lib.run_file(ctx, path.encode())
            finally:
                os.close(fd)
            out = (lib.get_output(ctx) or b"").decode(errors="replace")
            err = (lib.get_error(ctx) or b"").decode(errors="replace")
        finally:
            lib.ctx_free(ctx)
    return Result(0 if rc == 0 else 1, out, err.replace(path + ":", "/dev/stdin:"))
