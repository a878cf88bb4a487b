#!/usr/bin/env bash
# Build the lab's base root filesystem (Debian minbase + systemd + a Salt minion
# in /opt/saltstack/venv). Called by labctl with: DEST DISTRO MIRROR WHEELDIR.
# labctl caches the result under a name hashed from this file, so any change
# here rebuilds it. WHEELDIR holds wheels for the node's Python, and under src/
# the sources of pins PyPI has no such wheel for (crosswheels.py).
set -euo pipefail
dest=$1 distro=$2 mirror=$3 wheels=$4
tmp="$dest.tmp"
rm -rf "$tmp"
mkdir -p "$tmp"

include=systemd,systemd-sysv,dbus,iproute2,python3,python3-venv,ca-certificates
include+=,procps,less,curl,iputils-ping,netbase,debconf-utils,tzdata,gnupg,apt-utils
debootstrap --variant=minbase --include="$include" "$distro" "$tmp" "$mirror"

# No daemon starts during the build; removed again at the end.
printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
chmod 755 "$tmp/usr/sbin/policy-rc.d"

# apt sources like the host's (nodes fetch through the lab's apt-cacher-ng).
rm -f "$tmp/etc/apt/sources.list"
sec=$(dirname "$mirror")/debian-security
cat >"$tmp/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $mirror
Suites: $distro $distro-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $sec
Suites: $distro-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC

# Salt minion from the host-built wheels.
mkdir -p "$tmp/tmp/wheels"
cp -r "$wheels"/. "$tmp/tmp/wheels/"
# Pins with no wheel for this Python (a node Python other than the host's):
# built here by the node's own interpreter, then the compiler goes again.
if [ -d "$tmp/tmp/wheels/src" ]; then
    build_pkgs="gcc libc6-dev python3-dev"
    chroot "$tmp" apt-get update -q
    chroot "$tmp" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $build_pkgs
    chroot "$tmp" python3 -m venv /tmp/build-venv
    chroot "$tmp" sh -c '/tmp/build-venv/bin/pip install -q --no-index /tmp/wheels/build/*.whl'
    chroot "$tmp" sh -c 'cd /tmp/wheels && /tmp/build-venv/bin/pip wheel -q --no-index --no-deps \
        --no-build-isolation -w /tmp/wheels src/*'
    chroot "$tmp" env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q --autoremove $build_pkgs
    rm -rf "$tmp/tmp/build-venv"
fi
chroot "$tmp" python3 -m venv /opt/saltstack/venv
chroot "$tmp" sh -c '/opt/saltstack/venv/bin/pip install -q --no-index --no-deps /tmp/wheels/*.whl'
rm -rf "$tmp/tmp/wheels"
for b in salt-call salt-minion; do ln -sf /opt/saltstack/venv/bin/$b "$tmp/usr/local/bin/$b"; done
mkdir -p "$tmp/etc/salt/minion.d" "$tmp/etc/salt/pki/minion"
cat >"$tmp/etc/systemd/system/salt-minion.service" <<'UNIT'
[Unit]
Description=Salt minion (lab, /opt/saltstack/venv)
After=network.target

[Service]
Type=simple
ExecStart=/opt/saltstack/venv/bin/salt-minion
KillMode=process
Restart=on-failure
RestartSec=2
LimitNOFILE=8192

[Install]
WantedBy=multi-user.target
UNIT

# Network: systemd-networkd configures host0 (file written per node by labctl).
chroot "$tmp" systemctl enable systemd-networkd.service salt-minion.service
: >"$tmp/etc/resolv.conf"
# No getty on the console: nodes run headless.
chroot "$tmp" systemctl mask console-getty.service getty@.service
echo 'root:lab' | chroot "$tmp" chpasswd

chroot "$tmp" apt-get clean
rm -rf "$tmp"/var/lib/apt/lists/*
rm -f "$tmp/usr/sbin/policy-rc.d" "$tmp/etc/machine-id"
: >"$tmp/etc/machine-id"
mv "$tmp" "$dest"
