#!/usr/bin/env bash
# BGP announcement gate, seen on a real router: bird2 in a router namespace
# peers (eBGP + BFD) with `xdplb bgp run` (bird2 with the generated config) in
# an LB namespace where `xdplb run` gates the VIPs. Every condition of the
# gate must move the VIP routes in the router's kernel table, not only in the
# agent's status.
#
# Topology (all created here, all deleted on exit):
#   xt-bg-rt-PID: rt0 10.0.8.1/24 fd00:8::1/64   -- the router, bird2 (AS 65000)
#   xt-bg-lb-PID: lb1 10.0.8.2 fd00:8::2 (to the router), lb0 10.0.9.1 (to the
#                 backends, XDP generic), agent + xdplb bgp run (AS 65001)
#   xt-bg-pe-PID: pe0 10.0.9.2, 10.0.9.4 -- backends (HTTP :8080 for health)
# VIPs: 10.100.0.1:80 and [fd00:100::1]:80 (both backends), 10.100.0.2:80
# (for the all-drained case), 10.100.0.3:80 (a backend whose health port is
# closed: fail-open, with fail_open: withdraw). Both health servers stopped,
# then one restarted: the node's view is partial, so it stays withdrawn and
# failing open until every backend is re-probed (sampled on the router).
# Usage: Tests/bgp/run.sh PATH/TO/xdplb
set -o errexit -o nounset -o pipefail
XDPLB=$(readlink -f "$1")
tmp=$(mktemp -d /tmp/xdplb-bgp.XXXXXX)
rt="xt-bg-rt-$$" lb="xt-bg-lb-$$" pe="xt-bg-pe-$$"
bpffs="/sys/fs/bpf/xdplb-bgp-test-$$"
cfg="$tmp/node.yaml" state="$tmp/state"
sock="$tmp/admin.sock"   # the agent's admin socket (node.admin)
agent_pid="" sup_pid="" rbird_pid="" pids=()
pass=0 fail=0

cleanup() {
	[ -n "$agent_pid" ] && kill -9 "$agent_pid" 2>/dev/null || true
	[ -n "$sup_pid" ] && kill -TERM "$sup_pid" 2>/dev/null || true
	[ -n "$rbird_pid" ] && kill -TERM "$rbird_pid" 2>/dev/null || true
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	# A supervisor killed hard leaves bird; stop what runs with our files.
	pkill -f -- "$tmp/" 2>/dev/null || true
	"$XDPLB" down --force --bpffs "$bpffs" >/dev/null 2>&1 || "$XDPLB" down --bpffs "$bpffs" >/dev/null 2>&1 || true
	for n in "$rt" "$lb" "$pe"; do ip netns del "$n" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

. "$(dirname "$0")/../lib.sh"
inlb() { nsenter --net="/run/netns/$lb" "$@"; }   # nsenter keeps /sys/fs/bpf visible
x() { inlb "$XDPLB" "$@"; }
status_json() { x status --admin "$sock" --json; }

if [ "$(id -u)" != 0 ]; then
	if [ "${CI:-}" = true ]; then bad "needs root (CI=true: not skipping)"; else echo "SKIP bgp: needs root"; fi
	echo "bgp: $pass passed, $fail failed"; [ "$fail" = 0 ]; exit
fi
command -v bird >/dev/null || { bad "bird2 is not installed (tools/install-deps bird2)"; echo "bgp: $pass passed, $fail failed"; exit 1; }

# ---- topology ---------------------------------------------------------------
for n in "$rt" "$lb" "$pe"; do ip netns add "$n"; ip -n "$n" link set lo up; done
ip link add rt0 netns "$rt" type veth peer name lb1 netns "$lb"
ip link add lb0 netns "$lb" type veth peer name pe0 netns "$pe"
for l in "$rt rt0" "$lb lb1" "$lb lb0" "$pe pe0"; do set -- $l; ip -n "$1" link set "$2" up; done
ip netns exec "$rt" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.all.forwarding=1 net.ipv4.ip_forward=1
ip -n "$rt" addr add 10.0.8.1/24 dev rt0
ip -n "$rt" addr add fd00:8::1/64 dev rt0 nodad
ip -n "$lb" addr add 10.0.8.2/24 dev lb1
ip -n "$lb" addr add fd00:8::2/64 dev lb1 nodad
ip -n "$lb" addr add 10.0.9.1/24 dev lb0
for a in 10.0.9.2 10.0.9.4; do ip -n "$pe" addr add "$a/24" dev pe0; done
mac=$(ip netns exec "$pe" cat /sys/class/net/pe0/address)
for a in 10.0.9.2 10.0.9.4; do ip -n "$lb" neigh replace "$a" lladdr "$mac" dev lb0 nud permanent; done
# Let the links settle (IPv6 link-local addresses, BFD's sources) before the daemons start.
sleep 0.5

declare -A server
start_server() { # start_server ADDR: an HTTP server for health checks
	ip netns exec "$pe" python3 -m http.server 8080 --bind "$1" --directory "$tmp" >/dev/null 2>&1 &
	pids+=($!)
	server[$1]=$!
}
stop_server() { kill "${server[$1]}" 2>/dev/null || true; wait "${server[$1]}" 2>/dev/null || true; }
start_server 10.0.9.2
start_server 10.0.9.4

# ---- the router: bird2, ECMP into its kernel table, BFD ------------------------
cat >"$tmp/router.conf" <<EOF
router id 10.0.8.1;
log "$tmp/router-bird.log" all;
protocol device { scan time 10; }
protocol kernel { merge paths on; ipv4 { import none; export all; }; }
protocol kernel { merge paths on; ipv6 { import none; export all; }; }
protocol bfd { interface "*" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }; }
protocol bgp lb4 { local as 65000; neighbor 10.0.8.2 as 65001; hold time 9; connect retry time 1; bfd on;
	ipv4 { import all; export none; }; }
protocol bgp lb6 { local as 65000; neighbor fd00:8::2 as 65001; hold time 9; connect retry time 1; bfd on;
	ipv6 { import all; export none; }; }
EOF
ip netns exec "$rt" bird -f -c "$tmp/router.conf" -s "$tmp/router.ctl" >>"$tmp/router.out" 2>&1 &
rbird_pid=$!

# ---- the LB node --------------------------------------------------------------
write_config() { # write_config [EXTRA-PEER-LINE] [FAIL_OPEN]
	cat >"$cfg" <<YAML
node:
  interface: lb0
  xdp_mode: generic
  encap_source: { ipv4: 10.0.9.1, ipv6: "fd00:9::1" }
  bpffs: $bpffs
  admin: $sock
  state_dir: $state
  bgp:
    local_asn: 65001
    router_id: 10.0.8.2
    peers:
      - { address: 10.0.8.1, asn: 65000, name: rtr4 }
      - { address: "fd00:8::1", asn: 65000, name: rtr6 }
${1:-}
    bfd: { interval: 100ms, multiplier: 3 }
    fail_open: ${2:-withdraw}
    grace_time: 3s
    quiet_time: 500ms
    drain_timeout: 5s
    daemon: { control_socket: $tmp/lb-bird.ctl, config: $tmp/lb-bird.conf }
vips:
  - address: 10.100.0.1
    port: 80
    health: { type: http, path: /, port: 8080, interval: 200ms, timeout: 150ms, rise: 2, fall: 4 }
    backends: [ { address: 10.0.9.2 }, { address: 10.0.9.4 } ]
  - address: "fd00:100::1"
    port: 80
    health: { type: tcp, port: 8080, interval: 200ms, timeout: 150ms, rise: 2, fall: 4 }
    backends: [ { address: 10.0.9.2 }, { address: 10.0.9.4 } ]
  - address: 10.100.0.2
    port: 80
    health: { type: tcp, port: 8080, interval: 200ms, timeout: 150ms, rise: 2, fall: 4 }
    backends: [ { address: 10.0.9.2 } ]
  - address: 10.100.0.3
    port: 80
    health: { type: tcp, port: 8081, interval: 200ms, timeout: 150ms, rise: 2, fall: 2 }
    backends: [ { address: 10.0.9.4 } ]
YAML
}
write_config

start_sup() {
	ip netns exec "$lb" "$XDPLB" bgp run --config "$cfg" >>"$tmp/sup.log" 2>&1 &
	sup_pid=$!
}
start_agent() {
	nsenter --net="/run/netns/$lb" env XDPLB_FAULT_FILE="$tmp/fault" "$XDPLB" run --config "$cfg" >>"$tmp/agent.log" 2>&1 &
	agent_pid=$!
	wait_until 20 x status --admin "$sock" >/dev/null || { tail -20 "$tmp/agent.log"; return 1; }
}

# The router's routes for an address: the next hops, sorted ("" when none).
rroute() { ip -n "$rt" route show "$1" 2>/dev/null | grep -o 'via [^ ]*' | sort | tr '\n' ' '; }
rroute6() { ip -n "$rt" -6 route show "$1" 2>/dev/null | grep -o 'via [^ ]*' | sort | tr '\n' ' '; }
has4() { [ "$(rroute "$1")" = "via 10.0.8.2 " ]; }
has6() { [ "$(rroute6 "$1")" = "via fd00:8::2 " ]; }
gone4() { [ -z "$(rroute "$1")" ]; }
gone6() { [ -z "$(rroute6 "$1")" ]; }
announcement() { status_json | json "[v['announcement'] for v in d['vips'] if v['name'] == '$1'][0]"; }
is_state() { [ "$(announcement "$1")" = "$2" ]; }

check "the generated bird config parses (bird -p)" sh -c "'$XDPLB' bgp config --config '$cfg' >'$tmp/gen.conf' && bird -p -c '$tmp/gen.conf'"
start_sup
check "agent starts" start_agent
established() { status_json | json "all(s['info'].startswith('Established') for s in d['announcements']['sessions']) and len(d['announcements']['sessions']) == 2" | grep -q True; }
check "status shows both BGP sessions Established, as bird reports them" wait_until 15 established
bfd_up() { status_json | json "all(s['bfd'] == 'Up' for s in d['announcements']['sessions'])" | grep -q True; }
check "status shows BFD Up on both sessions" wait_until 10 bfd_up
if t=$(wait_until 15 has4 10.100.0.1); then ok "router learned 10.100.0.1/32 via the LB node from BGP (${t}s)"; else bad "router learned 10.100.0.1/32 via BGP"; ip -n "$rt" route; fi
check "router learned fd00:100::1/128 via the LB node (IPv6 session)" wait_until 10 has6 fd00:100::1
check "router learned 10.100.0.2/32" wait_until 5 has4 10.100.0.2
check "status: 10.100.0.3 withdrawn because all backends are down" wait_until 10 is_state 10.100.0.3:80/tcp "withdrawn: all backends down (fail_open: withdraw)"
check "router has no route for 10.100.0.3 (fail-open, withdrawn)" gone4 10.100.0.3
check "the announcement table holds exactly the announced addresses (proto 222)" \
	test "$(ip -n "$lb" route show table 100 proto 222 | awk '{print $1}' | sort | tr '\n' ' ')" = "10.100.0.1 10.100.0.2 "
inlb curl -sf --unix-socket "$sock" http://localhost/metrics >"$tmp/metrics"
check "metrics: xdplb_vip_announced 1 and 0, sessions established" sh -c \
	"grep -Eq '^xdplb_vip_announced\\{vip=\"10.100.0.1:80/tcp\"\\} 1(\\.0)?$' '$tmp/metrics' && grep -Eq '^xdplb_vip_announced\\{vip=\"10.100.0.3:80/tcp\"\\} 0(\\.0)?$' '$tmp/metrics' && grep -Eq '^xdplb_bgp_session_established\\{.*session=\"rtr4\".*\\} 1(\\.0)?$' '$tmp/metrics'"
check "every announcement change is logged" grep -q 'state=announced vip=10.100.0.1:80/tcp .*announcement changed' "$tmp/agent.log"

# ---- node drain ---------------------------------------------------------------
check "xdplb node drain" x node drain --admin "$sock"
if t=$(wait_until 5 gone4 10.100.0.1); then ok "drain: the router withdrew 10.100.0.1 (${t}s)"; else bad "drain: router still routes 10.100.0.1"; fi
gone_all() { gone4 10.100.0.1 && gone6 fd00:100::1 && gone4 10.100.0.2; }
check "drain: the router withdrew fd00:100::1 and 10.100.0.2" gone_all
check "drain: status says withdrawn: node drained" is_state 10.100.0.1:80/tcp "withdrawn: node drained"
stopped() { status_json | json "d['announcements']['traffic_stopped']" | grep -q True; }
check "drain: status shows traffic to the node has stopped" wait_until 5 stopped
human_drained() { x status --admin "$sock" | grep -q 'NODE DRAINED, announcing nothing.*traffic to this node has stopped'; }
check "drain: the human status says so" human_drained
check "drain: the program stays attached (forwarding continues)" sh -c "ip -n $lb link show lb0 | grep -q xdp"
check "xdplb node undrain" x node undrain --admin "$sock"
check "undrain: the router learns 10.100.0.1 again" wait_until 5 has4 10.100.0.1

# ---- no usable ring: every backend of 10.100.0.2 drained ------------------------
check "drain the only backend of 10.100.0.2" x drain 10.0.9.2 --vip 10.100.0.2:80/tcp --admin "$sock"
check "no usable ring: the router withdrew 10.100.0.2" wait_until 5 gone4 10.100.0.2
check "no usable ring: 10.100.0.1 (another address) stays announced" has4 10.100.0.1
check "status: withdrawn: no usable ring" is_state 10.100.0.2:80/tcp "withdrawn: no usable ring"
check "undrain it" x undrain 10.0.9.2 --vip 10.100.0.2:80/tcp --admin "$sock"
check "a usable ring again: the router learns 10.100.0.2" wait_until 5 has4 10.100.0.2

# ---- a failed reconcile --------------------------------------------------------
echo "10.100.0.2:80/tcp" >"$tmp/fault"
if x reload --admin "$sock" >"$tmp/reload.out" 2>&1; then bad "reload with an injected reconcile fault fails"; else ok "reload with an injected reconcile fault fails"; fi
check "failed reconcile: the router withdrew every address of the node" wait_until 5 gone_all
failed_state() { status_json >"$tmp/st.json"; grep -q 'withdrawn: last reconcile failed (injected reconcile fault' "$tmp/st.json" || { grep -E 'announcement|error' "$tmp/st.json"; false; }; }
check "status: withdrawn: last reconcile failed (…)" failed_state
rm -f "$tmp/fault"
check "reload succeeds again" x reload --admin "$sock"
check "reconcile succeeded: the router learns 10.100.0.1 again" wait_until 5 has4 10.100.0.1

# ---- every backend down, then one back: withdrawn until the view re-converges ----
# (health 200 ms, rise 2, fall 4: settled again rise + fall = 6 probes, 1.2 s: long enough for a sampler taking ~0.3 s a sample after the first is back)
stop_server 10.0.9.2; stop_server 10.0.9.4
all_down() { status_json | json "all(not b['healthy'] for v in d['vips'] for b in v['backends'])" | grep -q True; }
check "both health servers stopped: every backend down on the node" wait_until 10 all_down
check "every backend down (fail_open: withdraw): the router withdrew 10.100.0.1" wait_until 5 gone4 10.100.0.1
start_server 10.0.9.2
be_up() { status_json | json "[b['healthy'] for v in d['vips'] if v['name'] == '10.100.0.1:80/tcp' for b in v['backends'] if b['address'] == '$1'][0]" | grep -q True; }
# Sample from the moment 10.0.9.2 is up again until 10.100.0.1 is announced: the
# router must not route it while the node's view is partial, and the data plane
# must keep failing open (10.0.9.4, still down, keeps its slots) until then.
partial=0 early=0 held=0
for _ in $(seq 1 200); do
	# The router first: a route seen before a status that still says "not
	# converged" was early (the reverse order would count one added in between).
	routed=0; has4 10.100.0.1 && routed=1
	inlb curl -sf --unix-socket "$sock" http://localhost/status >"$tmp/iso.json" || continue
	# 10.0.9.2 healthy? the VIP's announcement, 10.0.9.4's slots (one parse per sample)
	read -r up2 slots4 ann < <(json "[' '.join([str(next(b['healthy'] for b in v['backends'] if b['address'] == '10.0.9.2')), str(next(b['slots'] for b in v['backends'] if b['address'] == '10.0.9.4')), v['announcement']]) for v in d['vips'] if v['name'] == '10.100.0.1:80/tcp'][0]" <"$tmp/iso.json")
	if [ "$up2" = True ]; then
		# The probe state is read live; the agent may not have acted on it yet (a
		# sample between the probe's rise and the reconcile it triggers): still
		# withdrawn, so keep sampling, but it is not a partial-view sample.
		if [ "$ann" = "withdrawn: all backends down (fail_open: withdraw)" ]; then
			[ "$routed" = 0 ] || early=$((early + 1))
			sleep 0.05; continue
		fi
		[ "$ann" = "withdrawn: health checks not converged" ] || { echo "    (the partial view ended: $ann, 10.0.9.4 slots $slots4)"; break; }
		partial=$((partial + 1))
		[ "$routed" = 0 ] || early=$((early + 1))
		[ "$slots4" != 0 ] && held=$((held + 1))
	fi
	sleep 0.05
done
if [ "$partial" -gt 0 ] && [ "$early" = 0 ] && [ "$held" = "$partial" ]; then
	ok "one backend back after all were down: withdrawn (health checks not converged) and still failing open in $partial samples, never routed by the router"
else
	bad "one backend back after all were down: $partial partial-view samples, $early with a router route, $held still failing open"
fi
check "view settled (6 probes): the router learns 10.100.0.1 again" wait_until 5 has4 10.100.0.1
slots_of() { status_json | json "[b['slots'] for v in d['vips'] if v['name'] == '10.100.0.1:80/tcp' for b in v['backends'] if b['address'] == '$1'][0]"; }
check "view settled: the still-down 10.0.9.4 left the ring (0 slots)" test "$(slots_of 10.0.9.4)" = 0
start_server 10.0.9.4
check "10.0.9.4 back up" wait_until 5 be_up 10.0.9.4

# ---- the daemon: unreachable peer, daemon gone ---------------------------------
write_config "      - { address: 10.0.8.99, asn: 65000, name: nobody }"
kill -TERM "$sup_pid"; wait "$sup_pid" 2>/dev/null || true
check "daemon stopped: the router withdrew the node (its sessions closed)" wait_until 5 gone4 10.100.0.1
not_running() { status_json | json "d['announcements']['daemon']" | grep -q '^daemon not running'; }
check "daemon stopped: status says 'daemon not running'" not_running
check "daemon stopped: the agent still answers and the program stays attached" sh -c "ip -n $lb link show lb0 | grep -q xdp"
kill -HUP "$agent_pid" 2>/dev/null || true   # the agent refuses a changed node.bgp on reload; the supervisor reads it at start
start_sup
check "daemon back: the router learns the node again" wait_until 15 has4 10.100.0.1
nobody() { status_json | json "[s['info'] for s in d['announcements']['sessions'] if s['name'] == 'nobody'][0]"; }
not_est() { local i; i=$(nobody); [ -n "$i" ] && [ "${i#Established}" = "$i" ]; }
check "an unreachable peer shows its state as bird reports it (not Established: '$(nobody 2>/dev/null)')" wait_until 5 not_est
write_config

# ---- restarts: no flap within the grace time, withdrawn after it ---------------
# The daemon restart above waited for the IPv4 route only; the IPv6 session may
# still be coming up, and its route arriving now is not a flap. Start watching
# once both families are back.
check "daemon back: the router learns fd00:100::1 again" wait_until 15 has6 fd00:100::1
ip netns exec "$rt" ip -ts monitor route >"$tmp/routes.mon" 2>&1 &
mon_pid=$!
pids+=("$mon_pid")
sleep 0.3
kill -9 "$agent_pid"; wait "$agent_pid" 2>/dev/null || true; agent_pid=""
check "SIGKILL: the program stays attached" sh -c "ip -n $lb link show lb0 | grep -q xdp"
sleep 1
check "SIGKILL + 1 s: still announced (grace time 3 s)" has4 10.100.0.1
check "restart within the grace time" start_agent
sleep 1
kill "$mon_pid" 2>/dev/null || true
check "restart within the grace time: the router's routes never changed (ip monitor saw nothing)" \
	sh -c "! grep '10.100.0\|fd00:100::' '$tmp/routes.mon'"
{ grep '10.100.0\|fd00:100::' "$tmp/routes.mon" || true; } | sed 's/^/    monitor: /' | head -5
kill -9 "$agent_pid"; wait "$agent_pid" 2>/dev/null || true; agent_pid=""
if t=$(wait_until 8 gone4 10.100.0.1); then ok "agent dead for longer than grace_time 3 s: withdrawn by the supervisor (${t}s after SIGKILL)"; else bad "agent dead past its grace time: still announced"; fi
check "the supervisor logged why it withdrew" grep -q "agent heartbeat stale: withdrew every VIP" "$tmp/sup.log"
check "a new agent (routes gone: a fresh start)" start_agent
conv() { status_json | json "d['announcements']['health_converged']" | grep -q True; }
check "the fresh agent announces after its health checks converged" wait_until 10 has4 10.100.0.1
check "…and says health converged" conv

# ---- detached: xdplb down under a running agent --------------------------------
x down --force --bpffs "$bpffs" >/dev/null 2>&1 || x down --bpffs "$bpffs" >/dev/null 2>&1 || true
check "program detached: the router withdrew the node" wait_until 5 gone4 10.100.0.1
check "status: withdrawn: program not attached" is_state 10.100.0.1:80/tcp "withdrawn: program not attached"
kill -9 "$agent_pid"; wait "$agent_pid" 2>/dev/null || true; agent_pid=""
check "a new agent attaches again" start_agent
check "attached again: announced" wait_until 10 has4 10.100.0.1

# ---- SIGTERM: withdraw first, then exit ----------------------------------------
t0=$(date +%s.%N)
kill -TERM "$agent_pid"
check "SIGTERM: the router withdrew the node" wait_until 5 gone4 10.100.0.1
wait "$agent_pid" 2>/dev/null || true
agent_pid=""
t1=$(date +%s.%N)
check "SIGTERM: the agent exited after traffic stopped ($(python3 -c "print('%.1f' % ($t1 - $t0))") s, quiet_time 0.5 s, drain_timeout 5 s)" \
	grep -q '"traffic":"stopped"\|traffic=stopped\|traffic: stopped' "$tmp/agent.log"
check "SIGTERM: the data plane keeps forwarding from its pins" sh -c "ip -n $lb link show lb0 | grep -q xdp"

echo
echo "bgp: $pass passed, $fail failed"
[ "$fail" = 0 ]
