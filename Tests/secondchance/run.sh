#!/usr/bin/env bash
# Second chance end to end (issue 13), the Maglev paper's §3.3 case in
# namespaces: the backend set changes and ECMP moves established flows to
# another LB node at the same time.
#
#   xt-sc-c-PID   10.0.8.2           the client (its VIP route picks the LB node)
#   xt-sc-l1-PID  10.0.8.11          LB node 1: xdplb run (XDP generic)
#   xt-sc-l2-PID  10.0.8.12          LB node 2: the same config, never sees the flows first
#   xt-sc-b1-PID  10.0.8.31          backend 1: tools/gre-decap (tc), VIP on lo, TCP echo
#   xt-sc-b2-PID  10.0.8.32          backend 2: the same
# all on one bridge (xt-sc-sw-PID). Config A: two VIPs (ports 7 and 8) with
# backend 1 only; config B: backend 1 draining (weight 0), backend 2 added. Port
# 7 has second chance (the default), port 8 has `second_chance: off`.
# 1. Long-lived connections to both VIPs through LB node 1 (config A): all on b1.
# 2. Both agents reload config B; the client's route moves to LB node 2.
# 3. Port 7: LB node 2 misses conntrack, its ring says b2, the previous ring b1:
#    the packets carry b1 as second hop, b2 (no socket) hands them on, b1
#    answers: every connection survives. Port 8: b2 resets them: all break.
# Asserts the connections (real sockets), the GRE key on the wire, and the
# counters on every hop. Usage: Tests/secondchance/run.sh PATH/TO/xdplb
set -o errexit -o nounset -o pipefail
XDPLB=$(readlink -f "$1")
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d /tmp/xdplb-sc.XXXXXX)
sw="xt-sc-sw-$$" c="xt-sc-c-$$" l1="xt-sc-l1-$$" l2="xt-sc-l2-$$" b1="xt-sc-b1-$$" b2="xt-sc-b2-$$"
pids=() agents=()
pass=0 fail=0
CONNS=${SC_CONNS:-20}
CLANG=${CLANG:-$(command -v clang || echo /opt/swift/usr/bin/clang)}

cleanup() {
	for p in "${agents[@]}" "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	for n in 1 2; do "$XDPLB" down --force --bpffs "/sys/fs/bpf/xdplb-sc-$$-l$n" >/dev/null 2>&1 || true; done
	for n in b1 b2; do decap "$n" down --interface eth0 >/dev/null 2>&1 || true; done
	for n in "$c" "$l1" "$l2" "$b1" "$b2" "$sw"; do ip netns del "$n" 2>/dev/null || true; done
	[ -n "${XDPLB_TEST_KEEP:-}" ] && cp -r "$tmp" "$XDPLB_TEST_KEEP"
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

. "$here/../lib.sh"
decap() { local n=$1; shift; XDPLB_DECAP_STATE_DIR="$tmp/decap-$n" ip netns exec "xt-sc-$n-$$" "$root/tools/gre-decap" "$@"; }
adm() { local n=$1; shift; nsenter --net="/run/netns/xt-sc-l$n-$$" "$XDPLB" "$@" --admin "$tmp/l$n.sock"; }
counter_of() { # counter_of N NAME: LB node N's global counter NAME
	adm "$1" stats --json --interval 0.05 | json "int(d['counters'].get('$2', {}).get('packets', 0))"
}
decap_counter() { decap "$1" status --interface eth0 | awk -v n="$2" '$1 == n { print $2 }'; }

# ---- topology -------------------------------------------------------------------
switch_up "$sw"
plug "$c" c 10.0.8.2 fd00:8::2
plug "$l1" l1 10.0.8.11 fd00:8::11
plug "$l2" l2 10.0.8.12 fd00:8::12
plug "$b1" b1 10.0.8.31 fd00:8::31
plug "$b2" b2 10.0.8.32 fd00:8::32
for n in "$l1" "$l2"; do
	ip netns exec "$n" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
done
# Static neighbours of the backends on the LB nodes (the agents resolve next hops from them).
mac_of() { ip -n "$1" -o link show dev eth0 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p'; }
for n in "$l1" "$l2"; do
	ip -n "$n" neigh replace 10.0.8.31 lladdr "$(mac_of "$b1")" dev eth0 nud permanent
	ip -n "$n" neigh replace 10.0.8.32 lladdr "$(mac_of "$b2")" dev eth0 nud permanent
	ip -n "$n" -6 neigh replace fd00:8::31 lladdr "$(mac_of "$b1")" dev eth0 nud permanent
	ip -n "$n" -6 neigh replace fd00:8::32 lladdr "$(mac_of "$b2")" dev eth0 nud permanent
done
for n in "$b1" "$b2"; do ip netns exec "$n" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0; done
ip -n "$c" route add 10.100.0.1/32 via 10.0.8.11
ip -n "$c" -6 route add fd00:100::1/128 via fd00:8::11
"$CLANG" -O2 -g -Wall -Werror -target bpf -I"/usr/include/$(uname -m)-linux-gnu" -I"$root/bpf" -c "$root/bpf/decap.bpf.c" -o "$tmp/decap.bpf.o"
export XDPLB_DECAP_OBJ=$tmp/decap.bpf.o
check "b1: tools/gre-decap up --mode bpf" decap b1 up --interface eth0 --mode bpf --vip 10.100.0.1 --vip fd00:100::1 --peer 10.0.8.32 --peer fd00:8::32
check "b2: tools/gre-decap up --mode bpf" decap b2 up --interface eth0 --mode bpf --vip 10.100.0.1 --vip fd00:100::1 --peer 10.0.8.31 --peer fd00:8::31

# A TCP echo on VIP:7 and VIP:8 that answers "NAME LINE" (the backend's name).
cat >"$tmp/echo.py" <<'PY'
import socket, sys, threading, time
name, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
def serve(c):
    f = c.makefile("rb")
    for line in f:
        c.sendall(name.encode() + b" " + line)
def listen(fam, addr, port):
    s = socket.socket(fam); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port)); s.listen(256)
    while True:
        c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
for p in ports:
    threading.Thread(target=listen, args=(socket.AF_INET, "10.100.0.1", p), daemon=True).start()
    threading.Thread(target=listen, args=(socket.AF_INET6, "fd00:100::1", p), daemon=True).start()
time.sleep(300)
PY
ip netns exec "$b1" python3 "$tmp/echo.py" b1 7 8 &
pids+=($!)
ip netns exec "$b2" python3 "$tmp/echo.py" b2 7 8 &
pids+=($!)

# ---- agents ------------------------------------------------------------------------
config() { # config N A|B
	local backends
	if [ "$2" = A ]; then backends="[ { address: 10.0.8.31 } ]" backends6="[ { address: 'fd00:8::31' } ]"
	else backends="[ { address: 10.0.8.31, weight: 0 }, { address: 10.0.8.32 } ]"
		backends6="[ { address: 'fd00:8::31', weight: 0 }, { address: 'fd00:8::32' } ]"; fi
	cat >"$tmp/l$1.yaml" <<YAML
node:
  interface: eth0
  xdp_mode: generic
  encap_source: { ipv4: 10.0.8.1$1, ipv6: 'fd00:8::1$1' }
  hash_seed: 0x5eed
  lru_size: 65536
  bpffs: /sys/fs/bpf/xdplb-sc-$$-l$1
  admin: $tmp/l$1.sock
vips:
  - { address: 10.100.0.1, port: 7, protocol: tcp, ring_size: 251, health: { type: none }, backends: $backends }
  - { address: 10.100.0.1, port: 8, protocol: tcp, ring_size: 251, second_chance: "off", health: { type: none }, backends: $backends }
  - { address: 'fd00:100::1', port: 7, protocol: tcp, ring_size: 251, health: { type: none }, backends: $backends6 }
YAML
}
config 1 A
config 2 A
nsenter --net="/run/netns/$l1" "$XDPLB" run --config "$tmp/l1.yaml" >"$tmp/agent1.log" 2>&1 &
agents+=($!)
nsenter --net="/run/netns/$l2" "$XDPLB" run --config "$tmp/l2.yaml" >"$tmp/agent2.log" 2>&1 &
agents+=($!)
for n in 1 2; do
	if wait_until 30 adm "$n" status >/dev/null; then ok "LB node $n: agent up (config A: b1 only)"; else
		bad "LB node $n: agent did not start"; cat "$tmp/agent$n.log"; exit 1; fi
done

# ---- 1. long-lived connections through LB node 1 --------------------------------------
# conns.py PORT OUT: CONNS connections to VIP:PORT, one line each (all must be
# answered by one backend), then waits for $tmp/go and sends a second line on
# each; OUT: {"first": {backend: n}, "second": {backend: n}, "broken": n}.
cat >"$tmp/conns.py" <<'PY'
import json, os, socket, sys, time
port, out, n, go = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
host = sys.argv[5] if len(sys.argv) > 5 else "10.100.0.1"
def ask(s, line):
    try:
        s.sendall(line); s.settimeout(3); r = s.recv(100)
        return r.split()[0].decode() if r.endswith(line) else None
    except OSError:
        return None
socks, first, second, broken = [], {}, {}, 0
for i in range(n):
    s = socket.create_connection((host, port), timeout=3)
    b = ask(s, b"one\n"); first[b] = first.get(b, 0) + 1; socks.append(s)
open(out + ".ready", "w").close()
for _ in range(600):
    if os.path.exists(go): break
    time.sleep(0.05)
for s in socks:
    b = ask(s, b"two\n")
    if b is None: broken += 1
    else: second[b] = second.get(b, 0) + 1
json.dump({"first": first, "second": second, "broken": broken}, open(out, "w"))
PY
for port in 7 8; do
	ip netns exec "$c" timeout 120 python3 "$tmp/conns.py" "$port" "$tmp/conns$port.json" "$CONNS" "$tmp/go" &
	pids+=($!)
done
ip netns exec "$c" timeout 120 python3 "$tmp/conns.py" 7 "$tmp/conns6.json" "$CONNS" "$tmp/go" fd00:100::1 &
pids+=($!)
check "the connections are up (IPv4 ports 7, 8; IPv6 port 7)" wait_until 30 sh -c "test -e '$tmp/conns7.json.ready' && test -e '$tmp/conns8.json.ready' && test -e '$tmp/conns6.json.ready'"

# ---- 2. the backend change and the ECMP change at once ---------------------------------
config 1 B
config 2 B
check "LB node 1 reloads config B (b1 draining, b2 added)" adm 1 reload
check "LB node 2 reloads config B" adm 2 reload
check "LB node 2 keeps the previous ring of both port-7 VIPs, none of port 8 (status)" test "$(adm 2 status --json |
	json "[bool(v.get('previous_ring_until')) for v in sorted(d['vips'], key=lambda v: v['name'])]")" = "[True, False, True]"
# Connections opened after the change, still through LB node 1: new flows, on b2.
ip netns exec "$c" timeout 120 python3 "$tmp/conns.py" 7 "$tmp/late.json" 5 "$tmp/go" &
pids+=($!)
ip netns exec "$c" timeout 120 python3 "$tmp/conns.py" 7 "$tmp/late6.json" 5 "$tmp/go" fd00:100::1 &
pids+=($!)
check "5 + 5 connections (IPv4, IPv6) opened after the change are up" wait_until 30 sh -c "test -e '$tmp/late.json.ready' && test -e '$tmp/late6.json.ready'"
hop0=$(counter_of 2 second_hop)
local0=$(decap_counter b2 hop_local_socket)
ip -n "$c" route replace 10.100.0.1/32 via 10.0.8.12
ip -n "$c" -6 route replace fd00:100::1/128 via fd00:8::12
ip netns exec "$sw" timeout 5 tcpdump -i v-b2 -nn -U -w "$tmp/b2.pcap" -c 5 'ip proto 47 and ip[20:2] = 0x2000' >/dev/null 2>&1 &
cap=$!
sleep 0.5
touch "$tmp/go"
for f in conns7 conns8 conns6 late late6; do wait_until 90 test -e "$tmp/$f.json" >/dev/null || true; done
wait "$cap" 2>/dev/null || true

# ---- 3. what happened ---------------------------------------------------------------------
r7=$(cat "$tmp/conns7.json" 2>/dev/null || echo '{}')
r8=$(cat "$tmp/conns8.json" 2>/dev/null || echo '{}')
echo "    port 7 (second chance): $r7"
echo "    port 8 (second_chance: off): $r8"
check "before: every connection on b1 (both VIPs)" test "$(json "(d['first'].get('b1'), len(d['first']))" <<<"$r7")$(json "(d['first'].get('b1'), len(d['first']))" <<<"$r8")" = "($CONNS, 1)($CONNS, 1)"
check "second chance: all $CONNS connections survived, answered by b1 through b2" \
	test "$(json "(d['broken'], d['second'].get('b1'))" <<<"$r7")" = "(0, $CONNS)"
n8=$(json "d['broken']" <<<"$r8")
check "second_chance off: the same change breaks them ($n8 of $CONNS broken)" test "$n8" = "$CONNS"
hop1=$(counter_of 2 second_hop)
check "LB node 2 sent $((hop1 - hop0)) packets with a second hop (>= $CONNS)" test $((hop1 - hop0)) -ge "$CONNS"
h=$(decap_counter b2 fwd_handed_on)
check "b2 handed on ${h:-0} packets (>= $CONNS)" test "${h:-0}" -ge "$CONNS" || true
[ "${h:-0}" -ge "$CONNS" ] || { decap b2 status --interface eth0 | sed 's/^/    b2: /'; decap b1 status --interface eth0 | sed 's/^/    b1: /'; }
r=$(decap_counter b1 hop_received)
check "b1 received ${r:-0} handed-on packets (>= $CONNS) and handed none on" sh -c "test '${r:-0}' -ge '$CONNS' && test '$(decap_counter b1 fwd_handed_on)' = 0"
# The GRE key on the wire into b2: K set, key = b1's address 10.0.8.31.
check "on the wire to b2: GRE flags 0x2000, key 0a 00 08 1f (b1)" python3 - "$tmp/b2.pcap" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()[24:]
ok = False
while len(d) >= 16:
    incl = struct.unpack("<I", d[8:12])[0]; f = d[16:16 + incl]; d = d[16 + incl:]
    ip = f[14:]
    if len(ip) >= 28 and ip[9] == 47:
        g = ip[(ip[0] & 15) * 4:]
        ok = ok or (g[0:2] == b"\x20\x00" and g[4:8] == bytes([10, 0, 8, 31]))
sys.exit(0 if ok else 1)
PY
# The late connections moved too: LB node 2 names b1 as their second hop, but
# b2 (the first hop) has their sockets and keeps them.
rl=$(cat "$tmp/late.json" 2>/dev/null || echo '{}')
echo "    opened after the change: $rl"
check "connections opened after the change: on b2 before and after the move, none broken" \
	test "$(json "(d['first'].get('b2'), d['second'].get('b2'), d['broken'])" <<<"$rl")" = "(5, 5, 0)"
r6=$(cat "$tmp/conns6.json" 2>/dev/null || echo '{}')
l6=$(cat "$tmp/late6.json" 2>/dev/null || echo '{}')
echo "    IPv6: $r6; opened after the change: $l6"
check "IPv6 (6in6, the second hop as a hop id): all $CONNS connections survived, answered by b1 through b2" \
	test "$(json "(d['first'].get('b1'), d['broken'], d['second'].get('b1'))" <<<"$r6")" = "($CONNS, 0, $CONNS)"
check "IPv6 connections opened after the change stay on b2 (its local socket), none broken" \
	test "$(json "(d['first'].get('b2'), d['second'].get('b2'), d['broken'])" <<<"$l6")" = "(5, 5, 0)"
l=$(decap_counter b2 hop_local_socket)
check "b2 kept $(( ${l:-0} - ${local0:-0} )) keyed packets of its own connections (a local socket: >= 10)" test $(( ${l:-0} - ${local0:-0} )) -ge 10
# A new connection after the change goes to b2, with no second hop.
ok_new=$(ip netns exec "$c" timeout 10 python3 -c '
import socket
s = socket.create_connection(("10.100.0.1", 7), timeout=3); s.sendall(b"new\n"); print(s.recv(100).split()[0].decode())' 2>&1 || true)
check "a new connection after the change is answered by b2" test "$ok_new" = b2

echo
echo "secondchance: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
