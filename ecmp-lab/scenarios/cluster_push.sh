#!/usr/bin/env bash
# Scenario 7, cluster push: the time from `xdplb cluster push` (run by the
# operator in the router's namespace) to every LB node running the new
# revision with the table digests an offline `xdplb maglev` computes for it.
# One poller per node (poll.py, 20 ms, from inside the node) starts before the
# push and stops when its node's admin API shows a revision above the old one
# and every VIP's digest equal to the expected one; the push's own --wait
# numbers (converge_ms: from the write until every live node's report in etcd
# names the revision) are reported next to it. Two pushes: backend 1's weight
# 100 -> 50 (every VIP's table changes), then back. Goal: under 1 s for every
# node; `xdplb cluster status` agrees afterwards (exit 0).
# Full mode also pushes 100 generated VIPs x 100 backends (next to the lab's
# four; no health checks: type none, ring 65537 each) and back, timed by the
# push's --wait (a status of 10,000 backends takes seconds to serve, too slow
# to poll), with every node's digests compared in `xdplb cluster status --json`.
set -o errexit -o nounset -o pipefail
. "$(dirname "$0")/../scenario.sh" cluster_push

n=$(active_backends)
meta backends "$n"
meta lb_nodes "$(wc -w <<<"$(up_nodes)")"
meta goal_s 1

# timed_push TAG FILE REVISION [DIGESTS]: push FILE (--wait 30) while a poller
# per node waits for a revision above REVISION (with DIGESTS: the expected
# digests); the push's exit status and JSON, its wall time and every node's
# time go into $SC.
timed_push() {
	local tag=$1 file=$2 r0=$3 dg=${4:-} rc=0 t0 args=()
	[ -z "$dg" ] || args=(--digests "$dg")
	watch_cluster revision "$tag" --above "$r0" "${args[@]}"
	t0=$(now)
	echo "$t0" >"$SC/$tag.t"
	lab_push "$file" --wait 30 --json >"$SC/$tag.json" 2>"$SC/$tag.err" || rc=$?
	meta "${tag}_command_s" "$(elapsed "$t0" "$(now)")"
	watch_wait
	meta "${tag}_rc" "$rc"
	meta "${tag}_before" "$r0"
	meta "${tag}_status_rc" "$(cluster_status_json "$SC/$tag-cluster.json")"
}

write_shared "$SC/half.yaml" "$n" 1=50
write_shared "$LAB_STATE_DIR/shared.yaml" "$n"
maglev_digests "$SC/full.digests" "$n" &        # offline, next to the first push
full_pid=$!
maglev_digests "$SC/half.digests" "$n" 1=50
timed_push half "$SC/half.yaml" "$(config_revision)" "$SC/half.digests"

wait "$full_pid" || die "cluster_push: xdplb maglev failed"
timed_push full "$LAB_STATE_DIR/shared.yaml" "$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["revision"])' "$SC/half.json")" "$SC/full.digests"

if [ "$LAB_QUICK" != 1 ]; then
	# 100 VIPs x 100 backends: VIP k (10.101.0.k) takes 100 consecutive
	# addresses of a pool of 400 (10.94.0-1.x, not on any link: nothing is
	# sent to them) starting at 3k, so no two VIPs have the same backend set.
	meta big_vips 100
	meta big_backends_per_vip 100
	python3 - "$LAB_STATE_DIR/shared.yaml" "$SC/big.yaml" <<'PY'
import sys
lines = [open(sys.argv[1]).read().rstrip("\n"),
         "  # 100 generated VIPs x 100 backends (a pool of 400 addresses; no health checks)"]
pool = ["10.94.%d.%d" % (j // 200, j % 200 + 1) for j in range(400)]
for k in range(100):
    lines.append('  - address: "10.101.0.%d"\n    port: 80\n    protocol: tcp\n    health: { type: none }\n    backends:' % (k + 1))
    lines += ['      - { address: "%s", weight: 100 }' % pool[(3 * k + t) % 400] for t in range(100)]
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
PY
	for tag in big big_back; do
		f=$SC/big.yaml
		[ "$tag" = big ] || f=$LAB_STATE_DIR/shared.yaml
		r0=$(config_revision)
		t0=$(now)
		rc=0
		lab_push "$f" --wait 300 --json >"$SC/$tag.json" 2>"$SC/$tag.err" || rc=$?
		meta "${tag}_command_s" "$(elapsed "$t0" "$(now)")"
		meta "${tag}_rc" "$rc"
		meta "${tag}_before" "$r0"
		meta "${tag}_status_rc" "$(cluster_status_json "$SC/$tag-cluster.json")"
	done
fi
# The last push's pollers saw every node on the lab's digests; else wait for it.
grep -qx timeout "$SC"/full-[0-9]* 2>/dev/null || [ "$LAB_QUICK" != 1 ] || [ "$(sed -n 's/^full_rc	//p' "$SC/meta.tsv")" != 0 ] ||
	exec_done=1
[ "${exec_done:-0}" = 1 ] || wait_until 30 all_healthy >/dev/null ||
	warn "cluster_push: not every node healthy with the lab's config 30 s after the last push"
analyze
