#!/bin/sh
# debversion.sh [GITVERSION] prints the Debian version of a build: the
# output of `git describe --tags --always --dirty` (the binary's version)
# turned into a native Debian version that sorts the way the commits do.
#
#   v1.2.3                    1.2.3
#   v1.2.3-rc1                1.2.3~rc1
#   v1.2.3-4-gabc1234         1.2.3+4.gabc1234
#   v1.2.3-4-gabc1234-dirty   1.2.3+4.gabc1234.dirty
#   abc1234 (no tag yet)      0.0.0+N.gabc1234, N = commits on HEAD
#   anything else             0.0.0~dev
set -eu
v=${1:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
dirty=
case "$v" in
*-dirty) dirty=.dirty; v=${v%-dirty} ;;
esac
v=${v#v}
if printf '%s' "$v" | grep -Eq '^[0-9a-f]{4,40}$'; then
	# An abbreviated commit: no tag yet.
	n=$(git rev-list --count HEAD 2>/dev/null || echo 0)
	printf '0.0.0+%s.g%s%s\n' "$n" "$v" "$dirty"
	exit 0
fi
case "$v" in
[0-9]*)
	if printf '%s' "$v" | grep -Eq -- '-[0-9]+-g[0-9a-f]+$'; then
		base=$(printf '%s' "$v" | sed -E 's/-[0-9]+-g[0-9a-f]+$//')
		tail=$(printf '%s' "$v" | sed -E 's/^.*-([0-9]+)-(g[0-9a-f]+)$/+\1.\2/')
	else
		base=$v
		tail=
	fi
	# A pre-release (1.2.3-rc1) sorts before its release; native versions
	# have no other hyphen.
	base=$(printf '%s' "$base" | sed -e 's/-/~/' -e 's/-/./g')
	printf '%s%s%s\n' "$base" "$tail" "$dirty"
	;;
*)
	printf '0.0.0~dev%s\n' "$dirty"
	;;
esac
