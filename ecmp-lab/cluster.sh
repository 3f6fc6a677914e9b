# ecmp-lab/cluster.sh — the lab's etcd cluster and the operator's commands (sourced).
#
# Needs config.sh and lib.sh. Three etcd members (Debian's etcd-server), one
# per namespace xl-etcd1..3 (topology.sh links them to the router), their data
# under $LAB_STATE_DIR/etcd/ (removed with the state directory), each recorded
# as "pid etcdI" so cleanup stops it. Every command here runs inside a lab
# namespace: etcd in its member's, the operator's xdplb cluster / etcdctl in
# $NS_OPS.

# start_etcd I: etcd member I in the background. Its data directory is kept
# across restarts: a member started again rejoins the cluster with its data
# (etcd ignores the --initial-* flags once the directory holds a member).
start_etcd() {
	local i=$1 ns a e peers=()
	ns=$(ns_etcd "$i")
	lab_ns "$ns" || die "start_etcd: '$ns' is not a lab namespace"
	a=$(etcd4 "$i")
	for ((e = 1; e <= ETCD_MEMBERS; e++)); do peers+=("e$e=http://$(etcd4 "$e"):$ETCD_PEER_PORT"); done
	mkdir -p "$(etcd_data "$i")"            # 0700 (umask 077), as etcd wants it
	# Started directly so $! is etcd (ip netns exec execs it); its command line
	# names the state directory (--data-dir): ours() knows it.
	ip netns exec "$ns" etcd --name "e$i" --data-dir "$(etcd_data "$i")" \
		--listen-client-urls "http://$a:$ETCD_CLIENT_PORT" --advertise-client-urls "http://$a:$ETCD_CLIENT_PORT" \
		--listen-peer-urls "http://$a:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://$a:$ETCD_PEER_PORT" \
		--initial-cluster "$(IFS=,; echo "${peers[*]}")" --initial-cluster-state new --initial-cluster-token xl-etcd \
		--heartbeat-interval "$ETCD_HEARTBEAT_MS" --election-timeout "$ETCD_ELECTION_MS" \
		>>"$LAB_STATE_DIR/etcd-e$i.log" 2>&1 7>&- 8>&- 9>&- &
	record_pid "etcd$i" $!
	disown $!
}

# stop_etcd I [SIGNAL]: stop member I (default SIGKILL: a crashed member).
stop_etcd() { stop_pid "$(pid_of "etcd$1")" "${2:-KILL}"; }

# etcd_running I: member I's process is alive.
etcd_running() { local p; p=$(pid_of "etcd$1"); [ -n "$p" ] && ours "$p"; }

# etcdctl_lab ARGS...: etcdctl (v3 API) against every member, from $NS_OPS.
etcdctl_lab() {
	ns_exec "$NS_OPS" env ETCDCTL_API=3 etcdctl --endpoints "$(etcd_endpoints)" \
		--dial-timeout=1s --command-timeout=3s "$@"
}

# etcd_healthy: every member answers (etcdctl endpoint health fails if one does not).
etcd_healthy() { etcdctl_lab endpoint health >/dev/null 2>&1; }

# etcd_leader: the index (1..3) of the member that leads now; fails if none does.
etcd_leader() {
	etcdctl_lab endpoint status -w json 2>/dev/null | python3 -c '
import json, re, sys
for s in json.load(sys.stdin):
    st = s["Status"]
    if st["header"]["member_id"] == st["leader"]:
        print(re.search(r"10\.95\.(\d+)\.2", s["Endpoint"]).group(1)); sys.exit(0)
sys.exit(1)'
}

# etcd_start_all / etcd_wait_all: start every member (they elect a leader
# while the rest of the lab comes up), then wait until all answer (30 s at most).
etcd_start_all() {
	local i
	for ((i = 1; i <= ETCD_MEMBERS; i++)); do start_etcd "$i"; done
}
etcd_wait_all() {
	local i t
	t=$(wait_until 30 etcd_healthy) || {
		for ((i = 1; i <= ETCD_MEMBERS; i++)); do tail -n 5 "$LAB_STATE_DIR/etcd-e$i.log" >&2; done
		die "etcd: the $ETCD_MEMBERS members did not all answer within 30 s"
	}
	echo "$t"
}

# cluster_cmd SUBCOMMAND ARGS...: `xdplb cluster SUBCOMMAND ARGS` as the
# operator (from $NS_OPS), on the lab's etcd and prefix; 600 s at most.
cluster_cmd() {
	local sub=$1
	shift
	ns_exec "$NS_OPS" timeout 600 "$XDPLB" cluster "$sub" "$@" --endpoints "$(etcd_endpoints)" --prefix "$CLUSTER_PREFIX"
}

# lab_push FILE ARGS...: xdplb cluster push FILE ARGS (its exit status).
lab_push() {
	local f=$1
	shift
	cluster_cmd push "$f" "$@"
}

# config_revision: the mod revision of the shared config in etcd now (0: none).
config_revision() {
	etcdctl_lab get "${CLUSTER_PREFIX}config" -w json | python3 -c '
import json, sys
kvs = json.load(sys.stdin).get("kvs") or []
print(kvs[0]["mod_revision"] if kvs else 0)'
}

# push_current: push the config the lab runs normally (the active backends,
# weight 100 each) and wait for every node; for scenarios that changed it.
push_current() {
	write_shared "$LAB_STATE_DIR/shared.yaml" "$(active_backends)"
	lab_push "$LAB_STATE_DIR/shared.yaml" --wait 60 --json
}

# maglev_digests OUT NBACKENDS [I=WEIGHT...]: the table digests every node
# should show for the lab's VIPs with these backends, all healthy, computed
# offline (xdplb maglev, ring 65537: the VIPs' default): {"4": D, "6": D}.
# Kept in $LAB_STATE_DIR/digests/ for the next scenario that asks.
maglev_digests() {
	local out=$1 n=$2 b kv fam addrs ws d4 d6 cache
	shift 2
	cache=$LAB_STATE_DIR/digests/$n${*:+_}$(IFS=_; echo "$*").json
	if [ -s "$cache" ]; then
		cp "$cache" "$out"
		return 0
	fi
	local -A weight=()
	for kv in "$@"; do weight[${kv%%=*}]=${kv#*=}; done
	for fam in 4 6; do
		addrs=() ws=()
		for ((b = 1; b <= n; b++)); do
			[ "${weight[$b]:-100}" != 0 ] || continue
			addrs+=("$("be$fam" "$b")")
			ws+=("${weight[$b]:-100}")
		done
		d=$(ns_exec "$NS_OPS" "$XDPLB" maglev --backends "$(IFS=,; echo "${addrs[*]}")" \
			--weights "$(IFS=,; echo "${ws[*]}")" --size 65537 --json |
			python3 -c 'import json, sys; print(json.load(sys.stdin)["digest"])') || return 1
		if [ "$fam" = 4 ]; then d4=$d; else d6=$d; fi
	done
	mkdir -p "$LAB_STATE_DIR/digests"
	printf '{"4": "%s", "6": "%s"}\n' "$d4" "$d6" >"$cache"
	cp "$cache" "$out"
}

# watch_cluster WANT TAG [POLL ARGS...]: one poll.py per LB node in service
# waiting for WANT (revision, refused, reachable, unreachable), timed from
# $SC/TAG.t (write it when you act); results in $SC/TAG-I. Then watch_wait.
watch_cluster() {
	local want=$1 tag=$2 i
	shift 2
	WATCH_PIDS=()
	for i in $(up_nodes); do
		lab_ns "$(ns_lb "$i")" || die "no namespace $(ns_lb "$i")"
		nsenter --net="/run/netns/$(ns_lb "$i")" python3 "$LAB_DIR/poll.py" --admin "$(admin_lb "$i")" \
			--want "$want" --since "@$SC/$tag.t" --timeout 60 --out "$SC/$tag-$i" "$@" &
		WATCH_PIDS+=($!)
		SC_PIDS+=($!)
	done
	sleep 0.3                 # pollers up and polling before the caller acts
}

# cluster_status_json OUT: `xdplb cluster status --json` into OUT; prints its exit status.
cluster_status_json() {
	local rc=0
	cluster_cmd status --json >"$1" 2>"$1.err" || rc=$?
	echo "$rc"
}
