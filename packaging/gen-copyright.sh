#!/bin/sh
# gen-copyright.sh MAINTAINER BINARY... writes a machine-readable
# (DEP-5) copyright file to stdout: packaging/copyright.in, then one stanza
# for the Go standard library and one per Go module linked into the
# binaries (from `go version -m`), with the
# licence text found in the module cache. A module whose licence file
# cannot be found fails the build rather than ship an incomplete file.
set -eu
here=$(dirname "$0")
maint=$1
shift
indent() {
	sed -e 's/[[:space:]]*$//' -e 's/^$/./' -e 's/^/ /' "$1"
}
sed "s|@MAINTAINER@|$maint|" "$here/copyright.in"
modcache=$(go env GOMODCACHE)
# The Go runtime and standard library are linked into every binary.
printf '\nFiles: go-modules/std/*\nCopyright: The Go Authors\nLicense: BSD-3-clause\n'
indent "$(go env GOROOT)/LICENSE"
go version -m "$@" | awk '$1 == "dep" { print $2, $3 }' | sort -u | while read -r mod ver; do
	# The module cache escapes capitals as !lower.
	esc=$(printf '%s' "$mod" | sed 's/\([A-Z]\)/!\1/g' | tr 'A-Z' 'a-z')
	dir="$modcache/$esc@$ver"
	lic=$(ls "$dir" 2>/dev/null | grep -i -E '^(licen[cs]e|copying)' | head -n 1 || true)
	if [ -z "$lic" ]; then
		echo "gen-copyright: no licence file for $mod $ver in $dir" >&2
		exit 1
	fi
	text="$dir/$lic"
	if grep -q 'Apache License' "$text"; then name=Apache-2.0
	elif grep -q 'Eclipse Public License - v 2.0' "$text"; then name=EPL-2.0
	elif grep -q 'Permission is hereby granted, free of charge' "$text"; then name=Expat
	elif grep -q 'Neither the name' "$text"; then name=BSD-3-clause
	elif grep -q 'Redistribution and use in source and binary forms' "$text"; then name=BSD-2-clause
	elif grep -q 'Mozilla Public License' "$text"; then name=MPL-2.0
	else name="other-$(printf '%s' "$mod" | tr '/.' '--')"
	fi
	printf '\nFiles: go-modules/%s/*\nCopyright: the authors of %s %s\nLicense: %s\n' "$mod" "$mod" "$ver" "$name"
	case "$name" in
	Apache-2.0|MPL-2.0)
		# Debian ships these texts; lintian wants a reference, not a copy.
		printf ' On Debian systems, the complete text of this licence is in\n /usr/share/common-licenses/%s.\n' "$name"
		;;
	*)
		# Licence text: every line indented by one space, empty lines as " .".
		indent "$text"
		;;
	esac
	notice=$(ls "$dir" | grep -i -E '^notice' | head -n 1 || true)
	if [ -n "$notice" ]; then
		echo "Comment: the module's $notice file:"
		indent "$dir/$notice"
	fi
done
