#!/usr/bin/env bash
# Tests/fuzz/run.sh [SECONDS] — libFuzzer on the config loader and the pcap reader.
# Builds the two targets (XDPLB_FUZZ=1, -sanitize=fuzzer,address, scratch path
# .build-fuzz: only their modules, apart from the normal build), then runs each
# for SECONDS (default $FUZZ_SECONDS or 30; at most 60 in CI) from the committed
# seed corpus (Tests/fuzz/corpus/NAME) plus a scratch corpus. A crash, a leak,
# an out-of-memory, a hang (-timeout) or a broken invariant (precondition in the
# target) fails the suite and prints the reproducer as base64.
set -o errexit -o nounset -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
secs=${1:-${FUZZ_SECONDS:-30}}
[[ $secs =~ ^[0-9]+$ ]] && ((secs >= 1 && secs <= 3600)) || { echo "fuzz: SECONDS must be 1..3600" >&2; exit 2; }
tmp=$(mktemp -d /tmp/xdplb-fuzz.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
cd "$root"
for t in config pcap; do
	if ! XDPLB_FUZZ=1 swift build --scratch-path .build-fuzz --product "xdplb-fuzz-$t" -Xswiftc -sanitize=fuzzer,address >"$tmp/build-$t.log" 2>&1; then
		echo "FAIL fuzz target $t does not build"; tail -20 "$tmp/build-$t.log"; fail=$((fail + 1)); continue
	fi
	bin=$(XDPLB_FUZZ=1 swift build --scratch-path .build-fuzz --show-bin-path)/xdplb-fuzz-$t
	mkdir -p "$tmp/corpus-$t" "$tmp/artifacts-$t"
	set +e
	# -max_len: configs are small, pcaps of a few frames; -timeout: one input may not take 10 s.
	"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
		-artifact_prefix="$tmp/artifacts-$t/" "$tmp/corpus-$t" "$here/corpus/$t" >"$tmp/fuzz-$t.log" 2>&1
	rc=$?
	set -e
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tmp/fuzz-$t.log" | tail -1)
	took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$tmp/fuzz-$t.log" | tail -1)
	cov=$(grep -oE 'cov: [0-9]+' "$tmp/fuzz-$t.log" | tail -1)
	if [ "$rc" = 0 ] && [ -n "$runs" ]; then
		echo "PASS fuzz $t: ${runs} inputs in ${took:-$secs} s, ${cov:-cov: ?} edges, $(ls "$tmp/corpus-$t" | wc -l) new corpus entries, no crash, hang, leak or broken invariant"
		pass=$((pass + 1))
	else
		echo "FAIL fuzz $t (exit $rc)"
		grep -E 'ERROR|SUMMARY|Fatal error|precondition|==[0-9]+==' "$tmp/fuzz-$t.log" | head -20 | sed 's/^/    /'
		for a in "$tmp/artifacts-$t"/*; do [ -f "$a" ] && { echo "    reproducer $(basename "$a") (base64):"; base64 -w0 "$a" | head -c 4000; echo; }; done
		fail=$((fail + 1))
	fi
done
echo
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
