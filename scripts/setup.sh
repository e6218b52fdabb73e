#!/usr/bin/env bash
# Installs everything virtnet and its tests need on a Debian 12 machine (as root), idempotently:
# the system tools it drives and a Python environment in .venv with virtnet installed.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(python3 python3-venv python3-pip iproute2 nftables dnsmasq-base udhcpc iperf3 iputils-ping conntrack
              procps util-linux kmod ca-certificates ovn-central
              openvswitch-switch ovn-host)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # No package may start a service (ovn-central's ovsdb-server/ovn-northd, openvswitch-switch's
  # ovsdb-server/ovs-vswitchd, ovn-host's ovn-controller): a policy-rc.d
  # that refuses every start, for this install only, unless the machine already has one.
  policy=/usr/sbin/policy-rc.d made_policy=
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
    trap '[[ -z $made_policy ]] || rm -f "$policy"' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [[ -n $made_policy ]]; then rm -f "$policy"; made_policy=; fi
fi

# Debian's python, so the environment is the same on every fresh machine.
PY=/usr/bin/python3
stamp=.venv/.virtnet-installed
if [[ ! -x .venv/bin/python || ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  echo "setup: building .venv" >&2
  [[ -x .venv/bin/python ]] || "$PY" -m venv .venv
  # Quiet on success; the whole pip log on failure.
  log=$(mktemp)
  if ! { .venv/bin/pip install -q --upgrade pip && .venv/bin/pip install -q -e '.[dev]'; } >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"; exit 1
  fi
  rm -f "$log"
  touch "$stamp"
fi
