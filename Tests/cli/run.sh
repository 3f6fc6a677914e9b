#!/usr/bin/env bash
# CLI tests of the xdplb binary: maglev, pick, config check, replay (in a
# network namespace this script creates and always deletes).
# Usage: Tests/cli/run.sh PATH/TO/xdplb
set -o errexit -o nounset -o pipefail
XDPLB=$1
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/xdplb-cli.XXXXXX)
ns="xt-cli-$$"
pass=0 fail=0
cleanup() {
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ok() { pass=$((pass + 1)); echo "PASS $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
check() { # check NAME COMMAND... : passes when the command succeeds
	local name=$1; shift
	if "$@" >"$tmp/out" 2>&1; then ok "$name"; else bad "$name"; sed 's/^/    /' "$tmp/out"; fi
}
expect_fail_with() { # expect_fail_with NAME EXPECTED-TEXT COMMAND...
	local name=$1 want=$2; shift 2
	if "$@" >"$tmp/out" 2>&1; then bad "$name (succeeded, expected failure)"; sed 's/^/    /' "$tmp/out"; return; fi
	if grep -qF -- "$want" "$tmp/out"; then ok "$name"; else bad "$name"; echo "    want: $want"; sed 's/^/    got:  /' "$tmp/out"; fi
}

# ---- maglev --------------------------------------------------------------
"$XDPLB" maglev --backends a,b,c --size 7 --json >"$tmp/m.json"
check "maglev: 3 backends over 7 slots get 2 or 3 each, sum 7" python3 - "$tmp/m.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
s = [b["slots"] for b in d["backends"]]
assert sum(s) == 7 and all(x in (2, 3) for x in s), s
assert len(d["digest"]) == 16
PY
d1=$("$XDPLB" maglev --backends 10.0.4.2,10.0.4.3,10.0.4.4 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["digest"])')
d2=$("$XDPLB" maglev --backends 10.0.4.4,10.0.4.2,10.0.4.3 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["digest"])')
check "maglev: digest independent of backend order" test "$d1" = "$d2"
"$XDPLB" maglev --backends x,y --weights 3,1 --size 1009 --json >"$tmp/w.json"
check "maglev: weights 3:1 split 1009 slots 757:252" python3 -c "
import json; d=json.load(open('$tmp/w.json')); s={b['backend']:b['slots'] for b in d['backends']}
assert abs(s['x']-757)<=1 and abs(s['y']-252)<=1, s"
expect_fail_with "maglev: non-prime size refused" "65536 is not prime" "$XDPLB" maglev --backends a,b --size 65536
expect_fail_with "maglev: weights count must match" "--weights has 1 values for 2 backends" "$XDPLB" maglev --backends a,b --weights 1
expect_fail_with "maglev: bad weight refused" "'x' is not an integer in 0...1000" "$XDPLB" maglev --backends a --weights x

# ---- config check ----------------------------------------------------------
check "config check: the example config is valid" "$XDPLB" config check "$here/lab.yaml"
bad_config() { # bad_config NAME EXPECTED-LINE YAML
	printf '%s\n' "$3" >"$tmp/bad.yaml"
	expect_fail_with "config check: $1" "$tmp/bad.yaml: $2" "$XDPLB" config check "$tmp/bad.yaml"
}
node='node: { interface: eth0, encap_source: { ipv4: 10.0.2.2 } }'
bad_config "unknown key" "vips[0].prot: unknown key (allowed here: address, port, protocol, hash, ring_size, health, backends)" \
	"$node
vips: [ { address: 10.100.0.1, prot: tcp, backends: [] } ]"
bad_config "bad address" "vips[0].backends[1].address: '10.0.4.300' is not an IPv4 or IPv6 address" \
	"$node
vips: [ { address: 10.100.0.1, port: 80, backends: [ { address: 10.0.4.2 }, { address: 10.0.4.300 } ] } ]"
bad_config "non-prime ring" "vips[0].ring_size: 65536 is not prime (try 65537)" \
	"$node
vips: [ { address: 10.100.0.1, port: 80, ring_size: 65536, backends: [] } ]"
bad_config "duplicate VIP" "vips[1]: duplicate VIP 10.100.0.1:80/tcp (also vips[0])" \
	"$node
vips: [ { address: 10.100.0.1, port: 80, backends: [] }, { address: 10.100.0.1, port: 80, protocol: tcp, backends: [] } ]"
bad_config "duplicate backend" "vips[0].backends[1]: duplicate backend 10.0.4.2 (also vips[0].backends[0])" \
	"$node
vips: [ { address: 10.100.0.1, port: 80, backends: [ { address: 10.0.4.2 }, { address: 10.0.4.2 } ] } ]"
bad_config "weight out of range" "vips[0].backends[0].weight: 1001 is out of range 0...1000" \
	"$node
vips: [ { address: 10.100.0.1, port: 80, backends: [ { address: 10.0.4.2, weight: 1001 } ] } ]"
bad_config "v6 backend without v6 encap source" "vips[0].backends[0].address: IPv6 backend needs node.encap_source.ipv6" \
	"$node
vips: [ { address: 10.100.0.1, port: 80, backends: [ { address: 'fd00:4::2' } ] } ]"
bad_config "missing interface" "node.interface: missing (the interface to attach to)" \
	"node: { encap_source: { ipv4: 10.0.2.2 } }
vips: []"
bad_config "bad duration" "vips[0].health.interval: 'soon' is not a duration (like 500ms, 1s, 2m)" \
	"$node
vips: [ { address: 10.100.0.1, port: 80, health: { interval: soon }, backends: [] } ]"
bad_config "remote admin refused" "node.admin: '0.0.0.0:9180' is not a loopback address; set node.admin_allow_remote: true to allow it" \
	"node: { interface: eth0, admin: '0.0.0.0:9180', encap_source: { ipv4: 10.0.2.2 } }
vips: []"
expect_fail_with "config check: missing file" "cannot read the file" "$XDPLB" config check "$tmp/none.yaml"

# ---- pick ------------------------------------------------------------------
pick4=$("$XDPLB" pick --config "$here/lab.yaml" --flow '192.0.2.10:40000 -> 10.100.0.1:80/tcp' | awk '{print $1}')
pick6=$("$XDPLB" pick --config "$here/lab.yaml" --flow '[2001:db8::10]:40000 -> [fd00:100::1]:443/tcp' | awk '{print $1}')
check "pick: v4 flow goes to a configured backend ($pick4)" grep -qx -e 10.0.4.2 -e 10.0.4.3 <<<"$pick4"
check "pick: v6 flow goes to a configured backend ($pick6)" grep -qx -e fd00:4::2 -e 10.0.4.2 <<<"$pick6"
expect_fail_with "pick: non-VIP flow" "no VIP matches" "$XDPLB" pick --config "$here/lab.yaml" --flow '192.0.2.10:1 -> 10.9.9.9:80/tcp'
expect_fail_with "pick: malformed flow" "is not 'SRC:SPORT -> VIP:PORT/tcp|udp'" "$XDPLB" pick --config "$here/lab.yaml" --flow 'nonsense'

# ---- replay (in a namespace with routes and static neighbours) --------------
python3 "$here/make_pcap.py" "$tmp/in.pcap"
ip netns add "$ns"
nsx() { ip netns exec "$ns" "$@"; }
nsx ip link set lo up
# bpf_fib_lookup answers FWD_DISABLED unless the ingress device forwards.
nsx sysctl -qw net.ipv4.conf.all.forwarding=1 net.ipv6.conf.all.forwarding=1
nsx ip link add xa type veth peer name xb
nsx ip link set xa up
nsx ip link set xb up
nsx ip addr add 10.0.3.1/24 dev xa
nsx ip -6 addr add fd00:3::1/64 dev xa nodad
nsx ip route add 10.0.4.0/24 via 10.0.3.2
nsx ip -6 route add fd00:4::/64 via fd00:3::2
nsx ip neigh add 10.0.3.2 lladdr 02:00:00:00:00:b2 dev xa nud permanent
nsx ip -6 neigh add fd00:3::2 lladdr 02:00:00:00:00:b6 dev xa nud permanent
ifx=$(nsx cat /sys/class/net/xa/ifindex)
for mode in resolver fib; do
	flag=""; [ "$mode" = fib ] && flag="--fib"
	nsx "$XDPLB" replay --config "$here/lab.yaml" --ingress-ifindex "$ifx" $flag "$tmp/in.pcap" "$tmp/out-$mode.pcap" >"$tmp/replay-$mode.txt"
	check "replay ($mode): verdicts tx tx pass pass tx drop" test "$(awk '/^[0-9]+ [a-z0-9]+ in:/{print $2}' "$tmp/replay-$mode.txt" | tr '\n' ' ')" = "tx tx pass pass tx drop "
	check "replay ($mode): 3 packets written" test "$(tcpdump -nn -r "$tmp/out-$mode.pcap" 2>/dev/null | wc -l)" = 3
	tcpdump -nn -e -r "$tmp/out-$mode.pcap" 2>/dev/null >"$tmp/dump-$mode.txt"
	check "replay ($mode): v4 backend gets GRE from 10.0.2.2 to the gateway MAC 02:00:00:00:00:b2" \
		grep -q "02:00:00:00:00:b2.*10.0.2.2 > $pick4: GREv0" "$tmp/dump-$mode.txt"
	check "replay ($mode): same backend as 'xdplb pick' for the v4 flow (SYN and ACK)" \
		test "$(grep -c "> $pick4: GREv0.*192.0.2.10.40000 > 10.100.0.1.80" "$tmp/dump-$mode.txt")" = 2
	check "replay ($mode): same backend as 'xdplb pick' for the v6 flow" \
		grep -q "> $pick6: GREv0.*2001:db8::10.40000 > fd00:100::1.443" "$tmp/dump-$mode.txt"
done
check "replay: FIB lookup and resolved next hops write identical bytes" cmp "$tmp/out-resolver.pcap" "$tmp/out-fib.pcap"

echo
echo "cli: $pass passed, $fail failed"
[ "$fail" = 0 ]
