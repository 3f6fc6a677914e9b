#!/usr/bin/env bash
# Through-tunnel health checks (issue 10): the agent's probe connects to the VIP,
# the probe program (tc egress, bpf/probe.bpf.c) wraps it in the data plane's GRE
# header toward the backend, the backend (tools/gre-decap: kernel GRE on be1, the
# tc BPF decap on be2) decapsulates it and answers by DSR from the VIP. Asserts:
# the exact outer header bytes on the wire (4in4, 6in4, 6in6); a backend whose VIP
# is removed from lo is marked down by the through-tunnel check and kept by a plain
# check of the same service; the probe counters; a VIP routed out of another
# interface is never probed (no unwrapped probe leaves); `xdplb down` removes it.
#
# Topology (all created here, all deleted on exit), one L2 segment (bridge in xt-tn-sw-PID):
#   xt-tn-lb-PID  10.0.9.1, fd00:9::1     the LB node: agent, XDP (generic), probe program
#   xt-tn-rt-PID  10.0.9.254, fd00:9::fe  the VIPs' next hop (a router that forwards nothing)
#   xt-tn-b1-PID  10.0.9.31, fd00:9::31   backend, kernel GRE decap, VIPs on lo, HTTP :8080
#   xt-tn-b2-PID  10.0.9.32, fd00:9::32   backend, tc BPF decap, VIPs on lo, HTTP :8080
# Usage: Tests/tunnel/run.sh PATH/TO/xdplb
set -o errexit -o nounset -o pipefail
XDPLB=$(readlink -f "$1")
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d /tmp/xdplb-tunnel.XXXXXX)
sw="xt-tn-sw-$$" lb="xt-tn-lb-$$" rt="xt-tn-rt-$$" b1="xt-tn-b1-$$" b2="xt-tn-b2-$$"
bpffs="/sys/fs/bpf/xdplb-tunnel-test-$$"
sock="$tmp/admin.sock"
agent_pid="" pids=()
pass=0 fail=0
CLANG=${CLANG:-$(command -v clang || echo /opt/swift/usr/bin/clang)}

cleanup() {
	[ -n "$agent_pid" ] && kill -9 "$agent_pid" 2>/dev/null || true
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	"$XDPLB" down --force --bpffs "$bpffs" >/dev/null 2>&1 || true
	for n in b1 b2; do decap "$n" down --interface eth0 >/dev/null 2>&1 || true; done
	for n in "$lb" "$rt" "$b1" "$b2" "$sw"; do ip netns del "$n" 2>/dev/null || true; done
	[ -n "${XDPLB_TEST_KEEP:-}" ] && cp -r "$tmp" "$XDPLB_TEST_KEEP"
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

. "$here/../lib.sh"
# decap b1|b2 ARGS...: tools/gre-decap on that backend, with its own state directory.
decap() { local n=$1; shift; XDPLB_DECAP_STATE_DIR="$tmp/decap-$n" ip netns exec "xt-tn-$n-$$" "$root/tools/gre-decap" "$@"; }
inlb() { nsenter --net="/run/netns/$lb" "$@"; }
adm() { inlb "$XDPLB" "$@" --admin "$sock"; }
st() { adm status --json; }

# ---- topology ---------------------------------------------------------------
switch_up "$sw"
plug "$lb" lb 10.0.9.1 fd00:9::1
plug "$rt" rt 10.0.9.254 fd00:9::fe
plug "$b1" b1 10.0.9.31 fd00:9::31
plug "$b2" b2 10.0.9.32 fd00:9::32
# The LB node reaches the VIPs through the router, as a real node would (its default route).
inlb ip route add 10.100.0.0/24 via 10.0.9.254
inlb ip -6 route add fd00:100::/64 via fd00:9::fe
for n in "$b1" "$b2"; do ip netns exec "$n" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0; done
"$CLANG" -O2 -g -Wall -Werror -target bpf -I"/usr/include/$(uname -m)-linux-gnu" -I"$root/bpf" -c "$root/bpf/decap.bpf.c" -o "$tmp/decap.bpf.o"
export XDPLB_DECAP_OBJ=$tmp/decap.bpf.o
# be1: tools/gre-decap's default (kernel GRE where the kernel has it, else the tc BPF decap); be2: XDP decap.
check "be1: tools/gre-decap up (auto)" decap b1 up --interface eth0 --vip 10.100.0.1 --vip fd00:100::1
check "be2: tools/gre-decap up --mode xdp" decap b2 up --interface eth0 --mode xdp --vip 10.100.0.1 --vip fd00:100::1
for n in "$b1" "$b2"; do
	# One server on every address: the backend's own and the VIPs (dual stack).
	ip netns exec "$n" python3 -m http.server 8080 --bind :: --directory "$tmp" >/dev/null 2>&1 &
	pids+=($!)
done

# ---- the agent ------------------------------------------------------------------
cat >"$tmp/node.yaml" <<YAML
node:
  interface: eth0
  xdp_mode: generic
  encap_source: { ipv4: 10.0.9.1, ipv6: 'fd00:9::1' }
  path_mtu: 1500
  hash_seed: 0x5eed
  lru_size: 65536
  bpffs: $bpffs
  admin: $sock
vips:
  # Through the tunnel: the probe is GET http://VIP:8080/ inside GRE to each backend.
  - address: 10.100.0.1
    port: 8080
    protocol: tcp
    ring_size: 1009
    health: { type: http, path: /, interval: 200ms, timeout: 150ms, rise: 1, fall: 2, through_tunnel: true }
    backends: [ { address: 10.0.9.31 }, { address: 10.0.9.32 }, { address: 'fd00:9::31' } ]
  # The same service checked plainly, on the backends' own addresses.
  - address: 10.100.0.1
    port: 80
    protocol: tcp
    ring_size: 1009
    health: { type: http, path: /, port: 8080, interval: 200ms, timeout: 150ms, rise: 1, fall: 2 }
    backends: [ { address: 10.0.9.31 }, { address: 10.0.9.32 } ]
  # IPv6 VIP: 6in4 to be1, 6in6 to be2.
  - address: 'fd00:100::1'
    port: 8080
    protocol: tcp
    ring_size: 1009
    health: { type: http, path: /, interval: 200ms, timeout: 150ms, rise: 1, fall: 2, through_tunnel: true }
    backends: [ { address: 10.0.9.31 }, { address: 'fd00:9::32' } ]
YAML
nsenter --net="/run/netns/$lb" "$XDPLB" run --config "$tmp/node.yaml" >"$tmp/agent.log" 2>&1 &
agent_pid=$!
if wait_until 30 adm status >/dev/null; then ok "agent starts with through-tunnel checks"; else
	bad "agent did not start"; cat "$tmp/agent.log"; exit 1; fi

T4=10.100.0.1:8080/tcp P4=10.100.0.1:80/tcp T6="[fd00:100::1]:8080/tcp"
field() { st | json "[b for v in d['vips'] if v['name'] == '$1' for b in v['backends'] if b['address'] == '$2'][0]['$3']"; }
all_ok() { # every backend of every VIP healthy with a passing probe
	[ "$(st | json "all(b['healthy'] and b['last_result'] == 'status 200' for v in d['vips'] for b in v['backends'])")" = True ]
}
st | json "[v['name'] for v in d['vips']]" >"$tmp/vips.txt"
check "VIP names as expected" grep -qF "'$T6'" "$tmp/vips.txt"
if t=$(wait_until 10 all_ok); then ok "every through-tunnel probe passes: 4in4, 6in4, 4in6 and 6in6 (${t}s)"; else
	bad "through-tunnel probes do not pass"; st | json "[(v['name'], b['address'], b['last_result']) for v in d['vips'] for b in v['backends']]"; fi
check "status names the probe: VIP, port and the backend it is tunnelled to" \
	test "$(field "$T4" 10.0.9.31 check)" = "http 10.100.0.1:8080/ via GRE to 10.0.9.31"
check "... and for IPv6" test "$(field "$T6" fd00:9::32 check)" = "http [fd00:100::1]:8080/ via GRE to fd00:9::32"
check "the plain check of the same service names the backend itself" test "$(field "$P4" 10.0.9.32 check)" = "http 10.0.9.32:8080/"
check "the probe program is attached to eth0 egress (tc, pref 22596)" sh -c "tc -n '$lb' filter show dev eth0 egress | grep -q 'xdplb_probe'"

# ---- the bytes on the wire ---------------------------------------------------------
# On the bridge ports: the backends' own capture would see be2's packets after its XDP decap.
ip netns exec "$sw" timeout 3 tcpdump -i v-b1 -nn -U -w "$tmp/b1.pcap" -c 40 'ip proto 47' >/dev/null 2>&1 &
cap1=$!
ip netns exec "$sw" timeout 3 tcpdump -i v-b1 -nn -U -w "$tmp/b1v6.pcap" -c 40 'ip6 proto 47' >/dev/null 2>&1 &
cap3=$!
ip netns exec "$sw" timeout 3 tcpdump -i v-b2 -nn -U -w "$tmp/b2.pcap" -c 40 'ip6 proto 47' >/dev/null 2>&1 &
cap2=$!
wait "$cap1" "$cap2" "$cap3" 2>/dev/null || true
cat >"$tmp/gre.py" <<'PY'
import struct, sys, ipaddress
def frames(path):
    b = open(path, 'rb').read()
    le = b[:4] == b'\xd4\xc3\xb2\xa1'
    e = '<' if le else '>'
    off = 24
    while off + 16 <= len(b):
        _, _, incl, _ = struct.unpack(e + 'IIII', b[off:off + 16]); off += 16
        yield b[off:off + incl]; off += incl
def ip4sum(h):
    s = sum(struct.unpack('>10H', h)); s = (s & 0xffff) + (s >> 16); s = (s & 0xffff) + (s >> 16)
    return s == 0xffff
want = sys.argv[2]  # 4in4, 6in4 or 6in6
seen = 0
for f in frames(sys.argv[1]):
    et = struct.unpack('>H', f[12:14])[0]
    if et == 0x0800:
        o = f[14:34]
        assert o[0] == 0x45, "outer IPv4: version/IHL %#x" % o[0]
        assert struct.unpack('>H', o[6:8])[0] & 0x4000, "outer IPv4: DF not set"
        assert o[8] == 64 and o[9] == 47, "outer IPv4: TTL %d proto %d" % (o[8], o[9])
        assert ip4sum(o), "outer IPv4: bad header checksum"
        assert struct.unpack('>H', o[2:4])[0] == len(f) - 14, "outer IPv4: total length"
        src, dst = ipaddress.ip_address(o[12:16]), ipaddress.ip_address(o[16:20])
        gre, inner = f[34:38], f[38:]
        fam = '4'
    elif et == 0x86dd:
        o = f[14:54]
        assert o[0] >> 4 == 6 and o[6] == 47 and o[7] == 64, "outer IPv6: next header %d hop limit %d" % (o[6], o[7])
        assert struct.unpack('>H', o[4:6])[0] == len(f) - 54, "outer IPv6: payload length"
        src, dst = ipaddress.ip_address(o[8:24]), ipaddress.ip_address(o[24:40])
        gre, inner = f[54:58], f[58:]
        fam = '6'
    else:
        continue
    flags, proto = struct.unpack('>HH', gre)
    assert flags == 0, "GRE flags/version %#x (want the 4-byte base header)" % flags
    if proto == 0x0800:
        assert inner[0] >> 4 == 4; idst = ipaddress.ip_address(inner[16:20]); isrc = ipaddress.ip_address(inner[12:16])
        dport = struct.unpack('>H', inner[(inner[0] & 15) * 4 + 2:][:2])[0]; ifam = '4'
    elif proto == 0x86dd:
        assert inner[0] >> 4 == 6; idst = ipaddress.ip_address(inner[24:40]); isrc = ipaddress.ip_address(inner[8:24])
        dport = struct.unpack('>H', inner[42:44])[0]; ifam = '6'
    else:
        raise AssertionError("GRE protocol %#x" % proto)
    if ifam + 'in' + fam != want:
        continue
    exp = dict(zip(sys.argv[3::2], sys.argv[4::2]))
    got = {'src': str(src), 'dst': str(dst), 'inner_dst': str(idst), 'inner_src': str(isrc), 'dport': str(dport)}
    assert all(got[k] == v for k, v in exp.items()), (got, exp)
    seen += 1
assert seen >= 3, "%s: only %d probe packets of that kind captured" % (want, seen)
print("%s: %d probe packets, every one as expected" % (want, seen))
PY
check "4in4 probe packets on be1: outer 10.0.9.1 > 10.0.9.31, DF, TTL 64, GRE 0x0000/0x0800, inner to 10.100.0.1:8080 from 10.0.9.1" \
	python3 "$tmp/gre.py" "$tmp/b1.pcap" 4in4 src 10.0.9.1 dst 10.0.9.31 inner_dst 10.100.0.1 inner_src 10.0.9.1 dport 8080
check "6in4 probe packets on be1: outer IPv4 to 10.0.9.31, GRE 0x86dd, inner to [fd00:100::1]:8080 from fd00:9::1" \
	python3 "$tmp/gre.py" "$tmp/b1.pcap" 6in4 src 10.0.9.1 dst 10.0.9.31 inner_dst fd00:100::1 inner_src fd00:9::1 dport 8080
check "4in6 probe packets on be1: outer fd00:9::1 > fd00:9::31, GRE 0x0800, inner to 10.100.0.1:8080 from 10.0.9.1" \
	python3 "$tmp/gre.py" "$tmp/b1v6.pcap" 4in6 src fd00:9::1 dst fd00:9::31 inner_dst 10.100.0.1 inner_src 10.0.9.1 dport 8080
check "6in6 probe packets on be2: outer fd00:9::1 > fd00:9::32, next header 47, hop limit 64, inner to [fd00:100::1]:8080" \
	python3 "$tmp/gre.py" "$tmp/b2.pcap" 6in6 src fd00:9::1 dst fd00:9::32 inner_dst fd00:100::1 dport 8080

# ---- a backend that lost the VIP: down through the tunnel, up by a plain check ------------
ip -n "$b2" addr del 10.100.0.1/32 dev lo
t4_down() { [ "$(field "$T4" 10.0.9.32 healthy) $(field "$T4" 10.0.9.32 slots)" = "False 0" ]; }
if t=$(wait_until 5 t4_down); then ok "VIP gone from be2's lo: the through-tunnel check marks it down (${t}s), no slots"; else
	bad "VIP gone from be2's lo: still up through the tunnel ($(field "$T4" 10.0.9.32 last_result))"; fi
sleep 0.6   # three more intervals
check "... while the plain check of the same service keeps it (healthy, slots)" \
	sh -c "test '$(field "$P4" 10.0.9.32 healthy)' = True && test '$(field "$P4" 10.0.9.32 slots)' -gt 0"
check "... and be2 still passes on the IPv6 VIP it still has" test "$(field "$T6" fd00:9::32 healthy)" = True
ip -n "$b2" addr add 10.100.0.1/32 dev lo
t4_up() { [ "$(field "$T4" 10.0.9.32 healthy)" = True ]; }
check "VIP back on be2's lo: up again through the tunnel" wait_until 5 t4_up

# ---- counters --------------------------------------------------------------------------
inlb curl -sf --unix-socket "$sock" http://agent/stats >"$tmp/stats.json"
check "the probe program counted 4in4/6in4 (gre_v4) and 6in6 (gre_v6), and no drop" python3 -c "
import json; t = json.load(open('$tmp/stats.json'))['tunnel_probes']
assert t['gre_v4']['packets'] > 0 and t['gre_v6']['packets'] > 0, t
assert t['rx']['packets'] == t['gre_v4']['packets'] + t['gre_v6']['packets'], t
assert all(v['packets'] == 0 for k, v in t.items() if k.startswith('drop_')), t"
inlb curl -sf --unix-socket "$sock" http://agent/metrics >"$tmp/metrics.txt"
check "metrics: xdplb_tunnel_probe_packets by outcome" grep -qE '^xdplb_tunnel_probe_packets(_total)?\{outcome="gre_v6"\} [1-9]' "$tmp/metrics.txt"

# ---- a VIP routed out of another interface is never probed -------------------------------
# A second interface (a veth whose peer is down: nothing it sends goes anywhere).
inlb ip link add side0 type veth peer name side1
inlb ip link set side0 up
inlb ip addr add 192.0.2.1/24 dev side0
inlb ip route replace 10.100.0.0/24 via 192.0.2.2 dev side0 onlink
ip netns exec "$rt" timeout 2 tcpdump -i eth0 -nn -U -w "$tmp/rt.pcap" 'tcp port 8080 and host 10.100.0.1' >/dev/null 2>&1 &
cap=$!
refused_route() { [ "$(field "$T4" 10.0.9.31 last_result)" = "the route to 10.100.0.1 leaves through side0, not eth0 (where the probe program is)" ]; }
check "VIP routed out of side0: the probe is not sent, and says why" wait_until 5 refused_route
wait "$cap" 2>/dev/null || true
inlb ip -s link show side0 >"$tmp/dummy.txt"
check "... no probe packet left plainly (none at the router, none out of side0)" python3 -c "
import subprocess; out = subprocess.run(['tcpdump', '-nn', '-r', '$tmp/rt.pcap'], capture_output=True, text=True).stdout
assert out.strip() == '', out
lines = open('$tmp/dummy.txt').read().split('\n'); tx = [i for i, l in enumerate(lines) if 'TX:' in l]
assert lines[tx[0] + 1].split()[1] == '0', lines"
inlb ip route replace 10.100.0.0/24 via 10.0.9.254
check "route back: through-tunnel probes pass again" wait_until 5 all_ok

# ---- down removes the probe program ---------------------------------------------------------
kill -TERM "$agent_pid"; wait "$agent_pid" 2>/dev/null || true; agent_pid=""
inlb "$XDPLB" down --bpffs "$bpffs" >"$tmp/down.out" 2>&1 || true
check "xdplb down also removes the probe program from eth0 egress" \
	sh -c "grep -q 'removed tc egress filter xdplb_probe (through-tunnel probes) on eth0' '$tmp/down.out' && ! tc -n '$lb' filter show dev eth0 egress | grep -q xdplb_probe"

echo
echo "tunnel: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
