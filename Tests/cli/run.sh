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
lockdir="/sys/fs/bpf/xdplb-cli-test-$$" lock_pid=""
cleanup() {
	[ -n "$lock_pid" ] && kill "$lock_pid" 2>/dev/null || true
	rmdir "$lockdir" 2>/dev/null || true
	ip netns del "$ns" 2>/dev/null || true
	ip netns del "$ns-lodown" 2>/dev/null || true
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
"$XDPLB" maglev --backends a,b,c,d --size 1009 --json >"$tmp/up.json"
"$XDPLB" maglev --backends a,b,c,d --size 1009 --down c --json >"$tmp/down.json"
check "maglev --down: the down backend's slots go to the others, nobody else's move" python3 - "$tmp/up.json" "$tmp/down.json" <<'PY'
import json, sys
up, down = (json.load(open(p)) for p in sys.argv[1:3])
u = {b["backend"]: b["slots"] for b in up["backends"]}
d = {b["backend"]: b["slots"] for b in down["backends"]}
assert d["c"] == 0 and sum(d.values()) == 1009, d
assert all(d[x] > u[x] for x in "abd"), (u, d)          # each up backend takes a share
assert [b["down"] for b in down["backends"]] == [False, False, True, False]
assert down["digest"] != up["digest"]
PY
expect_fail_with "maglev: --down must name a backend" "--down: 'e' is not one of --backends" "$XDPLB" maglev --backends a,b --down e
"$XDPLB" maglev --backends a,b,c,d --size 1009 --down a,b,c,d --json >"$tmp/alldown.json"
check "maglev --down: every backend down fails open, the table of all of them" python3 - "$tmp/up.json" "$tmp/alldown.json" <<'PY'
import json, sys
up, down = (json.load(open(p)) for p in sys.argv[1:3])
assert down["fail_open"] is True and down["digest"] == up["digest"], down
PY
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
bad_config "unknown key" "vips[0].prot: unknown key (allowed here: address, port, protocol, hash, ring_size, health, second_chance, backends, protection)" \
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
# Issue #11.17: the admin API is a unix socket by default; TCP is opt-in with a token file.
bad_config "admin_group on a TCP admin (#11.17)" "node.admin_group: applies to a unix-socket node.admin only (TCP writes use node.admin_token_file)" \
	"node: { interface: eth0, admin: '127.0.0.1:9180', admin_group: adm, encap_source: { ipv4: 10.0.2.2 } }
vips: []"
bad_config "admin_token_file on the default socket (#11.17)" "node.admin_token_file: applies to a TCP node.admin only (the unix socket is guarded by its file permissions)" \
	"node: { interface: eth0, admin_token_file: /etc/xdplb/token, encap_source: { ipv4: 10.0.2.2 } }
vips: []"
bad_config "relative admin socket path (#11.17)" "node.admin: unix:run/lb1.sock: a socket path must be absolute" \
	"node: { interface: eth0, admin: 'unix:run/lb1.sock', encap_source: { ipv4: 10.0.2.2 } }
vips: []"
bad_config "admin socket path too long for sun_path (#11.17)" "node.admin: socket path is 101 bytes; at most 90 fit a unix socket address" \
	"node: { interface: eth0, admin: '/run/$(printf 'a%.0s' $(seq 96))', encap_source: { ipv4: 10.0.2.2 } }
vips: []"
bad_config "admin neither a path nor host:port (#11.17)" "node.admin: 'admin.sock' is neither a socket path (/path or unix:/path) nor host:port" \
	"node: { interface: eth0, admin: admin.sock, encap_source: { ipv4: 10.0.2.2 } }
vips: []"
bad_config "admin_group not a group name (#11.17)" "node.admin_group: 'a b' is not a group name (letters, digits, '_', '-', '.', at most 32)" \
	"node: { interface: eth0, admin_group: 'a b', encap_source: { ipv4: 10.0.2.2 } }
vips: []"
printf '%s\n' "node: { interface: eth0, admin: 'unix:/run/xdplb/lb1.sock', admin_group: adm, encap_source: { ipv4: 10.0.2.2 } }" "vips: []" >"$tmp/sock.yaml"
check "config check: a per-node socket path with a group is valid (#11.17)" "$XDPLB" config check "$tmp/sock.yaml"
check "CLI: --admin defaults to the unix socket /run/xdplb/admin.sock (#11.17)" sh -c "'$XDPLB' status --help | tr -s ' \n' ' ' | grep -qF '(default: /run/xdplb/admin.sock)'"
expect_fail_with "CLI: nothing on the socket is said plainly (#11.17)" "no agent answers on unix:$tmp/none.sock (No such file or directory (2))" \
	"$XDPLB" status --admin "$tmp/none.sock"
expect_fail_with "CLI: --admin that is neither is refused (#11.17)" "--admin 'lb1' is neither a socket path (/path or unix:/path) nor host:port" \
	"$XDPLB" status --admin lb1
expect_fail_with "CLI: deny add without a prefix is a usage error naming it" "Missing expected argument '<prefix>'" "$XDPLB" deny add
expect_fail_with "CLI: deny list with no agent says so plainly" "no agent answers on unix:$tmp/none.sock" \
	"$XDPLB" deny list --admin "$tmp/none.sock"
expect_fail_with "config check: missing file" "cannot read the file" "$XDPLB" config check "$tmp/none.yaml"
# Issue #11: hostile configs get a short, precise refusal (more cases in Tests/ConfigTests).
bad_config "overflowing duration (#11.1)" "vips[0].health.interval: 1e300s is out of range 100ms...600000ms" \
	"$node
vips: [ { address: 10.100.0.1, port: 80, health: { interval: 1e300s }, backends: [] } ]"
printf '%s\nvips: %s%s\n' "$node" "$(printf '[%.0s' $(seq 5000))" "$(printf ']%.0s' $(seq 5000))" >"$tmp/deep.yaml"
expect_fail_with "config check: 5000 nested lists (#11.2)" "$tmp/deep.yaml: line 2: nested deeper than 64 levels" "$XDPLB" config check "$tmp/deep.yaml"
bad_config "a list as a key is named shortly (#11.3, #11.21)" "vips[0].<a list>: a key must be a plain name, not a list or mapping" \
	"$node
vips: [ { address: 10.100.0.1, port: 80, backends: [], [a, b]: 1 } ]"
bad_config "expect_status -200 (#11.21)" "vips[0].health.expect_status: '-200' is not a status or range like 200-399" \
	"$node
vips: [ { address: 10.100.0.1, port: 80, health: { expect_status: '-200' }, backends: [] } ]"
bad_config "interface eth0:1 (#11.21)" "node.interface: 'eth0:1' is not a valid interface name" \
	"node: { interface: 'eth0:1', encap_source: { ipv4: 10.0.2.2 } }
vips: []"
bad_config "health port for a port-0 VIP (#11.21)" "vips[0].health.port: missing: VIP 10.100.0.1 serves every port (port 0)" \
	"$node
vips: [ { address: 10.100.0.1, port: 0, backends: [ { address: 10.0.4.2 } ] } ]"

# ---- numeric options: refused before anything starts (#11.4) -----------------
for v in -1 nan 1e20 0 inf; do
	expect_fail_with "run: --nexthop-refresh $v refused" "--nexthop-refresh must be a number of seconds from 0.1 to 3600" \
		"$XDPLB" run --config "$here/lab.yaml" --nexthop-refresh="$v"
done
expect_fail_with "stats: --interval nan refused" "--interval must be in (0, 3600] seconds" "$XDPLB" stats --interval nan
expect_fail_with "bench: --rounds 0 refused" "--rounds must be between 1 and 1000" "$XDPLB" bench --rounds 0
expect_fail_with "bench: --packets 10^12 refused" "--packets must be between 1 and 100000000" "$XDPLB" bench --packets 1000000000000
expect_fail_with "maglev: --size out of range refused" "ring size 700001 is out of range" "$XDPLB" maglev --backends a --size 700001
expect_fail_with "replay: --ingress-ifindex 0 refused" "--ingress-ifindex must be 1 or more" \
	"$XDPLB" replay --config "$here/lab.yaml" --ingress-ifindex 0 "$tmp/none.pcap" "$tmp/none-out.pcap"
expect_fail_with "down: the bpffs mount itself refused (#11.21)" "--bpffs '/sys/fs/bpf/' is the bpffs mount itself" "$XDPLB" down --bpffs /sys/fs/bpf/
expect_fail_with "down: a 5000-character bpffs refused (#11.21)" "bytes; at most 200" "$XDPLB" down --bpffs "/sys/fs/bpf/$(printf 'a%.0s' $(seq 4988))"

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
# Second chance: a previous config without $pick4 on 10.100.0.1:80 (its first listing in lab.yaml).
other=10.0.4.2; [ "$pick4" = 10.0.4.2 ] && other=10.0.4.3
awk -v b="$pick4" '!done && index($0, "address: " b ",") { done = 1; next } { print }' "$here/lab.yaml" >"$tmp/previous.yaml"
check "pick --previous: the flow's second hop is the previous ring's backend ($other)" \
	grep -q "second hop $other (GRE key $other, on a conntrack miss)" <("$XDPLB" pick --config "$here/lab.yaml" --previous "$tmp/previous.yaml" --flow '192.0.2.10:40000 -> 10.100.0.1:80/tcp')
check "pick --previous of the same config: no second hop" \
	grep -q "no second hop" <("$XDPLB" pick --config "$here/lab.yaml" --previous "$here/lab.yaml" --flow '192.0.2.10:40000 -> 10.100.0.1:80/tcp')
# The capture's ACK alone (a flow this node never saw), then SYN + ACK (the SYN makes it a new flow here).
python3 - "$tmp/in.pcap" "$tmp/ack.pcap" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read(); out, recs, o = d[:24], [], 24
while o + 16 <= len(d):
    n = struct.unpack("<I", d[o + 8:o + 12])[0]; recs.append(d[o:o + 16 + n]); o += 16 + n
open(sys.argv[2], "wb").write(out + recs[1] + recs[0] + recs[1])
PY
nsx "$XDPLB" replay --config "$here/lab.yaml" --previous "$tmp/previous.yaml" --ingress-ifindex "$ifx" "$tmp/ack.pcap" "$tmp/out-prev.pcap" >"$tmp/replay-prev.txt"
check "replay --previous: an ACK that misses conntrack carries the second hop $other in the GRE key" \
	grep -q "^1 tx in: .* out: .*gre 10.0.2.2 > $pick4 key second hop $other " "$tmp/replay-prev.txt"
check "replay --previous: after a SYN the flow is new here: its ACK carries no key" sh -c \
	"grep '^2 tx' '$tmp/replay-prev.txt' | grep -qv ' key ' && grep '^3 tx' '$tmp/replay-prev.txt' | grep -v ' key ' | grep -q 'gre 10.0.2.2 > $pick4 '"
expect_fail_with "replay --previous: a bad previous config is refused" "no-such.yaml" \
	"$XDPLB" replay --config "$here/lab.yaml" --previous "$tmp/no-such.yaml" "$tmp/in.pcap" "$tmp/out-x.pcap"
# With forwarding off bpf_fib_lookup can't answer, so only next hops resolved over netlink forward.
nsx sysctl -qw net.ipv4.conf.all.forwarding=0 net.ipv6.conf.all.forwarding=0
nsx "$XDPLB" replay --config "$here/lab.yaml" --ingress-ifindex "$ifx" "$tmp/in.pcap" "$tmp/out-nl.pcap" >"$tmp/replay-nl.txt"
check "replay: next hops from netlink alone (forwarding off) write the same bytes" cmp "$tmp/out-resolver.pcap" "$tmp/out-nl.pcap"

# Issue 11 finding 6: with loopback down, next hops are read over netlink (no `ip` process, whose
# Foundation wakeup socket pair can't be created there), so replay finishes. `timeout` only guards the run.
ip netns add "$ns-lodown"
if timeout 60 ip netns exec "$ns-lodown" "$XDPLB" replay --config "$here/lab.yaml" --ingress-ifindex 1 \
	"$tmp/in.pcap" "$tmp/out-lodown.pcap" >"$tmp/replay-lodown.txt" 2>&1; then
	check "replay with loopback down: all 6 packets get a verdict" grep -q "^6 packets: " "$tmp/replay-lodown.txt"
else
	bad "replay with loopback down: exit $? (hung or failed)"; sed 's/^/    /' "$tmp/replay-lodown.txt"
fi
ip netns del "$ns-lodown"

# Issue #11.20 and #11.14: a short frame and a frame a test run would split are
# named, counted and skipped; the rest run and are written.
python3 "$here/make_pcap.py" "$tmp/hostile.pcap" --hostile
if nsx "$XDPLB" replay --config "$here/lab.yaml" --ingress-ifindex "$ifx" "$tmp/hostile.pcap" "$tmp/hostile-out.pcap" >"$tmp/hostile.txt" 2>"$tmp/hostile.err"; then
	ok "replay: a capture with short and oversized frames replays (exit 0)"
else
	bad "replay: a capture with short and oversized frames replays (exit 0)"; sed 's/^/    /' "$tmp/hostile.err"
fi
check "replay: 'packet 2: shorter than an Ethernet header (10 of 14 bytes)'" grep -qF "packet 2: shorter than an Ethernet header (10 of 14 bytes); skipped" "$tmp/hostile.err"
check "replay: 'packet 4: longer than a test run passes whole (4000 bytes'" grep -qF "packet 4: longer than a test run passes whole (4000 bytes, at most 3520" "$tmp/hostile.err"
check "replay: verdicts tx skipped tx skipped tx" test "$(awk '/^[0-9]+ ([a-z0-9]+ in|skipped|error): /{sub(/:$/, "", $2); print $2}' "$tmp/hostile.txt" | tr '\n' ' ')" = "tx skipped tx skipped tx "
check "replay: summary counts 2 skipped" grep -q "^5 packets: skipped 2, tx 3; 3 written to" "$tmp/hostile.txt"
check "replay: the 3 transmitted packets are written" test "$(tcpdump -nn -r "$tmp/hostile-out.pcap" 2>/dev/null | wc -l)" = 3
cp "$tmp/hostile.pcap" "$tmp/hostile-copy.pcap"
expect_fail_with "replay: refuses to overwrite its input" "is the input capture; choose another file" \
	nsx "$XDPLB" replay --config "$here/lab.yaml" "$tmp/hostile.pcap" "$tmp/hostile.pcap"
ln -s "$tmp/hostile.pcap" "$tmp/hostile-link.pcap"
expect_fail_with "replay: refuses to overwrite its input through a symlink" "is the input capture; choose another file" \
	nsx "$XDPLB" replay --config "$here/lab.yaml" "$tmp/hostile.pcap" "$tmp/hostile-link.pcap"
ln "$tmp/hostile.pcap" "$tmp/hostile-hardlink.pcap"
expect_fail_with "replay: refuses to overwrite its input through a hard link" "is the input capture; choose another file" \
	nsx "$XDPLB" replay --config "$here/lab.yaml" "$tmp/hostile.pcap" "$tmp/hostile-hardlink.pcap"
expect_fail_with "replay: refuses to overwrite its input named another way (dir/../dir/file)" "is the input capture; choose another file" \
	nsx "$XDPLB" replay --config "$here/lab.yaml" "$tmp/hostile.pcap" "$tmp/../$(basename "$tmp")/./hostile.pcap"
check "replay: the input is unchanged" cmp "$tmp/hostile.pcap" "$tmp/hostile-copy.pcap"
cp "$here/lab.yaml" "$tmp/lab-copy.yaml"
expect_fail_with "replay: refuses to write its output over the config file" "choose another file" \
	nsx "$XDPLB" replay --config "$tmp/lab-copy.yaml" "$tmp/hostile.pcap" "$tmp/lab-copy.yaml"
check "replay: the config file is unchanged" cmp "$here/lab.yaml" "$tmp/lab-copy.yaml"

# ---- numeric CLI arguments: refused before anything starts (#11.4) -----------------
expect_fail_with "bench --warmup=-1 refused" "--warmup must be between 0 and 100000000 (got -1)" "$XDPLB" bench --warmup=-1
expect_fail_with "bench --loop-repeat=-1 refused" "--loop-repeat must be between 0 and 1000000 (got -1)" "$XDPLB" bench --loop-repeat=-1
expect_fail_with "bench --lru-size 0 refused" "--lru-size must be between 4096 and 100000000 (got 0)" "$XDPLB" bench --lru-size 0
expect_fail_with "bench --cpu 99999 refused" "--cpu must be -1 or a CPU number below" "$XDPLB" bench --cpu 99999
expect_fail_with "bench --applies 8x10/0 refused" "--applies: '8x10/0': PORTS (VIPs per backend list) must be 1...8" "$XDPLB" bench --control-plane --applies 8x10/0
expect_fail_with "bench --applies 8x10/2/2 refused" "--applies: '8x10/2/2' is not VIPSxBACKENDS[/PORTS]" "$XDPLB" bench --control-plane --applies 8x10/2/2
expect_fail_with "stats --interval=nan refused" "--interval must be in (0, 3600] seconds" "$XDPLB" stats --interval=nan
expect_fail_with "cluster push --timeout nan refused" "--timeout must be 0.1 to 60 seconds" \
	"$XDPLB" cluster push /dev/null --endpoints http://127.0.0.1:1 --timeout nan
expect_fail_with "cluster push --wait=-1 refused" "--wait" "$XDPLB" cluster push /dev/null --endpoints http://127.0.0.1:1 --wait=-1
expect_fail_with "cluster history --limit=0 refused" "--limit must be 1 to 1000" "$XDPLB" cluster history --endpoints http://127.0.0.1:1 --limit=0

# ---- down: refused while another process owns the bpffs directory (#11.11) -----
# An agent holds an exclusive flock on node.bpffs; here flock(1) stands in for one.
mkdir "$lockdir"
flock -n "$lockdir" sleep 60 &
lock_pid=$!
for _ in $(seq 100); do grep -q "FLOCK.* $lock_pid " /proc/locks && break; sleep 0.05; done
check "down: test lock taken (pid $lock_pid)" grep -q "FLOCK.* $lock_pid " /proc/locks
expect_fail_with "down: refused while the owner runs, naming its pid" "another agent (pid $lock_pid) owns $lockdir; stop it first (one agent per bpffs directory); or use --force" \
	"$XDPLB" down --bpffs "$lockdir"
check "down: the refused down left the directory" test -d "$lockdir"
check "down --force: removes it anyway" "$XDPLB" down --force --bpffs "$lockdir"
check "down --force: the directory is gone" test ! -e "$lockdir"
kill "$lock_pid" 2>/dev/null || true
wait "$lock_pid" 2>/dev/null || true
lock_pid=""

echo
echo "cli: $pass passed, $fail failed"
[ "$fail" = 0 ]
