#!/usr/bin/env bash
# Observability tests: the Prometheus alerting rules (contrib/prometheus) and
# the Grafana dashboard (contrib/grafana) against a real agent.
#  * promtool check rules, and promtool test rules on xdplb.rules.test.yml
#    (each alert fires on a synthetic series and stays silent otherwise), and
#    every alert has such a firing and a silent test;
#  * the dashboard is valid JSON and a sound Grafana model (${datasource},
#    job/instance/vip variables), and every query in it parses (promtool);
#  * a real agent runs in namespaces made here; every xdplb_* metric, label and
#    label value the rules and the dashboard use is in its GET /metrics
#    (Prometheus's own `up` is exempt), and xdplb_vip_table_digest is the
#    status digest's first 12 hex digits;
#  * a real Prometheus (Debian's package) scrapes the agent as job "xdplb" with
#    the rules loaded: every dashboard query and variable returns data, and the
#    alerts pending are exactly those the agent's state calls for: one backend
#    down, then a VIP failing open, then the agent down.
# Installs Debian's prometheus package when promtool is missing (its service is
# kept from starting). Topology (all created here, all deleted on exit):
#   xt-ob-lb-PID: lb0 10.0.9.1/24, the agent (XDP generic, admin API on
#                 127.0.0.1:9180) and Prometheus (127.0.0.1:9090)
#   xt-ob-pe-PID: pe0 10.0.9.2 (backend, HTTP :8080), 10.0.9.4 (backend, no
#                 server: down), 10.0.9.10 (client)
# Usage: Tests/observability/run.sh PATH/TO/xdplb
set -o errexit -o nounset -o pipefail
XDPLB=$(readlink -f "$1")
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
rules="$root/contrib/prometheus/xdplb.rules.yml"
rules_test="$root/contrib/prometheus/xdplb.rules.test.yml"
dash="$root/contrib/grafana/xdplb.json"
tmp=$(mktemp -d /tmp/xdplb-obs.XXXXXX)
lb="xt-ob-lb-$$" pe="xt-ob-pe-$$"
bpffs="/sys/fs/bpf/xdplb-obs-test-$$"
admin=127.0.0.1:9180 prom=http://127.0.0.1:9090
vip="10.100.0.1:53/udp"
agent_pid="" prom_pid="" server_pid="" policy_made=""
pass=0 fail=0
t0=$SECONDS

cleanup() {
	[ -n "$prom_pid" ] && kill "$prom_pid" 2>/dev/null || true
	[ -n "$agent_pid" ] && kill -9 "$agent_pid" 2>/dev/null || true
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	[ -n "$policy_made" ] && rm -f /usr/sbin/policy-rc.d
	"$XDPLB" down --bpffs "$bpffs" >/dev/null 2>&1 || true
	ip netns del "$lb" 2>/dev/null || true
	ip netns del "$pe" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

. "$here/../lib.sh"
inlb() { nsenter --net="/run/netns/$lb" "$@"; }   # nsenter keeps /sys/fs/bpf visible
inpe() { ip netns exec "$pe" "$@"; }
py() { python3 "$here/promql.py" "$@"; }
adm() { inlb "$XDPLB" "$@" --admin "$admin"; }

# ---- promtool (Debian's prometheus package) -----------------------------------
install_prometheus() {
	echo "installing: prometheus (for promtool)"
	export DEBIAN_FRONTEND=noninteractive
	local wait_lock=(-o DPkg::Lock::Timeout=300)   # another apt-get may be running: wait for it
	apt-get "${wait_lock[@]}" update -qq
	# As in tools/install-deps: policy-rc.d 101 keeps the package's daemon from
	# starting in the machine's namespace; this suite starts its own in $lb.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
		policy_made=1
	fi
	# No recommends: they bring prometheus-node-exporter, another daemon.
	apt-get "${wait_lock[@]}" install -y -qq --no-install-recommends prometheus >/dev/null
	if [ -n "$policy_made" ]; then rm -f /usr/sbin/policy-rc.d; policy_made=""; fi
	# The package enables its unit for the next boot: not on a test machine.
	if [ -d /run/systemd/system ]; then systemctl disable --now prometheus.service >/dev/null 2>&1 || true; fi
}
if ! command -v promtool >/dev/null; then
	install_prometheus
	check "prometheus installed; the package left no prometheus daemon running" sh -c '! pgrep -x prometheus'
fi
for tool in promtool prometheus; do command -v "$tool" >/dev/null || { bad "$tool is missing (Debian package prometheus)"; exit 1; }; done
echo "using $(promtool --version 2>&1 | head -1)"
t_ready=$SECONDS

# ---- topology and agent -----------------------------------------------------------
lb_pe_up "$lb" "$pe" 10.0.9.2 10.0.9.4 10.0.9.10
# Started directly (not through a function) so $! is the server itself.
ip netns exec "$pe" python3 -m http.server 8080 --bind 10.0.9.2 --directory "$tmp" >/dev/null 2>&1 &
server_pid=$!

# TCP admin without a token file: read-only, /metrics open, as Prometheus scrapes it.
{ node_yaml "$bpffs" "$admin"; cat <<YAML; } >"$tmp/node.yaml"
  - address: 10.100.0.1
    port: 53
    protocol: udp
    ring_size: 65537
    health: { type: http, path: /, port: 8080, interval: 200ms, timeout: 150ms, rise: 2, fall: 3 }
    backends:
      - { address: 10.0.9.2, weight: 100 }
      - { address: 10.0.9.4, weight: 100 }
YAML
nsenter --net="/run/netns/$lb" "$XDPLB" run --config "$tmp/node.yaml" >"$tmp/agent.log" 2>&1 &
agent_pid=$!

# ---- Prometheus scraping the agent as job xdplb, rules loaded (both start while the
# static checks below run) ---------------------------------------------------------
cat >"$tmp/prometheus.yml" <<YAML
global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: [ "$rules" ]
scrape_configs:
  - job_name: xdplb
    static_configs: [ { targets: [ "$admin" ] } ]
YAML
nsenter --net="/run/netns/$lb" prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
	--web.listen-address=127.0.0.1:9090 --log.level=warn >"$tmp/prometheus.log" 2>&1 &
prom_pid=$!

# ---- the rules on their own -------------------------------------------------------
check "promtool check rules: contrib/prometheus/xdplb.rules.yml" promtool check rules "$rules"
check "promtool test rules: each alert fires on its synthetic series and stays silent otherwise" promtool test rules "$rules_test"

# ---- the dashboard on its own -------------------------------------------------------
check "the dashboard is valid JSON" python3 -m json.tool "$dash"
check "the dashboard is a Grafana model: \${datasource} on every panel and variable, job/instance/vip variables, unique ids" py dashboard "$dash"
py exprs "$dash" >"$tmp/dash.exprs"
py as-rules "$tmp/dash.exprs" "$tmp/dash.rules.json"
check "every dashboard query ($(wc -l <"$tmp/dash.exprs") with its variables) parses: promtool check rules on them as recording rules" \
	promtool check rules "$tmp/dash.rules.json"

# ---- the agent's own /metrics ---------------------------------------------------------
healthy() { adm status --json | json "{b['address']: b['healthy'] for b in d['vips'][0]['backends']}['$1']"; }
settled() { [ "$(healthy 10.0.9.2) $(healthy 10.0.9.4)" = "True False" ]; }
if t=$(wait_until 20 settled); then ok "the agent starts; 10.0.9.2 up, 10.0.9.4 down (no server) after ${t}s"; else
	bad "the agent starts; 10.0.9.2 up, 10.0.9.4 down (no server)"
	sed 's/^/    /' "$tmp/agent.log"
	echo "observability: $pass passed, $fail failed"
	exit 1
fi
inpe python3 "$here/../agent/traffic.py" send 10.0.9.10 10.100.0.1 53 --sports 6000,6001 --count 10 --interval 0.002 >/dev/null
scrape() { inlb curl -sf "http://$admin/metrics" -o "$tmp/metrics"; }
counted() { scrape && grep -qx "xdplb_vip_packets_total{vip=\"$vip\"} 20\(\.0\)\?" "$tmp/metrics" &&
	grep -qx 'xdplb_backend_packets_total{backend="10.0.9.2"} 20\(\.0\)\?' "$tmp/metrics"; }
check "GET /metrics counts the 20 packets sent to the VIP, all on its healthy backend" wait_until 5 counted
check "promtool check metrics: the scrape is valid exposition format" sh -c "promtool check metrics <'$tmp/metrics'"
# 2 UDP flows of 10 packets: each written by its first packet, established by its second.
check "xdplb_conntrack_ways: 2 established, 0 embryonic, 65,534 free (lru_size 65,536: every bucket read)" sh -c \
	"grep -qx 'xdplb_conntrack_ways{state=\"established\"} 2\(\.0\)\?' '$tmp/metrics' && grep -qx 'xdplb_conntrack_ways{state=\"embryonic\"} 0\(\.0\)\?' '$tmp/metrics' && grep -qx 'xdplb_conntrack_ways{state=\"free\"} 65534\(\.0\)\?' '$tmp/metrics'"
check "xdplb stats --json: conntrack 2 established of 65,536 ways, 16,384 buckets read" \
	test "$(adm stats --json --interval 0.1 | json "[d['conntrack'][k] for k in ('established', 'embryonic', 'free', 'ways', 'sampled_buckets')]")" = "[2, 0, 65534, 65536, 16384]"
digest=$(adm status --json | json "d['vips'][0]['digest']")
check "xdplb_vip_table_digest is the first 12 hex digits of the VIP's ring digest in xdplb status ($digest)" \
	grep -qx "xdplb_vip_table_digest{vip=\"$vip\"} $((16#${digest:0:12}))\(\.0\)\?" "$tmp/metrics"

# ---- the rules and the dashboard in Prometheus -----------------------------------------
q() { inlb curl -sfG "$prom/api/v1/query" --data-urlencode "query=$1" | json "len(d['data']['result'])"; }
ready() { inlb curl -sf "$prom/-/ready" >/dev/null; }
# 4 samples: the dashboard's rate(...[5s]) ($__rate_interval at a 1 s scrape) has 2 or more.
scraped() { [ "$(q 'count_over_time(xdplb_attached{job="xdplb"}[1m]) >= 4')" = 1 ]; }
if t=$(wait_until 20 ready) && t2=$(wait_until 20 scraped); then
	ok "Prometheus is ready and has scraped the agent 4 times as job xdplb (1 s interval)"
else
	bad "Prometheus is ready and scrapes the agent as job xdplb"
	sed 's/^/    /' "$tmp/prometheus.log"
fi
inlb curl -sf "$prom/api/v1/rules" -o "$tmp/rules.json"
check "Prometheus loaded the rules: each alert has a severity, a summary and a description naming its instance, VIP or backend, and evaluates without error" \
	py rules "$tmp/rules.exprs" "$tmp/rules.json"
check "every alert has a unit test where it fires and one where it stays silent" py coverage "$tmp/rules.json" "$rules_test"
check "every xdplb_* metric, label and label value the rules use is in the agent's /metrics" py names "$tmp/metrics" "$tmp/rules.exprs"
check "every xdplb_* metric, label and label value the dashboard uses is in the agent's /metrics" py names "$tmp/metrics" "$tmp/dash.exprs"
check "every dashboard query and variable returns data from Prometheus scraping the agent" inlb python3 "$here/promql.py" live "$tmp/dash.exprs" "$prom"

alerts_are() { # alerts_are NAME EXPECTED: the pending or firing alerts become exactly EXPECTED within 10 s
	wait_until 10 inlb python3 "$here/promql.py" alerts "$prom/api/v1/rules" "$2" >/dev/null || true
	check "$1" inlb python3 "$here/promql.py" alerts "$prom/api/v1/rules" "$2"
}
alerts_are "live: only XdplbBackendDown is pending, for 10.0.9.4" \
	"XdplbBackendDown{backend=10.0.9.4,vip=$vip}"
kill "$server_pid"
server_pid=""
fail_open() { [ "$(adm status --json | json "d['vips'][0]['fail_open']")" = True ]; }
check "the last backend's server stops: the VIP fails open" wait_until 10 fail_open
alerts_are "live: XdplbVIPFailOpen and XdplbBackendDown for both backends are pending, nothing else" \
	"XdplbVIPFailOpen{vip=$vip}; XdplbBackendDown{backend=10.0.9.2,vip=$vip}; XdplbBackendDown{backend=10.0.9.4,vip=$vip}"
kill -TERM "$agent_pid"
wait "$agent_pid" 2>/dev/null || true
agent_pid=""
alerts_are "live: the agent stops: only XdplbAgentDown is pending (up{job=\"xdplb\"} == 0; the agent's series went stale)" \
	"XdplbAgentDown{}"

echo
echo "measured: $((SECONDS - t_ready)) s after promtool was there ($((SECONDS - t0)) s in all)"
echo "observability: $pass passed, $fail failed"
[ "$fail" = 0 ]
