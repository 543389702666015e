#!/bin/sh
# Run the store's tests, crash test included, as an armhf (GOARCH=arm
# GOARM=7) binary under qemu-user-static, the way the gateway often runs.
# Needs qemu-user-static and binfmt-support (the crash test re-executes its
# own binary, which binfmt hands to qemu); installs them with apt-get when
# run as root. Exits 0 with a message when qemu cannot be had.
#
#   scripts/store-arm-test.sh            # every store test, crash test in full
#   STORE_CRASH_ROUNDS=50 scripts/store-arm-test.sh
set -eu
cd "$(dirname "$0")/.."

if [ ! -e /proc/sys/fs/binfmt_misc/qemu-arm ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	apt-get install -y qemu-user-static binfmt-support >/dev/null || true
	update-binfmts --enable qemu-arm 2>/dev/null || true
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-arm ] || ! grep -q enabled /proc/sys/fs/binfmt_misc/qemu-arm; then
	echo "store-arm-test: SKIP: no binfmt handler for arm (install qemu-user-static and binfmt-support)"
	exit 0
fi

bin=$(mktemp -d)/store-arm.test
trap 'rm -rf "$(dirname "$bin")"' EXIT
GOARCH=arm GOARM=7 go test -c -o "$bin" ./store
file "$bin" 2>/dev/null || true
# A test binary runs in its package's directory, as go test runs it, so
# that testdata/ (the upgrade tests' format-1 file) is found.
cd store
"$bin" -test.count=1 -test.v -test.run 'TestCrash$' | grep -E '^(--- |PASS|FAIL|ok)|rounds killed'
"$bin" -test.count=1 -test.short
