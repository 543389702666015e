#!/usr/bin/env bash
# Installs, when missing, the programs the tests run as real peers:
# mosquitto (MQTT broker), socat (serial pty pairs), python3-pymodbus
# (an independent Modbus server, with python3-serial), and for packaging/: lintian, debootstrap,
# systemd-container (systemd-nspawn), systemd (systemd-analyze) and
# qemu-user-static with binfmt-support (arm64/armhf containers). Tests that
# need one skip with a message when it is absent, and fail under CI=true
# (internal/testenv), where this script has run.
set -euo pipefail
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v socat >/dev/null 2>&1 || need+=(socat)
# ip sets up the loopback of the private network namespace of the ONVIF discovery test.
command -v ip >/dev/null 2>&1 || need+=(iproute2)
/usr/bin/python3 -c 'import pymodbus' >/dev/null 2>&1 || need+=(python3-pymodbus)
# pymodbus.server imports serial, which Debian's python3-pymodbus does not pull in.
/usr/bin/python3 -c 'import serial' >/dev/null 2>&1 || need+=(python3-serial)
# pymodbus 3.0 (Debian 12) also imports serial_asyncio for its serial server.
/usr/bin/python3 -c 'import serial_asyncio' >/dev/null 2>&1 || need+=(python3-serial-asyncio)
command -v lintian >/dev/null 2>&1 || need+=(lintian)
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
command -v systemd-nspawn >/dev/null 2>&1 || need+=(systemd-container)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v qemu-aarch64-static >/dev/null 2>&1 || need+=(qemu-user-static)
command -v update-binfmts >/dev/null 2>&1 || [ -x /usr/sbin/update-binfmts ] || need+=(binfmt-support)
if [ "$(id -u)" -ne 0 ]; then
  [ ${#need[@]} -eq 0 ] || echo "test-deps: missing ${need[*]}; run as root or: sudo apt-get install -y ${need[*]}" >&2
  exit 0
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "test-deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# arm64/armhf containers run their binaries through binfmt_misc: register
# qemu where the kernel allows it (packaging tests skip otherwise).
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] && command -v update-binfmts >/dev/null 2>&1; then
  mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
  update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
  update-binfmts --enable qemu-arm >/dev/null 2>&1 || true
fi
