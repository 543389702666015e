#!/usr/bin/env bash
# Installs, when missing, the programs the tests run as real peers:
# mosquitto (MQTT broker), socat (serial pty pairs), python3-pymodbus
# (an independent Modbus server, with python3-serial). Tests that need one skip with a message
# when it is absent, so this script is a convenience for a fresh machine.
set -euo pipefail
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v socat >/dev/null 2>&1 || need+=(socat)
/usr/bin/python3 -c 'import pymodbus' >/dev/null 2>&1 || need+=(python3-pymodbus)
# pymodbus.server imports serial, which Debian's python3-pymodbus does not pull in.
/usr/bin/python3 -c 'import serial' >/dev/null 2>&1 || need+=(python3-serial)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "test-deps: missing ${need[*]}; run as root or: sudo apt-get install -y ${need[*]}" >&2
  exit 0
fi
echo "test-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
