#!/bin/sh
# Installs the lab's system tools from Debian's packages when missing (needs root); systemd-analyze checks
# the units of deploy/systemd (tests/deploy/test_systemd_units.py).
# Safe to run again: only the missing packages are installed, apt-get update runs at most once.
set -eu

# package -> a file it installs, to tell whether it is present
PACKAGES="
docker.io:/usr/sbin/dockerd
docker-registry:/usr/bin/docker-registry
wireguard-go:/usr/bin/wireguard-go
wireguard-tools:/usr/bin/wg
busybox-static:/bin/busybox
nftables:/usr/sbin/nft
iproute2:/usr/sbin/ip
curl:/usr/bin/curl
systemd:/usr/bin/systemd-analyze
"

if [ "$(id -u)" != 0 ]; then
    echo "install_lab_deps: needs root" >&2
    exit 1
fi

missing=""
for entry in $PACKAGES; do
    pkg=${entry%%:*}
    probe=${entry#*:}
    # busybox (dynamic) also ships /bin/busybox; the lab image needs the static build
    if [ "$pkg" = busybox-static ]; then
        dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
        continue
    fi
    [ -e "$probe" ] || missing="$missing $pkg"
done

if [ -z "$missing" ]; then
    echo "install_lab_deps: everything present"
    exit 0
fi

echo "install_lab_deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -o DPkg::Lock::Timeout=600
# shellcheck disable=SC2086  # word splitting of the package list is wanted
apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=600 $missing
