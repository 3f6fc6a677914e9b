#!/usr/bin/env bash
# Agent state tests in network namespaces (issue 11: findings 1-3, 5, 7, 9-13,
# 21): a failed start that leaves nothing behind (MTU 9000 native attach), two
# agents started at once, SIGHUP during a long start, one agent per bpffs,
# hostile reloads the agent survives, `down` refusing
# while an agent runs, global and per-VIP drains, all-or-nothing reloads,
# backend counters on a reused id, metrics of removed VIPs and backends, and
# an agent that notices `down --force` took its program away.
#
# Topology (all created here, all deleted on exit):
#   xt-st-lb-PID: lb0 10.0.9.1/24        -- the LB node, agent + XDP (generic)
#   xt-st-pe-PID: pe0 10.0.9.2,.4,.6 (backends, HTTP :8080) and .10 (client)
# Usage: Tests/agent/state.sh PATH/TO/xdplb
set -o errexit -o nounset -o pipefail
XDPLB=$(readlink -f "$1")
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/xdplb-state.XXXXXX)
lb="xt-st-lb-$$" pe="xt-st-pe-$$"
bpffs="/sys/fs/bpf/xdplb-state-test-$$"
sock="$tmp/admin.sock"   # the admin API (mktemp -d: 0700, so the agent accepts the directory)
cfg="$tmp/node.yaml"
agent_pid="" pids=()
pass=0 fail=0

cleanup() {
	[ -n "$agent_pid" ] && kill -9 "$agent_pid" 2>/dev/null || true
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	"$XDPLB" down --force --bpffs "$bpffs" >/dev/null 2>&1 || true
	"$XDPLB" down --force --bpffs "$bpffs-hup" >/dev/null 2>&1 || true
	"$XDPLB" down --force --bpffs "$bpffs-twin" >/dev/null 2>&1 || true
	"$XDPLB" down --force --bpffs "$bpffs-mtu" >/dev/null 2>&1 || true
	ip netns del "$lb" 2>/dev/null || true
	ip netns del "$pe" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

. "$here/../lib.sh"
inlb() { nsenter --net="/run/netns/$lb" "$@"; }   # nsenter keeps /sys/fs/bpf visible
inpe() { ip netns exec "$pe" "$@"; }
x() { inlb "$XDPLB" "$@"; }
adm() { inlb "$XDPLB" "$@" --admin "$sock"; }   # a command that talks to the agent
status_json() { adm status --json; }
metrics() { inlb curl -sf --unix-socket "$sock" http://agent/metrics; }   # to a file: `| grep -q` would SIGPIPE it under pipefail

# ---- topology ---------------------------------------------------------------
lb_pe_up "$lb" "$pe" 10.0.9.2 10.0.9.4 10.0.9.6 10.0.9.10
for a in 10.0.9.2 10.0.9.4 10.0.9.6; do
	ip netns exec "$pe" python3 -m http.server 8080 --bind "$a" --directory "$tmp" >/dev/null 2>&1 &
	pids+=($!)
done

start_agent() { # start_agent [ENV=VALUE...]: agent on $cfg, waits for its admin API
	env "$@" nsenter --net="/run/netns/$lb" "$XDPLB" run --config "$cfg" >>"$tmp/agent.log" 2>&1 &
	agent_pid=$!
	wait_until 30 adm status >/dev/null || { cat "$tmp/agent.log"; return 1; }
}
stop_agent() {
	kill -TERM "$agent_pid"
	wait "$agent_pid" 2>/dev/null || true
	agent_pid=""
}

# ---- 5: SIGHUP 0.3 s into the start of a 300-VIP agent -------------------------
# Full-size rings (65537 slots each) make the start take a while.
{ node_yaml "$bpffs-hup"; for p in $(seq 1000 1299); do RING=65537 vip_yaml "$p" 10.0.9.2 10.0.9.4; done; } >"$cfg"
nsenter --net="/run/netns/$lb" "$XDPLB" run --config "$cfg" >"$tmp/hup.log" 2>&1 &
agent_pid=$!
sleep 0.3
{ node_yaml "$bpffs-hup"; for p in $(seq 1000 1300); do RING=65537 vip_yaml "$p" 10.0.9.2 10.0.9.4; done; } >"$cfg.new"
mv "$cfg.new" "$cfg"   # one VIP more, written while the start runs
kill -HUP "$agent_pid"
reloaded() { grep -q "config reloaded" "$tmp/hup.log"; }
check "SIGHUP 0.3 s after start (300 VIPs, the file now 301): the reload is queued and applied after the start" wait_until 30 reloaded
check "... and the agent is still running" kill -0 "$agent_pid"
check "... serving all 301 VIPs" test "$(status_json | json "len(d['vips'])")" = 301
reload_counted() { metrics >"$tmp/metrics.hup"; grep -q '^xdplb_agent_events_total{event="reload"} 1' "$tmp/metrics.hup"; }
check "... and counting the reload" reload_counted
kill -HUP "$agent_pid"
unchanged() { grep -q "reload: the config file is unchanged" "$tmp/hup.log"; }
check "SIGHUP with the file unchanged: not parsed again" wait_until 10 unchanged
unchanged_counted() { metrics >"$tmp/metrics.hup"; grep -q '^xdplb_agent_events_total{event="reload_unchanged"} 1' "$tmp/metrics.hup" && grep -q '^xdplb_agent_events_total{event="reload"} 1' "$tmp/metrics.hup"; }
check "... counted as reload_unchanged, not as a reload" unchanged_counted
stop_agent
x down --bpffs "$bpffs-hup" >/dev/null

# ---- 21: a start that fails leaves nothing behind (native XDP at MTU 9000) --------
inlb ip link add mtu0 mtu 9000 type veth peer name mtu1 mtu 9000
inlb ip link set mtu0 up
inlb ip link set mtu1 up
node_yaml "$bpffs-mtu" | sed 's/interface: lb0/interface: mtu0/; s/xdp_mode: generic/xdp_mode: native/' >"$cfg"
vip_yaml 53 10.0.9.2 >>"$cfg"
if x run --config "$cfg" >"$tmp/mtu.out" 2>&1; then bad "native attach at MTU 9000 fails (it started)"; else
	check "native attach at MTU 9000 fails naming the MTU" grep -qF "'mtu0' has MTU 9000, more than this driver's native XDP takes" "$tmp/mtu.out"
fi
check "... and leaves no pin and no directory behind" test ! -e "$bpffs-mtu"
check "... and no program on the interface" sh -c "! ip -n $lb link show mtu0 | grep -q xdp"
inlb ip link del mtu0

# ---- 21: two agents started at the same moment on one bpffs ---------------------
{ node_yaml "$bpffs-twin"; vip_yaml 53 10.0.9.2 10.0.9.4; } >"$cfg"
sed "s|admin: $sock|admin: $tmp/twin.sock|" "$cfg" >"$tmp/twin.yaml"
nsenter --net="/run/netns/$lb" "$XDPLB" run --config "$cfg" >"$tmp/twin1.out" 2>&1 &
twin1=$!
nsenter --net="/run/netns/$lb" "$XDPLB" run --config "$tmp/twin.yaml" >"$tmp/twin2.out" 2>&1 &
twin2=$!
pids+=("$twin1" "$twin2")
twin_settled() { ! kill -0 "$twin1" 2>/dev/null || ! kill -0 "$twin2" 2>/dev/null; }
wait_until 30 twin_settled >/dev/null || true
sleep 1
running=0; for p in "$twin1" "$twin2"; do kill -0 "$p" 2>/dev/null && running=$((running + 1)); done
check "two agents started at once: exactly one keeps running" test "$running" = 1
check "... the other says which agent owns the bpffs (no 'File exists')" sh -c \
	"cat '$tmp/twin1.out' '$tmp/twin2.out' | grep -q 'another agent (pid [0-9]*) owns $bpffs-twin' && ! cat '$tmp/twin1.out' '$tmp/twin2.out' | grep -q 'File exists'"
kill -TERM "$twin1" "$twin2" 2>/dev/null || true
wait "$twin1" "$twin2" 2>/dev/null || true
x down --bpffs "$bpffs-twin" >/dev/null

# ---- the agent under test -------------------------------------------------------
{ node_yaml "$bpffs"; vip_yaml 53 10.0.9.2 10.0.9.4; vip_yaml 54 10.0.9.2 10.0.9.4; } >"$cfg"
echo "10.100.0.1:55/udp" >"$tmp/fault"
check "agent starts" start_agent XDPLB_FAULT_FILE="$tmp/fault"
first_pid=$agent_pid
slots() { status_json | json "{b['address']: b['slots'] for b in [v for v in d['vips'] if v['name'] == '$1'][0]['backends']}['$2']"; }
drained() { status_json | json "{b['address']: b['drained'] for b in [v for v in d['vips'] if v['name'] == '$1'][0]['backends']}['$2']"; }
all_up() { [ "$(status_json | json "sum(b['healthy'] for v in d['vips'] for b in v['backends'])")" = 4 ]; }
check "both backends healthy on both VIPs" wait_until 10 all_up

# ---- 7: one agent per bpffs ---------------------------------------------------
check "drain 10.0.9.2 (every VIP)" adm drain 10.0.9.2
dump_maps() { for m in xdplb_backends xdplb_vips xdplb_rings; do inlb bpftool map dump pinned "$bpffs/$m" || true; done; }
dump_maps >"$tmp/maps.before"
sed "s|admin: $sock|admin: $tmp/second.sock|" "$cfg" >"$tmp/second.yaml"
# `timeout` only bounds a second agent that (wrongly) keeps running: its admin socket differs.
if timeout 30 nsenter --net="/run/netns/$lb" "$XDPLB" run --config "$tmp/second.yaml" >"$tmp/second.out" 2>&1; then
	bad "a second agent on the same bpffs is refused (it exited 0)"
else
	check "a second agent on the same bpffs exits non-zero: 'another agent (pid $first_pid) owns $bpffs'" \
		grep -qF "another agent (pid $first_pid) owns $bpffs" "$tmp/second.out"
fi
dump_maps >"$tmp/maps.after"
check "the second agent wrote nothing: backends, VIPs and rings identical" cmp "$tmp/maps.before" "$tmp/maps.after"
ip netns exec "$pe" python3 "$here/traffic.py" recv --seconds 3 --out "$tmp/drain.json" &
recv_pid=$!
sleep 0.3
inpe python3 "$here/traffic.py" send 10.0.9.10 10.100.0.1 53 --sports "$(seq -s, 6001 6100)" --count 2 --interval 0.002 >/dev/null
wait "$recv_pid"
check "the first agent's drain holds: 100 new flows (200 packets), none to 10.0.9.2" python3 -c "
import json; d=json.load(open('$tmp/drain.json'))
assert len(d) == 100 and all('10.0.9.2' not in v for v in d.values()) and sum(sum(v.values()) for v in d.values()) == 200, d"

# ---- 11: down refuses while an agent owns the bpffs ------------------------------
if x down --bpffs "$bpffs" >"$tmp/down.out" 2>&1; then
	bad "xdplb down refuses while the agent runs (it succeeded)"
	stop_agent; start_agent XDPLB_FAULT_FILE="$tmp/fault" || true   # so the checks below test something
else
	check "xdplb down refuses while the agent runs: names its pid, suggests --force" \
		grep -qF "another agent (pid $first_pid) owns $bpffs; stop it first (one agent per bpffs directory); or use --force" "$tmp/down.out"
fi
check "... and leaves the program attached and pinned" sh -c "ip -n $lb link show lb0 | grep -q xdp && test -e $bpffs/link"

# ---- 21: a backend address with a NUL and junk, through the admin API --------------
code=$(inlb curl -s -o "$tmp/nul.out" -w '%{http_code}' --unix-socket "$sock" -X POST "http://agent/drain?backend=10.0.9.2%00junk")
nul_refused() { [ "$code" = 400 ] && grep -qF "'10.0.9.2\\u{0}junk' is not an IP address" "$tmp/nul.out"; }
check "drain of 'backend=10.0.9.2%00junk': HTTP 400 naming the bad address, escaped" nul_refused
check "... nothing changed: 10.0.9.4 still has its slots" test "$(slots 10.100.0.1:53/udp 10.0.9.4)" -gt 0

# ---- 10: a global drain and per-VIP undrain ----------------------------------------
adm undrain 10.0.9.2 --vip 10.100.0.1:53/udp >"$tmp/undrain.out" 2>&1 || true
check "undrain --vip while drained globally: restored on that VIP, says where it stays drained" grep -qF \
	"10.0.9.2: config weight restored on 10.100.0.1:53/udp; still drained on 10.100.0.1:54/udp by the setting for every VIP ('xdplb undrain 10.0.9.2' undoes it everywhere)" "$tmp/undrain.out"
in_53_not_54() { [ "$(slots 10.100.0.1:53/udp 10.0.9.2)" -gt 0 ] && [ "$(slots 10.100.0.1:54/udp 10.0.9.2)" = 0 ]; }
check "... and it is true: 10.0.9.2 has slots on :53 and none on :54" in_53_not_54
check "... status: not drained on :53, drained on :54" test "$(drained 10.100.0.1:53/udp 10.0.9.2) $(drained 10.100.0.1:54/udp 10.0.9.2)" = "False True"
check "a global drain replaces the per-VIP undrain" adm drain 10.0.9.2
check "... drained on both VIPs" test "$(slots 10.100.0.1:53/udp 10.0.9.2) $(slots 10.100.0.1:54/udp 10.0.9.2)" = "0 0"
check "undrain without --vip restores every VIP" adm undrain 10.0.9.2
in_both() { [ "$(slots 10.100.0.1:53/udp 10.0.9.2)" -gt 0 ] && [ "$(slots 10.100.0.1:54/udp 10.0.9.2)" -gt 0 ]; }
check "... slots back on both VIPs" in_both

# ---- 9: all-or-nothing reloads -------------------------------------------------------
digest() { status_json | json "[v['digest'] for v in d['vips'] if v['name'] == '$1'][0]"; }
d53=$(digest 10.100.0.1:53/udp)
cp "$cfg" "$tmp/good.yaml"
dump_maps >"$tmp/maps.before"
{ node_yaml "$bpffs"; vip_yaml 53 10.0.9.2 10.0.9.4; vip_yaml 54 10.0.9.2 10.0.9.4; vip_yaml 55 10.0.9.2 10.0.9.4; } >"$cfg"
if adm reload >"$tmp/reload.out" 2>&1; then bad "a reload whose write fails (injected) is refused (it succeeded)"; else
	check "a reload whose write fails is refused with the precise error" grep -qF \
		"$cfg: applying the new config failed, the previous one is back in force: injected reconcile fault for VIP 10.100.0.1:55/udp" "$tmp/reload.out"
fi
check "... status still lists only the old VIPs" test "$(status_json | json "','.join(v['name'] for v in d['vips'])")" = "10.100.0.1:53/udp,10.100.0.1:54/udp"
check "... and the error is logged" grep -q "reload failed and was rolled back" "$tmp/agent.log"
# 16,383 other backends: a valid config (16,383 is the limit; at most 4,000 per VIP), but the 2
# running ones hold ids until it is applied.
others() { python3 -c "print(' '.join(f'10.1.{i // 250}.{i % 250 + 1}' for i in range($1, $2)))"; }
{ node_yaml "$bpffs"; vip_yaml 53 $(others 0 4000); vip_yaml 54 $(others 4000 8000); vip_yaml 55 $(others 8000 12000)
  vip_yaml 56 $(others 12000 16000); vip_yaml 57 $(others 16000 16383); } >"$cfg"
check "the 16,383-backend config passes config check" x config check "$cfg"
if adm reload >"$tmp/reload.out" 2>&1; then bad "a reload needing more backend ids than are free is refused (it succeeded)"; else
	check "a reload needing more backend ids than are free is refused with the numbers" grep -qF \
		"the data plane can't hold this config, keeping the running one: refused: 16383 new backends need ids but only 16381 of 16383 are free" "$tmp/reload.out"
fi
dump_maps >"$tmp/maps.after"
check "... backends, VIPs and rings unchanged" cmp "$tmp/maps.before" "$tmp/maps.after"
check "... digest unchanged and both VIPs still served" test "$(digest 10.100.0.1:53/udp) $(status_json | json "len(d['vips'])")" = "$d53 2"
check "... status still shows the old backends" test "$(status_json | json "' '.join(b['address'] for v in d['vips'] for b in v['backends'])")" = \
	"10.0.9.2 10.0.9.4 10.0.9.2 10.0.9.4"
# 1-3: hostile files on reload: refused with the reason, the agent keeps running and answering.
hostile_reload() { # hostile_reload NAME EXPECTED-TEXT: $cfg holds the file
	if adm reload >"$tmp/hostile.out" 2>&1; then bad "reload of $1 is refused (it succeeded)"; return; fi
	check "reload of $1 is refused: '$2'" grep -qF "$2" "$tmp/hostile.out"
	check "... the agent survives it and status still answers" sh -c "kill -0 $agent_pid && $XDPLB status --json --admin $sock >/dev/null"
}
sed 's/interval: 200ms/interval: infs/' "$tmp/good.yaml" >"$cfg"
hostile_reload "an overflowing duration (interval: infs)" "vips[0].health.interval"
{ cat "$tmp/good.yaml"; printf 'junk: '; head -c 5000 /dev/zero | tr '\0' '['; echo; } >"$cfg"
hostile_reload "5,000 nested '['" "nested deeper than 64 levels"
{
	node_yaml "$bpffs" | sed '$d'   # without its last line, "vips:"
	echo "x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"
	for i in 1 2 3 4 5 6 7 8; do echo "x$i: &x$i [$(printf '*x%s, ' $((i - 1)) $((i - 1)) $((i - 1)) $((i - 1)) $((i - 1)) $((i - 1)) $((i - 1)) $((i - 1)))*x$((i - 1))]"; done
	echo "vips: [ { address: 10.100.0.1, port: 53, protocol: udp, backends: [], *x8 : 1 } ]"
} >"$cfg"
hostile_reload "an alias bomb (9^9 nodes) as a mapping key" "vips[0].<a list>: a key must be a plain name, not a list or mapping"
cp "$tmp/good.yaml" "$cfg"
check "reloading the running config again succeeds" adm reload

# ---- 12, 13: a removed backend's id reused; metrics of removed VIPs and backends -----
ip netns exec "$pe" python3 "$here/traffic.py" recv --seconds 3 --out "$tmp/before.json" &
recv_pid=$!
sleep 0.3
inpe python3 "$here/traffic.py" send 10.0.9.10 10.100.0.1 53 --sports "$(seq -s, 7001 7040)" --count 2 --interval 0.002 >/dev/null
wait "$recv_pid"
backend_id() { # backend_id ADDR: the id of ADDR in the pinned backend map
	inlb bpftool -j map dump pinned "$bpffs/xdplb_backends" | python3 -c "
import json, sys
want = bytes(int(x) for x in '$1'.split('.'))
for e in json.load(sys.stdin):
    key = bytes(int(b, 16) for b in e['key']); val = bytes(int(b, 16) for b in e['value'])
    if want in val[:16]: print(int.from_bytes(key, 'little')); break"
}
bpackets() { adm stats --json --interval 0.1 | json "d['backends'].get('$1', {}).get('packets', -1)"; }
check "10.0.9.4 got traffic (counted per backend)" test "$(bpackets 10.0.9.4)" -gt 0
metrics >"$tmp/metrics.before"
check "metrics have series for 10.0.9.4 and VIP :54 before the reload" sh -c \
	"grep -q 'backend=\"10.0.9.4\"' '$tmp/metrics.before' && grep -q 'vip=\"10.100.0.1:54/udp\"' '$tmp/metrics.before'"
id4=$(backend_id 10.0.9.4)
{ node_yaml "$bpffs"; vip_yaml 53 10.0.9.2; } >"$cfg"
check "reload removing 10.0.9.4 and VIP :54" adm reload
metrics >"$tmp/metrics.after"
check "/metrics drops every series of the removed backend" sh -c "! grep -q 'backend=\"10.0.9.4\"' '$tmp/metrics.after'"
check "/metrics drops every series of the removed VIP" sh -c "! grep -q 'vip=\"10.100.0.1:54/udp\"' '$tmp/metrics.after'"
check "... and keeps those of the rest" grep -q '^xdplb_backend_healthy{vip="10.100.0.1:53/udp",backend="10.0.9.2"} 1' "$tmp/metrics.after"
# Ids are taken fresh-first while an agent runs; a new agent starts its scan from the
# lowest free id, so after a restart the next new backend reuses 10.0.9.4's id.
stop_agent
check "the agent restarts on the pinned state" start_agent
{ node_yaml "$bpffs"; vip_yaml 53 10.0.9.2 10.0.9.6; } >"$cfg"
check "reload adding 10.0.9.6" adm reload
check "10.0.9.6 took the id 10.0.9.4 had ($id4)" test "$(backend_id 10.0.9.6)" = "$id4"
check "the new backend's counters start at 0, not at 10.0.9.4's" test "$(bpackets 10.0.9.6)" = 0

# ---- 11: down --force under a running agent: the agent notices -------------------
healthz() { inlb curl -s --unix-socket "$sock" "$@" http://agent/healthz; }
healthz_ok() { [ "$(healthz -f)" = ok ]; }
check "healthz 200 while attached" healthz_ok
check "xdplb down --force detaches under the running agent" x down --force --bpffs "$bpffs"
healthz503() { [ "$(healthz -o /dev/null -w '%{http_code}')" = 503 ]; }
check "the agent's /healthz answers 503" wait_until 5 healthz503
healthz_reason() { healthz >"$tmp/healthz"; grep -qF 'no longer attached to lb0' "$tmp/healthz"; }
check "... with the reason" healthz_reason
check "status says detached" test "$(status_json | json "str(d['node']['attached']) + ' ' + str(d['node']['detached'] is not None)")" = "False True"
detached_metric() { metrics >"$tmp/metrics.detached"; grep -q '^xdplb_attached 0' "$tmp/metrics.detached"; }
check "metric xdplb_attached 0" detached_metric
check "the loss is logged" grep -q "data plane lost: no program reads the maps any more" "$tmp/agent.log"
if adm drain 10.0.9.2 >"$tmp/drain.out" 2>&1; then bad "a drain on a detached data plane is refused (it succeeded)"; else
	check "a drain on a detached data plane is refused with the reason" grep -qF "refused: the balancer program is no longer attached to lb0" "$tmp/drain.out"
fi
stop_agent

echo
echo "state: $pass passed, $fail failed"
[ "$fail" = 0 ]
