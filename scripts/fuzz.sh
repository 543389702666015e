#!/bin/sh
# fuzz.sh runs every fuzz target of the module for a while each, one at a
# time with -parallel 1 (the box and CI are shared), and fails when any
# finds a crasher (written to the package's testdata/fuzz/FuzzXxx/).
#
#   scripts/fuzz.sh 5s          # the short pass `make test` runs
#   scripts/fuzz.sh 10m         # the long one (`make fuzz`)
#   scripts/fuzz.sh 60s ./osap  # the targets of some packages only
#
# Targets are found with `go test -list 'Fuzz.*'` in each package whose
# tests define one, so a new target is run without editing this script.
# It prints one line per target: package, target, time, execs as the
# fuzzer last reported them, and ok or FAIL.
set -u
GO=${GO:-go}
time=${1:-5s}
[ $# -gt 0 ] && shift
pkgs="$*"
if [ -z "$pkgs" ]; then
	# Packages whose tests define a fuzz target (-list decides which).
	pkgs=$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u)
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
failed=0
total=0
for pkg in $pkgs; do
	case $pkg in ./*|/*) ;; *) pkg=./$pkg ;; esac
	targets=$($GO test -list 'Fuzz.*' "$pkg" | grep '^Fuzz') || {
		echo "fuzz.sh: cannot list the targets of $pkg" >&2
		failed=1
		continue
	}
	for t in $targets; do
		total=$((total + 1))
		result=FAIL
		for try in 1 2 3; do
			if $GO test -run '^$' -fuzz "^$t\$" -fuzztime "$time" -parallel 1 "$pkg" >"$log" 2>&1; then
				result=ok
				break
			fi
			# Go's fuzzing coordinator can report "context deadline
			# exceeded" at the end of -fuzztime when a worker is slow to
			# stop (seen on loaded and on idle boxes alike): no input
			# failed and none is written. Run the target again; when it
			# keeps doing that, it is not a finding: say so and go on.
			if grep -q 'Failing input written' "$log" || ! grep -q 'context deadline exceeded' "$log"; then
				break
			fi
			if [ "$try" -eq 3 ]; then
				result="ok (the fuzzer's deadline noise, no failing input)"
				break
			fi
			echo "fuzz.sh: $pkg $t: worker slow to stop at the deadline, no crasher; running it again" >&2
		done
		case $result in ok*) ;; *) failed=1 ;; esac
		execs=$(grep -o 'execs: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
		printf '%-32s %-28s %6s %12s execs  %s\n' "$pkg" "$t" "$time" "${execs:-?}" "$result"
		if [ "$result" = FAIL ]; then
			sed 's/^/    /' "$log"
		fi
	done
done
if [ $total -eq 0 ]; then
	echo "fuzz.sh: no fuzz targets found" >&2
	exit 1
fi
if [ $failed -ne 0 ]; then
	echo "fuzz.sh: a target failed (output above); a crasher is written to its package's testdata/fuzz: commit it with the fix" >&2
	exit 1
fi
