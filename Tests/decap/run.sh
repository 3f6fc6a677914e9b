#!/usr/bin/env bash
# Tests/decap/run.sh — namespace test of the backend GRE decap: tools/gre-decap
# and bpf/decap.bpf.c (tc and XDP programs).
#
# Two namespaces joined by a veth pair: a sender (the balancer's stand-in; it
# also owns the client addresses) and a backend. tools/gre-decap sets up the
# backend; gre_probe.py sends hand-made GRE packets (4in4, 6in4, 4in6, 6in6)
# from the sender to a UDP echo / TCP listener on the VIPs, and every reply
# must come straight back from the VIP (direct server return). Also checked:
# errors change nothing, `up` twice is idempotent, `down` restores exactly.
#
# Needs root, python3, clang (BPF target), iproute2 (ip, tc), bpftool.
# Prints PASS/FAIL per check and "decap: N passed, M failed".
set -o errexit -o nounset -o pipefail
umask 022
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tool=$root/tools/gre-decap
probe=$here/gre_probe.py

# Replies each combination must get back (per protocol, per mode).
UDP_COUNT=${DECAP_UDP_COUNT:-20}
TCP_COUNT=${DECAP_TCP_COUNT:-5}
REPLY_TIMEOUT=2

ns_snd=xt-dc-$$-snd
ns_be=xt-dc-$$-be
# sender: s0; backend: b0. Clients live on the sender's lo, VIPs on the backend's lo.
snd4=10.201.0.1 be4=10.201.0.2
snd6=fd00:dc::1 be6=fd00:dc::2
client4=10.201.9.1 client6=fd00:dc:9::1
vip4=10.201.100.1 vip6=fd00:dc:100::1
port=7007

passed=0
failed=0
created_ns=()
server_pid=
work=

pass() { printf 'PASS: %s\n' "$1"; passed=$((passed + 1)); }
fail() { printf 'FAIL: %s\n' "$1"; [ -z "${2:-}" ] || printf '%s\n' "$2" | sed 's/^/      /'; failed=$((failed + 1)); }
# check DESCRIPTION COMMAND...: PASS when the command succeeds.
check() {
	local desc=$1 out
	shift
	if out=$("$@" 2>&1); then pass "$desc"; else fail "$desc" "$out"; fi
}
# A setup step failed: count it, print the summary, stop (cleanup still runs).
die() { fail "Tests/decap/run.sh: $*"; finish || exit 1; }

be() { ip netns exec "$ns_be" "$@"; }
snd() { ip netns exec "$ns_snd" "$@"; }

stop_server() {
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
		server_pid=
	fi
}

cleanup() {
	local ns
	stop_server
	for ns in "${created_ns[@]}"; do
		ip netns del "$ns" 2>/dev/null || true
	done
	[ -z "$work" ] || rm -rf "$work"
}

finish() {
	printf 'decap: %d passed, %d failed\n' "$passed" "$failed"
	[ "$failed" -eq 0 ]
}

if [ "$(id -u)" != 0 ]; then
	[ "${CI:-}" != true ] || { fail "needs root (CI=true: not skipping)"; finish; }
	printf 'SKIP: needs root (network namespaces, BPF)\n'
	finish
	exit 0
fi
for cmd in python3 ip tc bpftool timeout; do
	command -v "$cmd" >/dev/null || die "needs $cmd"
done
CLANG=${CLANG:-$(command -v clang || echo /opt/swift/usr/bin/clang)}
[ -x "$CLANG" ] || die "needs clang with the BPF target (set CLANG)"

trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- objects: the real one and the pre-6.3-kernel variant -----------------
work=$(mktemp -d "/tmp/xt-dc-$$.XXXXXX")
export XDPLB_DECAP_STATE_DIR=$work/state
bpf_flags=(-O2 -g -Wall -Werror -target bpf -I"/usr/include/$(uname -m)-linux-gnu" -I"$root/bpf")
"$CLANG" "${bpf_flags[@]}" -c "$root/bpf/decap.bpf.c" -o "$work/decap.bpf.o"
"$CLANG" "${bpf_flags[@]}" -DXDPLB_DECAP_TEST_LEGACY -c "$root/bpf/decap.bpf.c" -o "$work/decap-legacy.bpf.o"
export XDPLB_DECAP_OBJ=$work/decap.bpf.o

# ---- topology -------------------------------------------------------------
for ns in "$ns_snd" "$ns_be"; do
	ip netns add "$ns"
	created_ns+=("$ns")
	ip -n "$ns" link set lo up
done
ip -n "$ns_snd" link add s0 type veth peer name b0 netns "$ns_be"
ip -n "$ns_snd" addr add "$snd4/24" dev s0
ip -n "$ns_snd" addr add "$snd6/64" dev s0 nodad
ip -n "$ns_snd" addr add "$client4/32" dev lo
ip -n "$ns_snd" addr add "$client6/128" dev lo nodad
ip -n "$ns_snd" link set s0 up
ip -n "$ns_be" addr add "$be4/24" dev b0
ip -n "$ns_be" addr add "$be6/64" dev b0 nodad
ip -n "$ns_be" link set b0 up
# The balancer's routes toward the VIPs, the backend's back to the clients.
ip -n "$ns_snd" route add "$vip4/32" via "$be4"
ip -n "$ns_snd" -6 route add "$vip6/128" via "$be6"
ip -n "$ns_be" route add "$client4/32" via "$snd4"
ip -n "$ns_be" -6 route add "$client6/128" via "$snd6"
snd_mac=$(snd cat /sys/class/net/s0/address)
be_mac=$(be cat /sys/class/net/b0/address)

# Values `up` has to change, so `down` has something to restore.
be sh -c 'for f in all b0; do echo 1 >/proc/sys/net/ipv4/conf/$f/rp_filter; done'
be sh -c 'echo 0 >/proc/sys/net/ipv4/conf/all/arp_ignore; echo 0 >/proc/sys/net/ipv4/conf/b0/arp_announce'

sysctls=()
for scope in all b0; do
	for knob in arp_ignore arp_announce rp_filter; do
		sysctls+=("net/ipv4/conf/$scope/$knob")
	done
done
snapshot() {
	local f
	for f in "${sysctls[@]}"; do
		printf '%s=%s\n' "$f" "$(be cat "/proc/sys/$f")"
	done
	be ip -o addr show dev lo | awk '{ print "lo " $4 }'
	be tc qdisc show dev b0 | grep -o clsact || true
	be ip -d link show dev b0 | grep -o 'prog/xdp[a-z]* id [0-9]* name [^ ]*' || true
}
baseline=$(snapshot)

# ---- helpers ----------------------------------------------------------------

# expect_error DESC PATTERN ARGS...: tools/gre-decap fails saying PATTERN.
expect_error() {
	local desc=$1 pattern=$2 out rc=0
	shift 2
	out=$(be timeout 60 "$tool" "$@" 2>&1) || rc=$?
	if [ "$rc" -ne 0 ] && grep -qF -- "$pattern" <<<"$out"; then
		pass "$desc"
	else
		fail "$desc" "exit $rc, expected '$pattern', got: $out"
	fi
}

state_file() { echo "$XDPLB_DECAP_STATE_DIR/b0.state"; }

unchanged() {
	local now
	now=$(snapshot)
	[ ! -e "$(state_file)" ] || { echo "state file left behind: $(cat "$(state_file)")"; return 1; }
	[ "$now" = "$baseline" ] || { diff <(echo "$baseline") <(echo "$now"); return 1; }
}

start_server() {
	local ready=$work/ready i
	rm -f "$ready"
	# Not through be(): $! must be the process that becomes `timeout`
	# (ip netns exec execs it), so a kill reaches the server.
	ip netns exec "$ns_be" timeout 300 python3 "$probe" serve --vip "$vip4" --vip "$vip6" \
		--port "$port" --ready "$ready" --lifetime 240 &
	server_pid=$!
	for ((i = 0; i < 50; i++)); do
		[ -e "$ready" ] && return 0
		sleep 0.1
	done
	die "echo server did not start"
}

# run_probe OUTER INNER PROTO COUNT [GRE_FLAGS [GRE_KEY]]: prints "sent N replies M".
run_probe() {
	local outer=$1 inner=$2 proto=$3 count=$4 flags=${5:-0} key=${6:-0x5eed} osrc odst client vip
	if [ "$outer" = 4 ]; then osrc=$snd4 odst=$be4; else osrc=$snd6 odst=$be6; fi
	if [ "$inner" = 4 ]; then client=$client4 vip=$vip4; else client=$client6 vip=$vip6; fi
	snd timeout $((count * (REPLY_TIMEOUT + 1) + 10)) python3 "$probe" probe --ifname s0 \
		--src-mac "$snd_mac" --dst-mac "$be_mac" --outer-src "$osrc" --outer-dst "$odst" \
		--client "$client" --vip "$vip" --port "$port" --proto "$proto" --count "$count" \
		--timeout "$REPLY_TIMEOUT" --gre-flags "$flags" --gre-key "$key"
}

# The decap counters as "name packets" lines, from tools/gre-decap status.
counters() {
	be "$tool" status --interface b0 | awk '/^  [a-z0-9_]+ +[0-9]+ packets/ { print $1, $2 }'
}
counter() { counters | awk -v n="$1" '$1 == n { print $2 }'; }

# traffic MODE: every combination, UDP and TCP; replies must all come back.
traffic() {
	local mode=$1 o i proto count out want
	for o in 4 6; do
		for i in 4 6; do
			for proto in udp tcp; do
				count=$UDP_COUNT
				[ "$proto" = udp ] || count=$TCP_COUNT
				out=$(run_probe "$o" "$i" "$proto" "$count" 2>&1) || true
				want="sent $count replies $count"
				if [ "$out" = "$want" ]; then
					pass "$mode: ${i}in${o} $proto: $out, replies from the VIP"
				else
					fail "$mode: ${i}in${o} $proto: want '$want'" "$out"
				fi
			done
		done
	done
	# GRE with the checksum bit set is not ours: untouched, so no reply.
	out=$(run_probe 4 4 udp 3 0x8000 2>&1) || true
	if [ "$out" = "sent 3 replies 0" ]; then
		pass "$mode: GRE with a checksum is left alone: $out"
	else
		fail "$mode: GRE with a checksum is left alone: want 'sent 3 replies 0'" "$out"
	fi
	# Second chance (the key names a second hop). Key 0x00005eed: an IPv6 hop id
	# this backend has no peer for; no local socket has the UDP flow (the echo
	# server's socket is not connected): counted and dropped.
	out=$(run_probe 4 4 udp 3 0x2000 0x5eed 2>&1) || true
	if [ "$out" = "sent 3 replies 0" ]; then pass "$mode: an unknown second hop with no local socket is dropped: $out"
	else fail "$mode: an unknown second hop with no local socket is dropped: want 'sent 3 replies 0'" "$out"; fi
	# The same key on a TCP SYN: a SYN is always delivered here.
	out=$(run_probe 4 4 tcp 3 0x2000 0x5eed 2>&1) || true
	if [ "$out" = "sent 3 replies 3" ]; then pass "$mode: a SYN with a second hop is delivered here: $out"
	else fail "$mode: a SYN with a second hop is delivered here: want 'sent 3 replies 3'" "$out"; fi
	# Handed on (key 0xffffffff): delivered here, never handed on again.
	out=$(run_probe 4 4 udp 3 0x2000 0xffffffff 2>&1) || true
	if [ "$out" = "sent 3 replies 3" ]; then pass "$mode: a handed-on packet is delivered here: $out"
	else fail "$mode: a handed-on packet is delivered here: want 'sent 3 replies 3'" "$out"; fi
}

# check_counters MODE: each combination decapsulated exactly what was sent.
check_counters() {
	local mode=$1 c n want all
	all=$(counters)
	want=$((UDP_COUNT + TCP_COUNT))
	for c in decap_4in4 decap_6in4 decap_4in6 decap_6in6; do
		n=$(awk -v n="$c" '$1 == n { print $2 }' <<<"$all")
		# TCP: the client's RST to the SYN-ACK is plain IP, not counted here.
		# 4in4 also took the keyed SYNs and the handed-on datagrams (3 each).
		local w=$want
		[ "$c" != decap_4in4 ] || w=$((want + 6))
		if [ "${n:-x}" = "$w" ]; then
			pass "$mode: counter $c = $n"
		else
			fail "$mode: counter $c = ${n:-missing}, want $w" "$all"
		fi
	done
	n=$(awk '$1 == "pass_gre_other" { print $2 }' <<<"$all")
	if [ "${n:-0}" -ge 3 ]; then pass "$mode: counter pass_gre_other = $n"; else fail "$mode: counter pass_gre_other = ${n:-missing}, want >= 3" "$all"; fi
	for c in drop_hop_unknown hop_local_syn hop_received; do
		n=$(awk -v n="$c" '$1 == n { print $2 }' <<<"$all")
		if [ "${n:-0}" = 3 ]; then pass "$mode: counter $c = 3"; else fail "$mode: counter $c = ${n:-missing}, want 3" "$all"; fi
	done
	n=$(awk '$1 == "pass_error" || $1 == "drop_error" { s += $2 } END { print s + 0 }' <<<"$all")
	if [ "$n" = 0 ]; then pass "$mode: no decap errors"; else fail "$mode: $n decap errors" "$all"; fi
	# Every packet counts rx and exactly one outcome (hop_* are paths, on top).
	n=$(awk '$1 == "rx" { rx = $2 } $1 != "rx" && $1 !~ /^hop_/ { s += $2 } END { print (rx > 0 && rx == s) ? "ok" : rx " rx, " s " outcomes" }' <<<"$all")
	if [ "$n" = ok ]; then pass "$mode: outcomes sum to rx"; else fail "$mode: outcomes sum to rx: $n" "$all"; fi
}

down_restores() {
	local mode=$1 out
	check "$mode: down" be "$tool" down --interface b0
	check "$mode: down restored sysctls, lo, qdisc and XDP exactly" unchanged
	out=$(be "$tool" down --interface b0 2>&1) &&
		grep -q 'nothing to undo' <<<"$out" && pass "$mode: down again: $out" ||
		fail "$mode: down again is a no-op" "$out"
}

# ---- 1. errors change nothing ----------------------------------------------
expect_error "unknown interface" "unknown interface 'nope0'" up --interface nope0 --vip "$vip4"
expect_error "missing --vip" "up needs at least one --vip" up --interface b0
expect_error "bad IPv4 address" "--vip '10.201.100.300': not an IPv4 or IPv6 address" \
	up --interface b0 --vip 10.201.100.300
expect_error "bad IPv6 address" "--vip 'fd00::1::2': not an IPv4 or IPv6 address" \
	up --interface b0 --vip fd00::1::2
expect_error "prefix length refused" "not an IPv4 or IPv6 address" up --interface b0 --vip "$vip4/32"
expect_error "unknown mode" "--mode 'gre': use auto, kernel, bpf or xdp" up --interface b0 --vip "$vip4" --mode gre
expect_error "unknown verb" "unknown verb 'start'" start --interface b0
expect_error "down takes no --vip" "down takes no --vip" down --interface b0 --vip "$vip4"
if command -v setpriv >/dev/null && be setpriv --reuid=65534 --regid=65534 --clear-groups test -r "$tool"; then
	out=$(be setpriv --reuid=65534 --regid=65534 --clear-groups "$tool" up --interface b0 --vip "$vip4" 2>&1) &&
		fail "not root" "exit 0: $out" ||
		{ grep -q 'must run as root' <<<"$out" && pass "not root: $out" || fail "not root" "$out"; }
else
	printf 'SKIP: not root (no setpriv, or %s unreadable for nobody)\n' "$tool"
fi
check "status before up says not set up (exit 3)" \
	sh -c "ip netns exec $ns_be $tool status --interface b0; [ \$? -eq 3 ]"
check "errors changed nothing" unchanged

# ---- 2. bpf mode (tc): up, up again, traffic, counters, down ----------------
check "bpf: up" be "$tool" up --interface b0 --vip "$vip4" --vip "$vip6" --mode bpf
state1=$(cat "$(state_file)" 2>&1) || true
snap1=$(snapshot)
check "bpf: up again (mode taken from the state)" be "$tool" up --interface b0 --vip "$vip4" --vip "$vip6"
check "bpf: up twice: state file unchanged" test "$(cat "$(state_file)" 2>&1)" = "$state1"
check "bpf: up twice: sysctls, lo, qdisc unchanged" test "$(snapshot)" = "$snap1"
check "bpf: up twice: one decap filter" \
	test "$(be tc filter show dev b0 ingress | grep -c 'name xdplb_decap ')" = 1
# Second chance: --peer writes an IPv6 peer's hop id (bpf/xdplb_abi.h 4b; fd00:4::9 -> 0xa6e66a,
# the known answer the Swift tests check too) into the peer map; a bad one is refused.
check "bpf: --peer fd00:4::9 accepted" be "$tool" up --interface b0 --vip "$vip4" --vip "$vip6" --peer fd00:4::9 --peer 10.0.4.9
peer_dump_once() {
	local id mid
	id=$(be tc filter show dev b0 ingress | sed -n 's/.* id \([0-9]*\) name xdplb_decap .*/\1/p' | head -1)
	for mid in $(bpftool prog show id "$id" | sed -n 's/.*map_ids \([0-9,]*\).*/\1/p' | tr , ' '); do
		bpftool map show id "$mid" | grep -q 'name xdplb_hop_peers' && bpftool map dump id "$mid" -j
	done
}
# The peer map's JSON dump; asked again (up to 2 s) while what it reads isn't one
# JSON document (a filter or map just replaced made it print nothing once).
peer_dump() {
	local out i
	for ((i = 0; i < 20; i++)); do
		out=$(peer_dump_once 2>/dev/null) || true
		python3 -c 'import json, sys; json.loads(sys.argv[1])' "$out" 2>/dev/null && break
		sleep 0.1
	done
	printf '%s' "$out"
}
check "bpf: the peer map holds hop id 0xa6e66a -> fd00:4::9 and nothing for the IPv4 peer" python3 -c '
import json, sys
d = json.loads(sys.argv[1]); e = [(bytes(int(x, 16) for x in r["key"]), bytes(int(x, 16) for x in r["value"])) for r in d]
want = (bytes([0x6a, 0xe6, 0xa6, 0]), bytes.fromhex("fd000004000000000000000000000009"))
sys.exit(0 if e == [want] else "got %r" % e)' "$(peer_dump)"
if be "$tool" up --interface b0 --vip "$vip4" --peer fd00::1.2.3.4 >"$work/peer.out" 2>&1; then fail "bpf: a bad --peer is refused" "$(cat "$work/peer.out")"
else check "bpf: a bad --peer is refused, saying why" grep -q -- "--peer 'fd00::1.2.3.4': not an IPv4 or IPv6 address" "$work/peer.out"; fi
vips_on_lo() {
	local addrs
	addrs=$(be ip -o addr show dev lo)
	grep -q " $vip4/32 " <<<"$addrs" && grep -q " $vip6/128 " <<<"$addrs"
}
check "bpf: VIPs on lo" vips_on_lo
check "bpf: arp_ignore=1, arp_announce=2, rp_filter=2 (all, b0)" sh -c "
	for f in all b0; do
		[ \$(ip netns exec $ns_be cat /proc/sys/net/ipv4/conf/\$f/arp_ignore) = 1 ] &&
		[ \$(ip netns exec $ns_be cat /proc/sys/net/ipv4/conf/\$f/arp_announce) = 2 ] &&
		[ \$(ip netns exec $ns_be cat /proc/sys/net/ipv4/conf/\$f/rp_filter) = 2 ] || exit 1
	done"
out=$(be "$tool" status --interface b0 2>&1) || true
if grep -q '^mode: bpf' <<<"$out" && grep -q 'xdplb_decap attached to b0 ingress' <<<"$out" &&
	grep -q 'decap_4in4' <<<"$out"; then
	pass "bpf: status shows mode, filter and counters"
else
	fail "bpf: status shows mode, filter and counters" "$out"
fi
start_server
traffic bpf
check_counters bpf
stop_server
down_restores bpf

# ---- 3. bpf mode, the older kernels' path (bpf_skb_change_proto) ------------
check "bpf (pre-6.3 path): up" env XDPLB_DECAP_OBJ="$work/decap-legacy.bpf.o" \
	ip netns exec "$ns_be" "$tool" up --interface b0 --vip "$vip4" --vip "$vip6" --mode bpf
start_server
traffic "bpf (pre-6.3 path)"
check_counters "bpf (pre-6.3 path)"
stop_server
down_restores "bpf (pre-6.3 path)"

# ---- 4. xdp mode ---------------------------------------------------------------
check "xdp: up" be "$tool" up --interface b0 --vip "$vip4" --vip "$vip6" --mode xdp
check "xdp: up again" be "$tool" up --interface b0 --vip "$vip4" --vip "$vip6" --mode xdp
check "xdp: program attached once" \
	test "$(be ip -d link show dev b0 | grep -c 'name xdplb_decap_xdp ')" = 1
expect_error "xdp: up in another mode refused" "already up in mode xdp" \
	up --interface b0 --vip "$vip4" --mode bpf
start_server
traffic xdp
check_counters xdp
stop_server
down_restores xdp

# ---- 5. auto and kernel mode --------------------------------------------------
if be sh -c '{ [ -d /sys/module/ip_gre ] || modprobe -q ip_gre; } 2>/dev/null'; then
	has_gre4=yes
else
	has_gre4=no
fi
if [ "$has_gre4" = yes ] && be sh -c '{ [ -d /sys/module/ip6_gre ] || modprobe -q ip6_gre; } 2>/dev/null'; then
	auto_mode=kernel
else
	auto_mode=bpf
fi
check "auto: up" be "$tool" up --interface b0 --vip "$vip4" --vip "$vip6"
out=$(be "$tool" status --interface b0 2>&1) || true
if grep -q "^mode: $auto_mode\$" <<<"$out"; then
	pass "auto: picked $auto_mode (kernel GRE: $has_gre4)"
else
	fail "auto: picked $auto_mode" "$out"
fi
if [ "$auto_mode" = kernel ]; then
	start_server
	traffic kernel
	stop_server
fi
down_restores auto
if [ "$has_gre4" = no ]; then
	expect_error "kernel: refused without kernel GRE" "this kernel has no GRE" \
		up --interface b0 --vip "$vip4" --mode kernel
	check "kernel: refusal changed nothing" unchanged
fi

finish
