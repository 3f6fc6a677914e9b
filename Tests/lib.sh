# Tests/lib.sh — helpers shared by the shell test suites (sourced).
# The suite sets pass=0 fail=0 and $tmp before using them.

ok() { pass=$((pass + 1)); echo "PASS $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
# check NAME CMD...: PASS when CMD succeeds, else FAIL with its output indented.
check() { local name=$1; shift; if "$@" >"$tmp/out" 2>&1; then ok "$name"; else bad "$name"; sed 's/^/    /' "$tmp/out"; fi; }
# says TEXT CMD...: CMD succeeds and its output (stdout and stderr) holds TEXT.
says() { local t=$1; shift; "$@" >"$tmp/says.out" 2>&1 && grep -qF -- "$t" "$tmp/says.out" || { cat "$tmp/says.out"; false; }; }
# refuses TEXT CMD...: CMD fails and its output holds TEXT.
refuses() { local t=$1; shift; ! "$@" >"$tmp/says.out" 2>&1 && grep -qF -- "$t" "$tmp/says.out" || { cat "$tmp/says.out"; false; }; }
# usage_error TEXT CMD...: CMD exits 2 (a usage error) and its output holds TEXT.
usage_error() { local t=$1 rc=0; shift; "$@" >"$tmp/says.out" 2>&1 || rc=$?; [ "$rc" = 2 ] && grep -qF -- "$t" "$tmp/says.out" || { echo "exit $rc"; cat "$tmp/says.out"; false; }; }
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

# lb_pe_up LB PE ADDR...: namespaces LB (lb0 10.0.9.1/24, the LB node) and PE
# (pe0 with each ADDR/24: backends and the client 10.0.9.10) on one veth; the
# client's route to the VIPs (10.100.0.0/24) via the LB node, rp_filter off in
# PE, and static neighbours for every ADDR on the LB side.
lb_pe_up() {
	local lb=$1 pe=$2 a mac; shift 2
	ip netns add "$lb"
	ip netns add "$pe"
	ip link add lb0 netns "$lb" type veth peer name pe0 netns "$pe"
	ip -n "$lb" link set lo up
	ip -n "$pe" link set lo up
	ip -n "$lb" link set lb0 up
	ip -n "$pe" link set pe0 up
	ip -n "$lb" addr add 10.0.9.1/24 dev lb0
	for a in "$@"; do ip -n "$pe" addr add "$a/24" dev pe0; done
	ip -n "$pe" route add 10.100.0.0/24 via 10.0.9.1 src 10.0.9.10
	ip netns exec "$pe" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.pe0.rp_filter=0
	mac=$(ip netns exec "$pe" cat /sys/class/net/pe0/address)
	for a in "$@"; do ip -n "$lb" neigh replace "$a" lladdr "$mac" dev lb0 nud permanent; done
}

# node_yaml BPFFS [ADMIN]: the node section of a config for lb_pe_up's LB
# namespace (generic XDP on lb0, encapsulating from 10.0.9.1), its admin API on
# ADMIN (default $sock), ending with "vips:".
node_yaml() {
	cat <<YAML
node:
  interface: lb0
  xdp_mode: generic
  encap_source: { ipv4: 10.0.9.1 }
  hash_seed: 0x5eed
  lru_size: 65536
  bpffs: $1
  admin: ${2:-$sock}
vips:
YAML
}
# vip_yaml PORT BACKEND...: VIP 10.100.0.1:PORT/udp (ring $RING, default 1009),
# an HTTP check of :8080 every 200 ms (rise 1, fall 2), every backend weight 100.
vip_yaml() {
	local port=$1; shift
	printf '  - address: 10.100.0.1\n    port: %s\n    protocol: udp\n    ring_size: %s\n' "$port" "${RING:-1009}"
	printf '    health: { type: http, path: /, port: 8080, interval: 200ms, timeout: 150ms, rise: 1, fall: 2 }\n    backends:\n'
	for b in "$@"; do printf '      - { address: %s, weight: 100 }\n' "$b"; done
}
