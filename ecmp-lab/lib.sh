# ecmp-lab/lib.sh — helpers shared by ecmp-lab/run and the scenarios (sourced).
#
# Needs config.sh sourced first. Everything that enters a namespace goes
# through ns_exec / ns_bpf, which refuse names outside the lab's prefix.

log() { printf '[lab %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
warn() { printf '[lab %s] warning: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	progress_stop
	printf 'ecmp-lab: %s\n' "$*" >&2
	exit 1
}

# ---- progress on a terminal ----------------------------------------------------
# Long steps (the build, waits for health or routes, traffic phases) show one
# line, rewritten in place every second, while the lab's stdout is a terminal:
# fd 9 is that terminal, opened by the first lib.sh sourced (ecmp-lab/run or a
# scenario run by hand) and inherited by the scenarios; background daemons get
# it closed (9>&-). When stdout is not a terminal (CI logs, files, pipes)
# nothing is written: no control characters.
if [ -z "${LAB_PROGRESS_FD:-}" ] && [ -t 1 ]; then
	exec 9>&1
	LAB_PROGRESS_FD=9
	export LAB_PROGRESS_FD
fi
PROGRESS_PID=

# progress_on: progress lines go to a terminal.
progress_on() { [ -n "${LAB_PROGRESS_FD:-}" ] && [ -t "$LAB_PROGRESS_FD" ]; }

# progress_show LABEL SECONDS / progress_clear: the progress line, and its removal.
progress_show() { printf '\r\033[K[lab] %s ... %ss ' "$1" "$2" >&"$LAB_PROGRESS_FD"; }
progress_clear() { printf '\r\033[K' >&"$LAB_PROGRESS_FD"; }

# progress_ticker LABEL: rewrites the progress line every second until
# stopped (TERM), or until the shell that started it is gone.
progress_ticker() {
	local label=$1 start=$SECONDS n sleeper=
	trap '[ -z "$sleeper" ] || kill "$sleeper" 2>/dev/null; exit 0' TERM
	for ((n = 0; n < 86400; n++)); do
		sleep 1 &
		sleeper=$!
		wait "$sleeper"
		kill -0 $$ 2>/dev/null || exit 0
		progress_show "$label" $((SECONDS - start))
	done
}

# with_progress LABEL CMD...: run CMD (its exit status); on a terminal, with
# "[lab] LABEL ... Ns" shown meanwhile.
with_progress() {
	local label=$1 rc=0
	shift
	if ! progress_on || [ -n "$PROGRESS_PID" ]; then
		"$@"
		return
	fi
	progress_ticker "$label" &
	PROGRESS_PID=$!
	"$@" || rc=$?
	progress_stop
	return "$rc"
}

# progress_stop: stop the ticker of with_progress (if any) and clear its line.
progress_stop() {
	[ -n "${PROGRESS_PID:-}" ] || return 0
	kill "$PROGRESS_PID" 2>/dev/null || true
	wait "$PROGRESS_PID" 2>/dev/null || true
	PROGRESS_PID=
	progress_clear
}

# phase SECONDS [WHAT]: a traffic phase of the scenario (sleep, with progress).
phase() { with_progress "${SC_NAME:-lab}: ${2:-traffic phase} (${1} s)" sleep "$1"; }

# check_prereq: root, the commands the lab runs, bpffs mounted.
check_prereq() {
	local c missing=()
	[ "$(id -u)" = 0 ] || die "needs root (network namespaces, BPF, XDP); run: sudo ecmp-lab/run"
	for c in ip tc ethtool nsenter python3 sysctl timeout bird birdc etcd etcdctl hping3; do
		command -v "$c" >/dev/null || missing+=("$c")
	done
	[ ${#missing[@]} = 0 ] || die "missing commands: ${missing[*]} (tools/install-deps installs them)"
	mount | grep -q ' /sys/fs/bpf type bpf' || mount -t bpf bpf /sys/fs/bpf ||
		die "bpffs is not mounted at /sys/fs/bpf and mounting it failed"
}

# lab_ns NAME: succeeds when NAME is one of our namespaces (prefix, exists).
lab_ns() {
	case $1 in "$LAB_PREFIX"*) ;; *) return 1 ;; esac
	[ -e "/run/netns/$1" ]
}

# ns_exec NS CMD...: run CMD inside lab namespace NS (ip netns exec).
ns_exec() {
	local ns=$1
	shift
	lab_ns "$ns" || die "ns_exec: '$ns' is not a lab namespace"
	ip netns exec "$ns" "$@"
}

# ns_bpf NS CMD...: like ns_exec, but keeps /sys/fs/bpf visible (pins).
ns_bpf() {
	local ns=$1
	shift
	lab_ns "$ns" || die "ns_bpf: '$ns' is not a lab namespace"
	nsenter --net="/run/netns/$ns" "$@"
}

# lbx I ARGS...: run the admin command xdplb ARGS inside LB node I, on its
# agent's admin socket.
lbx() {
	local i=$1
	shift
	ns_bpf "$(ns_lb "$i")" "$XDPLB" "$@" --admin "$(admin_lb "$i")"
}

# ---- state -------------------------------------------------------------------
# $LAB_STATE_DIR/state lists what the lab created, one object a line:
#   ns NAME | pid ROLE PID | bpffs DIR NS
# cleanup removes exactly those; it can run twice.

STATE_FILE=$LAB_STATE_DIR/state
record() { printf '%s\n' "$*" >>"$STATE_FILE"; }

# record_pid ROLE PID: a background process to stop on cleanup.
record_pid() { record "pid $1 $2"; }

# ours PID: the process is alive and still one the lab started (its command
# line names the state directory, or its environment has
# XDPLB_LAB=$LAB_STATE_DIR: the route monitor, whose command line cannot), so a
# recycled PID is never killed.
ours() {
	{ tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null | grep -qF -- "$LAB_STATE_DIR" ||
		{ tr '\0' '\n' <"/proc/$1/environ"; } 2>/dev/null | grep -qxF -- "XDPLB_LAB=$LAB_STATE_DIR"
}

# stop_pid PID [SIGNAL]: stop one of our processes and reap it when it is our child.
stop_pid() {
	local pid=$1 sig=${2:-TERM} i
	ours "$pid" || return 0
	kill "-$sig" "$pid" 2>/dev/null || true
	for ((i = 0; i < 40; i++)); do
		ours "$pid" || break
		[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || break
		sleep 0.05
	done
	ours "$pid" && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] && kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || true
}

# pid_of ROLE: the last recorded PID of ROLE.
pid_of() { awk -v r="$1" '$1 == "pid" && $2 == r { p = $3 } END { print p }' "$STATE_FILE"; }

# ---- waiting -----------------------------------------------------------------

now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print('%.2f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$2"; }

# wait_label CMD...: what wait_until waits for, in a few words ("test -e DIR/x.ready": x.ready).
wait_label() {
	if [ "$1" = test ] && [ $# = 3 ]; then echo "${3##*/}"; else echo "$*"; fi
}

# wait_until SECONDS CMD...: poll CMD every 50 ms; prints the seconds it took.
# On a terminal, a wait longer than a second shows "waiting for CMD ... Ns".
wait_until() {
	local limit=$1 start deadline s0=$SECONDS shown=0
	shift
	start=$(now)
	deadline=$(python3 -c "print($start + $limit)")
	while ! "$@" >/dev/null 2>&1; do
		if python3 -c "import sys; sys.exit(0 if $(now) > $deadline else 1)"; then
			[ "$shown" = 0 ] || progress_clear
			return 1
		fi
		if [ $((SECONDS - s0)) -gt "$shown" ] && [ -z "$PROGRESS_PID" ] && progress_on; then
			shown=$((SECONDS - s0))
			progress_show "${SC_NAME:+$SC_NAME: }waiting for $(wait_label "$@") (at most ${limit} s)" "$shown"
		fi
		sleep 0.05
	done
	[ "$shown" = 0 ] || progress_clear
	elapsed "$start" "$(now)"
}

# ---- agents ------------------------------------------------------------------

cfg_lb() { echo "$LAB_STATE_DIR/lb$1.yaml"; }

# active_backends: how many backends the VIPs list now (M, or M+1 after backend_added).
active_backends() { cat "$LAB_STATE_DIR/active_backends"; }

# health_rule: the cluster health rule the agents run with now (asymmetric_health changes it).
health_rule() { cat "$LAB_STATE_DIR/health_rule" 2>/dev/null || echo "$CLUSTER_HEALTH_RULE"; }

# write_config I: the node file of LB node I: node-local settings and the
# cluster section; the VIPs and backends come from etcd (write_shared + lab_push).
write_config() {
	local i=$1 cfg tmp eps
	cfg=$(cfg_lb "$i")
	tmp=$cfg.tmp
	eps=$(etcd_endpoints)
	cat >"$tmp" <<YAML
# Generated by ecmp-lab/run for LB node $i. The VIPs and backends come from etcd
# ($CLUSTER_PREFIX, pushed by the lab with xdplb cluster push): the same on every node.
node:
  interface: $(if_lb "$i")
  xdp_mode: native
  encap_source: { ipv4: $(lb4 "$i"), ipv6: "$(lb6 "$i")" }
  path_mtu: $PATH_MTU
  hash_seed: $HASH_SEED
  lru_size: $LRU_SIZE
  bpffs: $(bpffs_lb "$i")
  admin: $(admin_lb "$i")
  state_dir: $(state_lb "$i")
  bgp:
    local_asn: $LB_ASN
    router_id: $(lb4 "$i")
    table: $BGP_TABLE
    peers:
      - { address: $(rtr_lb4 "$i"), asn: $RTR_ASN, name: rtr4 }
      - { address: "$(rtr_lb6 "$i")", asn: $RTR_ASN, name: rtr6 }
    bfd: { interval: ${BFD_INTERVAL_MS}ms, multiplier: $BFD_MULTIPLIER }
    grace_time: $BGP_GRACE
    quiet_time: $BGP_QUIET
    drain_timeout: $BGP_DRAIN_TIMEOUT
    daemon: { control_socket: $(bird_ctl_lb "$i"), config: $(bird_conf_lb "$i") }
cluster:
  endpoints: [${eps//,/, }]
  prefix: $CLUSTER_PREFIX
  node_name: lb$i
  lease_ttl: $CLUSTER_LEASE_TTL
  health_rule: $(health_rule)
  fallback_after: $CLUSTER_FALLBACK_AFTER
  request_timeout: $CLUSTER_REQUEST_TIMEOUT
  cache_file: $(cache_lb "$i")
YAML
	# The flood scenario's per-source limits, while it runs (a top-level
	# protection: section; see protection_on / protection_off).
	[ ! -s "$LAB_STATE_DIR/protection.yaml" ] || cat "$LAB_STATE_DIR/protection.yaml" >>"$tmp"
	mv "$tmp" "$cfg"
}

# write_shared OUT NBACKENDS [I=WEIGHT...] [http_through_tunnel] [second_chance_off]: the shared
# config (hash seed, the lab's four VIPs with backends 1..NBACKENDS, weight 100
# unless I=WEIGHT says otherwise for backend I, both families), as `xdplb
# cluster push` takes it. http_through_tunnel: the HTTP VIPs' checks go to
# VIP:80 through GRE (health.through_tunnel), the echo VIPs' stay plain.
# second_chance_off: every VIP with second_chance: off.
write_shared() {
	local out=$1 n=$2 b w kv vip port hc fam tunnel=
	shift 2
	local -A weight=()
	local chance=
	for kv in "$@"; do
		if [ "$kv" = http_through_tunnel ]; then tunnel=", through_tunnel: true"; continue; fi
		if [ "$kv" = second_chance_off ]; then chance='    second_chance: "off"\n'; continue; fi
		weight[${kv%%=*}]=${kv#*=}
	done
	{
		printf '# Generated by ecmp-lab: the shared config of every LB node (xdplb cluster push).\n'
		printf 'hash_seed: %s\nvips:\n' "$HASH_SEED"
		for vip in "$VIP4" "$VIP6"; do
			for port in "$HTTP_PORT" "$ECHO_PORT"; do
				if [ "$port" = "$HTTP_PORT" ]; then
					hc="{ type: http, path: /healthz, port: $HTTP_PORT$tunnel"
				else
					hc="{ type: tcp, port: $ECHO_PORT"
				fi
				hc="$hc, interval: ${HC_INTERVAL_MS}ms, timeout: ${HC_TIMEOUT_MS}ms, rise: $HC_RISE, fall: $HC_FALL }"
				fam=4
				[[ $vip == *:* ]] && fam=6
				printf '  - address: "%s"\n    port: %s\n    protocol: tcp\n'"$chance"'    health: %s\n    backends:\n' "$vip" "$port" "$hc"
				for ((b = 1; b <= n; b++)); do
					w=${weight[$b]:-100}
					if [ "$fam" = 4 ]; then
						printf '      - { address: "%s", weight: %s }\n' "$(be4 "$b")" "$w"
					else
						printf '      - { address: "%s", weight: %s }\n' "$(be6 "$b")" "$w"
					fi
				done
			done
		done
	} >"$out.tmp"
	mv "$out.tmp" "$out"
}

# protection_on / protection_off: the per-source limits (PROT_* of config.sh)
# in every LB node's node file, or none, then a reload of each agent (xdplb
# reload: it applies a changed protection section); waits until every node's
# `xdplb status` says so. The section is kept in $LAB_STATE_DIR/protection.yaml
# while on, so a node file written meanwhile (write_config) keeps it.
protection_on() {
	cat >"$LAB_STATE_DIR/protection.yaml.tmp" <<YAML
# ecmp-lab flood scenario: per-source limits (per LB node).
protection:
  new_flows_per_second: $PROT_NEW_FLOWS
  new_flow_burst: $PROT_NEW_FLOW_BURST
  packets_per_second: $PROT_PPS
  packet_burst: $PROT_PPS_BURST
  source_prefix_v4: 32
  source_prefix_v6: 128
  flood_alert_new_flows_per_second: $PROT_FLOOD_ALERT
YAML
	mv "$LAB_STATE_DIR/protection.yaml.tmp" "$LAB_STATE_DIR/protection.yaml"
	protection_apply on
}
protection_off() {
	rm -f "$LAB_STATE_DIR/protection.yaml"
	protection_apply off
}
protection_apply() {
	local want=$1 i
	for i in $(up_nodes); do
		write_config "$i"
		lbx "$i" reload >/dev/null || { warn "xdplb reload on lb$i failed"; return 1; }
	done
	for i in $(up_nodes); do
		wait_until 10 protection_is "$i" "$want" >/dev/null || { warn "lb$i: protection not $want 10 s after the reload"; return 1; }
	done
}
# protection_is I on|off: node I's `xdplb status` says its protection is on (off).
protection_is() {
	local line
	line=$(lbx "$1" status | grep '^protection:') || return 1
	if [ "$2" = off ]; then [[ $line == "protection: off"* ]]; else [[ $line != "protection: off"* ]]; fi
}

# start_agent I [nowait]: start `xdplb run` in LB node I, wait for its admin
# API (with nowait: agent_wait I does).
start_agent() {
	local i=$1 nowait=${2:-} pid
	# Started directly (not through a function in the background) so $! is the agent.
	nsenter --net="/run/netns/$(ns_lb "$i")" "$XDPLB" run --config "$(cfg_lb "$i")" \
		>>"$LAB_STATE_DIR/agent-lb$i.log" 2>&1 7>&- 8>&- 9>&- &
	pid=$!
	disown "$pid"          # no "Killed" job notice when a scenario SIGKILLs it
	record_pid "agent$i" "$pid"
	[ "$nowait" = nowait ] || agent_wait "$i"
}
agent_wait() {
	if ! wait_until 30 lbx "$1" status >/dev/null; then
		tail -n 20 "$LAB_STATE_DIR/agent-lb$1.log" >&2
		die "agent on $(ns_lb "$1") did not answer on $(admin_lb "$1") within 30 s"
	fi
}

# stop_agent I: SIGTERM the agent of LB node I: it withdraws what it still
# announces, waits for traffic to stop (drain_timeout at most) and exits; the
# data plane stays pinned.
stop_agent() {
	local pid i
	pid=$(pid_of "agent$1")
	[ -n "$pid" ] && ours "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 300; i++)); do ours "$pid" || break; sleep 0.05; done
	stop_pid "$pid" KILL
}

# kill_agent I: SIGKILL the agent of LB node I (the data plane stays pinned).
kill_agent() {
	local pid
	pid=$(pid_of "agent$1")
	[ -n "$pid" ] && stop_pid "$pid" KILL
}

# ---- BGP on the LB nodes -------------------------------------------------------

# start_bgp I: `xdplb bgp run` in LB node I: writes the node's bird config
# (generated from node.bgp) and runs bird in the foreground as its child.
# Both are recorded: cleanup stops them by PID, bird too if the supervisor
# died first. Started next to the agent, not by it: an agent restart leaves
# the BGP sessions alone.
start_bgp() {
	local i=$1 sup bird_pid ns
	ns=$(ns_lb "$i")
	lab_ns "$ns" || die "start_bgp: '$ns' is not a lab namespace"
	mkdir -p "$(state_lb "$i")"
	# Started directly so $! is the supervisor (ip netns exec execs it).
	ip netns exec "$ns" "$XDPLB" bgp run --config "$(cfg_lb "$i")" >>"$LAB_STATE_DIR/bgp-lb$i.log" 2>&1 7>&- 8>&- 9>&- &
	sup=$!
	disown "$sup"
	record_pid "bgp$i" "$sup"
	# bird: the supervisor's child (its command line names our config).
	wait_until 10 bird_child "$sup" >/dev/null || {
		tail -n 20 "$LAB_STATE_DIR/bgp-lb$i.log" >&2
		die "xdplb bgp run on $ns did not start bird within 10 s"
	}
	bird_pid=$(bird_child "$sup")
	record_pid "bird$i" "$bird_pid"
	wait_until 10 test -S "$(bird_ctl_lb "$i")" >/dev/null || die "bird on $ns has no control socket $(bird_ctl_lb "$i")"
}

# bird_child PID: the bird process the supervisor PID started (fails if none yet).
bird_child() {
	local c
	for c in $(cat "/proc/$1/task/"*/children 2>/dev/null); do
		if tr '\0' ' ' <"/proc/$c/cmdline" 2>/dev/null | grep -q "^bird -f .*$LAB_STATE_DIR"; then
			echo "$c"
			return 0
		fi
	done
	return 1
}

# stop_bgp I: stop node I's BGP daemon (SIGTERM to the supervisor stops bird;
# its sessions close: the router withdraws the node at once).
stop_bgp() {
	stop_pid "$(pid_of "bgp$1")" TERM
	stop_pid "$(pid_of "bird$1")" TERM
}

# lb_birdc I CMD...: ask LB node I's bird.
lb_birdc() { ns_exec "$(ns_lb "$1")" birdc -s "$(bird_ctl_lb "$1")" "${@:2}"; }

# status_json I / stats_json I: the agent's JSON.
status_json() { lbx "$1" status --json; }
stats_json() { lbx "$1" stats --json --interval 0.05; }

# Nodes a scenario took out of service (node_drain stops one; node_join
# brings it back): marked by $LAB_STATE_DIR/lbI.stopped.
node_stopped() { [ -e "$LAB_STATE_DIR/lb$1.stopped" ]; }
# up_nodes: the LB nodes in service, "1 2 3".
up_nodes() {
	local i out=()
	for ((i = 1; i <= LB_NODES; i++)); do node_stopped "$i" || out+=("$i"); done
	echo "${out[*]}"
}

# snapshot_nodes FILE CMD: CMD NODE for every LB node in service, as one JSON
# object {"1": {...}, ...}.
snapshot_nodes() {
	local out=$1 cmd=$2 i first=1
	{
		printf '{'
		for i in $(up_nodes); do
			[ "$first" = 1 ] || printf ','
			first=0
			printf '"%s": ' "$i"
			"$cmd" "$i"
		done
		printf '}\n'
	} >"$out"
}

# snapshot_stats FILE / snapshot_status FILE: every node's stats / status.
snapshot_stats() { snapshot_nodes "$1" stats_json; }
snapshot_status() { snapshot_nodes "$1" status_json; }

# all_healthy: every node runs the same cluster revision and the same VIPs
# (at least one), has every configured backend up and in the ring, and the same
# digest per VIP as every other node.
all_healthy() {
	local f=$LAB_STATE_DIR/.health.json
	snapshot_status "$f" 2>/dev/null || return 1
	python3 - "$f" "$(active_backends)" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); n = int(sys.argv[2])
digests, names, revisions = {}, set(), set()
for node, s in d.items():
    if not s["vips"]:
        sys.exit(1)
    names.add(tuple(sorted(v["name"] for v in s["vips"])))
    revisions.add((s.get("cluster") or {}).get("revision"))
    for v in s["vips"]:
        bs = v["backends"]
        if len(bs) != n or not all(b.get("agreed_healthy", b["healthy"]) and (b["slots"] > 0 or b["drained"]) for b in bs):
            sys.exit(1)
        digests.setdefault(v["name"], set()).add(v["digest"])
sys.exit(0 if len(names) <= 1 and len(revisions) <= 1 and all(len(x) == 1 for x in digests.values()) else 1)
PY
}

# ---- traffic -----------------------------------------------------------------

# Client source addresses, both families, comma separated.
client_srcs() {
	local k out=()
	for ((k = 1; k <= CLIENT_ADDRS; k++)); do out+=("$(client4 "$k")" "$(client6 "$k")"); done
	local IFS=,
	echo "${out[*]}"
}
http_targets() { echo "$VIP4:$HTTP_PORT,[$VIP6]:$HTTP_PORT"; }
echo_targets() { echo "$VIP4:$ECHO_PORT,[$VIP6]:$ECHO_PORT"; }

TRAFFIC=$LAB_DIR/traffic.py

# short_conns OUT COUNT [EXTRA ARGS...]: short HTTP connections from the client
# (foreground; short_conns_now without progress).
short_conns_now() {
	local out=$1 count=$2
	shift 2
	ns_exec "$NS_CLIENT" timeout 300 python3 "$TRAFFIC" short --targets "$(http_targets)" --src "$(client_srcs)" \
		--count "$count" --concurrency "$CONCURRENCY" --out "$out" "$@"
}
short_conns() { with_progress "${SC_NAME:-lab}: $2 short connections" short_conns_now "$@"; }

# short_steady SECONDS [TAG]: SHORT_CONNS short connections from the client at a
# steady rate over SECONDS, in the background ($SC/short.json, or short_TAG.json). Sets SHORT_PID.
short_steady() {
	local secs=$1 out=short${2:+_$2}
	lab_ns "$NS_CLIENT" || die "no client namespace"
	# Started directly so $! is the process (ip netns exec execs timeout).
	ip netns exec "$NS_CLIENT" timeout $((secs + 60)) python3 "$TRAFFIC" short --targets "$(http_targets)" \
		--src "$(client_srcs)" --count "$SHORT_CONNS" --concurrency "$CONCURRENCY" \
		--rate "$(python3 -c "print($SHORT_CONNS / $secs)")" --max-seconds $((secs + 30)) \
		--out "$SC/$out.json" >"$SC/$out.log" 2>&1 7>&- 8>&- 9>&- &
	SHORT_PID=$!
	record_pid "short-$SC_NAME" "$SHORT_PID"
	SC_PIDS+=("$SHORT_PID")
}

# Client-side TCP counters (retransmissions), for "packets lost".
client_retrans() { ns_exec "$NS_CLIENT" awk '$1 == "Tcp:" && $13 ~ /^[0-9]+$/ { print $13 }' /proc/net/snmp; }

# ---- backends ----------------------------------------------------------------

# start_backend I [nowait]: the HTTP and echo servers of backend I (answering
# as "beI"); waits until they listen (with nowait: backend_wait I does).
start_backend() {
	local i=$1 nowait=${2:-} ns ready=$LAB_STATE_DIR/be$1.ready
	ns=$(ns_be "$i")
	lab_ns "$ns" || die "start_backend: '$ns' is not a lab namespace"
	rm -f "$ready"
	# Started directly so $! is the server (ip netns exec execs python3).
	ip netns exec "$ns" python3 "$LAB_DIR/backend.py" --name "be$i" --http-port "$HTTP_PORT" \
		--echo-port "$ECHO_PORT" --ready "$ready" --lifetime 7200 >>"$LAB_STATE_DIR/be$i.log" 2>&1 7>&- 8>&- 9>&- &
	record_pid "be$i" $!
	disown $!
	[ "$nowait" = nowait ] || backend_wait "$i"
}
backend_wait() {
	wait_until 10 test -e "$LAB_STATE_DIR/be$1.ready" >/dev/null || die "backend be$1 did not start (see $LAB_STATE_DIR/be$1.log)"
}

# stop_backend I: stop backend I's servers (its connections are reset).
stop_backend() { stop_pid "$(pid_of "be$1")" KILL; }

# ---- scenarios ---------------------------------------------------------------
# A scenario is a script, ecmp-lab/scenarios/NAME.sh, run by ecmp-lab/run (or
# by hand against a lab left up with --keep). It writes its inputs into $SC
# and its numbers, through analyze.py, into $LAB_STATE_DIR/report/NAME.json.

# scenario_begin NAME: load the lab's settings, make $SC, stop our traffic on exit.
scenario_begin() {
	SC_NAME=$1
	[ "$(id -u)" = 0 ] || die "needs root"
	[ -f "$LAB_STATE_DIR/lab.env" ] || die "no lab is up (no $LAB_STATE_DIR/lab.env): start one with ecmp-lab/run --keep"
	# shellcheck disable=SC1091
	. "$LAB_STATE_DIR/lab.env"
	export XDPLB LB_NODES BACKENDS LAB_QUICK
	set_sizes
	lab_ns "$NS_CLIENT" || die "the client namespace $NS_CLIENT is missing"
	SC=$LAB_STATE_DIR/sc/$SC_NAME
	rm -rf -- "$SC" "$LAB_STATE_DIR/report/$SC_NAME.timeline.json"
	mkdir -p "$SC" "$LAB_STATE_DIR/report"
	meta vip4 "$VIP4/32"
	meta vip6 "$VIP6/128"
	SC_PIDS=() SC_UNDO=()
	now >"$SC/scenario.begin"
	sampler_start
	trap scenario_end EXIT
	# Die of the signal (the EXIT trap still runs) so the caller sees it too.
	trap 'trap - INT; kill -INT $$' INT
	trap 'trap - TERM; kill -TERM $$' TERM
}

# scenario_end: the scenario's EXIT trap: undo what it changed in the lab
# (SC_UNDO, newest first, each once), stop its background processes, write
# its timeline (also when it failed half way: the report shows how far it got).
scenario_end() {
	local k p
	progress_stop
	sampler_stop
	for ((k = ${#SC_UNDO[@]} - 1; k >= 0; k--)); do eval "${SC_UNDO[k]}" || warn "undo '${SC_UNDO[k]}' failed"; done
	SC_UNDO=()
	for p in "${SC_PIDS[@]}"; do stop_pid "$p" TERM; done
	python3 "$LAB_DIR/timeline.py" --name "$SC_NAME" --dir "$SC" --routes "$LAB_STATE_DIR/routes.log" \
		--out "$LAB_STATE_DIR/report/$SC_NAME.timeline.json" || warn "no timeline for $SC_NAME (timeline.py failed)"
}

# sampler_start: the scenario's timeline sampler (sample.py, in the router's
# namespace: it reads every agent's /stats and log, sends nothing) into
# $SC/samples.jsonl until sampler_stop. Sets SAMPLER_PID.
sampler_start() {
	local i nodes=() addrs=()
	SAMPLER_PID=
	lab_ns "$NS_ROUTER" || return 0
	for ((i = 1; i <= LB_NODES; i++)); do nodes+=(--node "$i=$(admin_lb "$i")=$LAB_STATE_DIR/agent-lb$i.log"); done
	for ((i = 1; i <= BACKENDS + 1; i++)); do addrs+=("$(be4 "$i")" "$(be6 "$i")"); done
	# Started directly so $! is the sampler (ip netns exec execs python3).
	ip netns exec "$NS_ROUTER" python3 "$LAB_DIR/sample.py" "${nodes[@]}" --backends "$(IFS=,; echo "${addrs[*]}")" \
		--out "$SC/samples.jsonl" >"$SC/sampler.log" 2>&1 7>&- 8>&- 9>&- &
	SAMPLER_PID=$!
	record_pid "sampler-$SC_NAME" "$SAMPLER_PID"
	SC_PIDS+=("$SAMPLER_PID")
}

# sampler_stop: stop the sampler (it writes the last log lines first) and
# mark the end of the scenario's timeline; the first call counts.
sampler_stop() {
	[ ! -e "$SC/scenario.end" ] || return 0
	[ -z "${SAMPLER_PID:-}" ] || stop_pid "$SAMPLER_PID" TERM
	now >"$SC/scenario.end"
}

# meta KEY VALUE: a number or word for analyze.py.
meta() { printf '%s\t%s\n' "$1" "$2" >>"$SC/meta.tsv"; }

# long_start NAME SECONDS [nowait]: long-lived echo connections in the
# background; returns once they are all up (with nowait: at once, and
# long_ready NAME waits). Sets LONG_PID.
long_start() {
	local name=$1 secs=$2 nowait=${3:-}
	lab_ns "$NS_CLIENT" || die "no client namespace"
	# Started directly so $! is the process (ip netns exec execs timeout).
	ip netns exec "$NS_CLIENT" timeout $((${secs%.*} + 60)) python3 "$TRAFFIC" long --targets "$(echo_targets)" \
		--src "$(client_srcs)" --conns "$LONG_CONNS" --seconds "$secs" --interval "$LONG_INTERVAL" \
		--ready "$SC/$name.ready" --out "$SC/$name.json" >"$SC/$name.log" 2>&1 7>&- 8>&- 9>&- &
	LONG_PID=$!
	record_pid "long-$SC_NAME" "$LONG_PID"
	SC_PIDS+=("$LONG_PID")
	[ "$nowait" = nowait ] || long_ready "$name"
}
long_ready() {
	wait_until 20 test -e "$SC/$1.ready" >/dev/null || die "long-lived connections did not come up (see $SC/$1.log)"
}

# long_wait: wait for the long-lived connections to finish.
long_wait() {
	with_progress "$SC_NAME: long-lived connections" wait "$LONG_PID" || warn "long-lived traffic exited with $? (see $SC)"
	cat "$SC"/*.log 2>/dev/null | sed 's/^/    /' || true
}

# ---- routing events ----------------------------------------------------------

# gws4 NODES... / gws6 NODES...: the router's next hops (gateways) for these
# nodes, comma separated, as routes.py compares them.
gws4() { local i out=(); for i in "$@"; do out+=("$(lb4 "$i")"); done; local IFS=,; echo "${out[*]}"; }
gws6() { local i out=(); for i in "$@"; do out+=("$(lb6 "$i")"); done; local IFS=,; echo "${out[*]}"; }

# route_event TAG NODES...: record (meta) that an event happens now and that
# the router's VIP routes should end up over exactly NODES; analyze.py finds
# the time to that ECMP set in the route history ($LAB_STATE_DIR/routes.log).
route_event() {
	local tag=$1
	shift
	meta "t_$tag" "$(now)"
	meta "want4_$tag" "$(gws4 "$@")"
	meta "want6_$tag" "$(gws6 "$@")"
}

# poll_node I WANT TAG [ARGS]: poll.py in node I until WANT (converged,
# stopped), timed from $SC/TAG.t; result in $SC/TAG-I. Sets POLL_PID.
poll_node() {
	local i=$1 want=$2 tag=$3
	shift 3
	lab_ns "$(ns_lb "$i")" || die "no namespace $(ns_lb "$i")"
	nsenter --net="/run/netns/$(ns_lb "$i")" python3 "$LAB_DIR/poll.py" --admin "$(admin_lb "$i")" --want "$want" \
		--since "@$SC/$tag.t" --timeout 60 --out "$SC/$tag-$i" "$@" &
	POLL_PID=$!
	SC_PIDS+=("$POLL_PID")
}

# analyze: turn $SC into the scenario's report and print its numbers (the
# timeline ends here; scenario_end writes it).
analyze() {
	sampler_stop
	python3 "$LAB_DIR/analyze.py" "$SC_NAME" --dir "$SC" --routes "$LAB_STATE_DIR/routes.log" \
		--out "$LAB_STATE_DIR/report/$SC_NAME.json"
}

# watch_backend removed|present TAG [--port P] ADDR...: one poller per LB node
# (poll.py reads the agent's admin API every 20 ms from inside the node)
# waiting for ADDR... to leave or join every VIP's ring (with --port: every
# ring of the VIPs on port P); each writes the seconds since the epoch in
# $SC/TAG.t (write it when you act) to $SC/TAG-I. Then watch_wait.
watch_backend() {
	local want=$1 tag=$2 i a addrs=()
	shift 2
	if [ "${1:-}" = --port ]; then addrs+=(--port "$2"); shift 2; fi
	for a in "$@"; do addrs+=(--address "$a"); done
	WATCH_PIDS=()
	for i in $(up_nodes); do
		lab_ns "$(ns_lb "$i")" || die "no namespace $(ns_lb "$i")"
		# Started directly so $! is the poller.
		nsenter --net="/run/netns/$(ns_lb "$i")" python3 "$LAB_DIR/poll.py" --admin "$(admin_lb "$i")" "${addrs[@]}" \
			--want "$want" --since "@$SC/$tag.t" --timeout 30 --out "$SC/$tag-$i" &
		WATCH_PIDS+=($!)
		SC_PIDS+=($!)
	done
	sleep 0.5                 # pollers up and polling before the caller acts
}
watch_wait() { with_progress "$SC_NAME: waiting for the pollers" watch_wait_now; }
watch_wait_now() {
	local p
	for p in "${WATCH_PIDS[@]}"; do wait "$p" || true; done
}

# pick_victim SCENARIO: the LB node a node scenario acts on (the last one),
# which must be in service. Sets victim, nodes (in service) and others.
pick_victim() {
	victim=$LB_NODES
	nodes=$(up_nodes)
	others=$(for i in $nodes; do [ "$i" = "$victim" ] || printf '%s ' "$i"; done)
	[[ " $nodes " == *" $victim "* ]] || die "$1: LB node $victim is not in service (nodes in service: $nodes)"
	meta victim "$victim"
}
