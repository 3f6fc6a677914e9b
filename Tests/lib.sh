# Tests/lib.sh — helpers shared by the shell test suites (sourced).
# The suite sets pass=0 fail=0 and $tmp before using them.

ok() { pass=$((pass + 1)); echo "PASS $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
# check NAME CMD...: PASS when CMD succeeds, else FAIL with its output indented.
check() { local name=$1; shift; if "$@" >"$tmp/out" 2>&1; then ok "$name"; else bad "$name"; sed 's/^/    /' "$tmp/out"; fi; }
# json EXPR: evaluate a Python expression over the JSON document `d` on stdin.
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
# wait_until SECONDS CMD...: polls CMD every 50 ms; prints the seconds it took, fails after SECONDS.
wait_until() {
	local limit=$1; shift
	local start; start=$(date +%s.%N)
	local deadline; deadline=$(python3 -c "print($start + $limit)")
	while ! "$@" >/dev/null 2>&1; do
		if python3 -c "import sys,time; sys.exit(0 if time.time() > $deadline else 1)"; then return 1; fi
		sleep 0.05
	done
	python3 -c "import time; print(f'{time.time() - $start:.2f}')"
}
# switch_up NS: a namespace holding one bridge (br0), the L2 segment plug() connects to.
switch_up() {
	ip netns add "$1"
	ip -n "$1" link add br0 type bridge
	ip -n "$1" link set br0 up
}
# plug NS SHORT ADDR4 ADDR6: a new namespace NS whose eth0 is a veth port (v-SHORT) of
# the bridge in $sw, lo and eth0 up, ADDR4/24 and ADDR6/64 (no DAD) on eth0.
plug() {
	ip netns add "$1"
	ip link add eth0 netns "$1" type veth peer name "v-$2" netns "$sw"
	ip -n "$sw" link set "v-$2" master br0 up
	ip -n "$1" link set lo up
	ip -n "$1" link set eth0 up
	ip -n "$1" addr add "$3/24" dev eth0
	ip -n "$1" addr add "$4/64" dev eth0 nodad
}
