# ecmp-lab/config.sh — names, subnets and sizes of the lab (sourced by run).
#
# Every name starts with $LAB_PREFIX and every address derives from a role
# index, so two runs build the same lab. Nothing here touches the system.
#
#   xl-client ── xl-rtr ──┬── xl-lb1 … xl-lbN     (one veth each, MTU 1600)
#   (MTU 1500)            ├── xl-be1 … xl-beM+1   (one veth each, MTU 1600)
#                         ├── xl-etcd1 … 3        (one veth each, MTU 1600)
#   xl-atk ───────────────┘  (flood's attacker, MTU 1500; sources 198.18.0.0/15 only)
#
# The router learns an ECMP route for each VIP over the LB nodes from BGP
# only: bird2 on the router (AS $RTR_ASN) has one eBGP session per family with
# bird2 on every LB node (AS $LB_ASN, `xdplb bgp run`), BFD on each; the agent
# decides what its node announces (routes in kernel table $BGP_TABLE). The LB nodes
# send GRE back out their only interface (XDP_TX) to the router, which forwards
# it to the backend; backends answer the client directly (DSR) via the router.
# Backend M+1 runs from the start but joins the VIPs only in backend_added.
#
# The VIPs and backends live in etcd, not in the node files: three etcd
# members, each in its own namespace on its own router link (xl-etcd1..3,
# 10.95.i.2), form the cluster the agents follow (cluster: section of each
# node file). The lab pushes the shared config once with `xdplb cluster push
# --wait` and every change after that (backend_added, drain, ...) is a push
# too. The operator's commands (xdplb cluster …, etcdctl) run in the router's
# namespace, which reaches every member directly.

LAB_PREFIX=xl-
MAX_NAMELEN=15                        # IFNAMSIZ - 1

# Sizes (ecmp-lab/run --lb-nodes / --backends; --quick lowers the traffic sizes).
LB_NODES=${LB_NODES:-3}
BACKENDS=${BACKENDS:-4}
CLIENT_ADDRS=4                        # source addresses of the client (v4 and v6 each)

# Namespaces
NS_CLIENT=${LAB_PREFIX}client
NS_ROUTER=${LAB_PREFIX}rtr
ns_lb() { echo "${LAB_PREFIX}lb$1"; }
ns_be() { echo "${LAB_PREFIX}be$1"; }

# Interfaces: <node>-<peer>; the router's side is xl-rtr-<node>.
IF_CLIENT=${LAB_PREFIX}cl-rtr
IF_RTR_CLIENT=${LAB_PREFIX}rtr-cl
if_lb() { echo "${LAB_PREFIX}lb$1-rtr"; }
if_rtr_lb() { echo "${LAB_PREFIX}rtr-lb$1"; }
if_be() { echo "${LAB_PREFIX}be$1-rtr"; }
if_rtr_be() { echo "${LAB_PREFIX}rtr-be$1"; }

# VIPs and services
VIP4=10.100.0.1
VIP6=fd00:100::1
HTTP_PORT=80
ECHO_PORT=7

# Client link: 10.98.0.0/24, fd00:98::/64; router .1, client .2 … .(1+CLIENT_ADDRS)
RTR_CLIENT4=10.98.0.1
RTR_CLIENT6=fd00:98::1
client4() { echo "10.98.0.$((1 + $1))"; }
client6() { echo "fd00:98::$((1 + $1))"; }

# LB node i: 10.97.i.0/24, fd00:97:i::/64; router .1, node .2
rtr_lb4() { echo "10.97.$1.1"; }
rtr_lb6() { echo "fd00:97:$1::1"; }
lb4() { echo "10.97.$1.2"; }
lb6() { echo "fd00:97:$1::2"; }

# Backend i: 10.96.i.0/24, fd00:96:i::/64; router .1, backend .2
rtr_be4() { echo "10.96.$1.1"; }
rtr_be6() { echo "fd00:96:$1::1"; }
be4() { echo "10.96.$1.2"; }
be6() { echo "fd00:96:$1::2"; }

# The flood scenario's attacker (xl-atk, link 10.94.0.0/24: router .1, attacker
# .2). Its traffic comes ONLY from the lab-only prefix FLOOD_PREFIX4,
# 198.18.0.0/15 (RFC 2544's benchmarking range: never routed on the
# Internet): spoofed SYNs from FLOOD_SPOOF4 (ecmp-lab/flood.py) and one
# non-spoofed abusive source, ABUSE_SRC4, an address of the attacker's own
# interface (hping3). The router blackholes FLOOD_PREFIX4, so the backends'
# SYN-ACKs to those sources die there (and the attacker never sees them).
NS_ATTACKER=${LAB_PREFIX}atk
IF_ATK=${LAB_PREFIX}atk-rtr
IF_RTR_ATK=${LAB_PREFIX}rtr-atk
RTR_ATK4=10.94.0.1
ATK4=10.94.0.2
FLOOD_PREFIX4=198.18.0.0/15
FLOOD_SPOOF4=198.18.0.0/16
ABUSE_SRC4=198.19.255.1

# Links: the client's stays at 1500; LB and backend links carry GRE (+24/+44).
MTU_CLIENT=1500
MTU_CORE=1600
PATH_MTU=1600

# Agents: the same hash seed on every node (decision 1 + 2 of DESIGN.md).
HASH_SEED=0x5eed
LRU_SIZE=65536
# Admin API: a unix socket per node (network namespaces do not separate paths).
admin_lb() { echo "$LAB_STATE_DIR/lb$1.sock"; }
bpffs_lb() { echo "/sys/fs/bpf/xdplb-lab-lb$1"; }
# Per node, under LAB_STATE_DIR: agent state (heartbeat, drain flag), bird's
# generated config and control socket.
state_lb() { echo "$LAB_STATE_DIR/lb$1"; }
bird_conf_lb() { echo "$LAB_STATE_DIR/bird-lb$1.conf"; }
bird_ctl_lb() { echo "$LAB_STATE_DIR/bird-lb$1.ctl"; }
# Health checks: removal takes at most fall x interval + timeout (+ scheduling).
HC_INTERVAL_MS=500
HC_TIMEOUT_MS=250
HC_RISE=2
HC_FALL=3
# Added to fall x interval + timeout for the removal bound: the agent's
# reconcile (a 65537-slot ring per VIP: milliseconds in a release build,
# ~0.1-0.5 s each in a debug build on 2 busy cores) and scheduling. Measured
# (poll.py, 20 ms samples): release 1.5-1.6 s, debug 2.0-2.6 s.
HC_SLACK_S=1.5
# Added too, for the agreed health: a backend leaves the rings once the
# majority's probes say so (of two nodes: both; of three: the second one to
# see it), published to etcd and brought by every node's watch, then a second
# reconcile. Measured with the debug build, another build running, the same
# hour: removal 2.3-3.1 s with the cluster, 1.6-1.8 s without (quick lab, 2
# nodes); 3.5-5.7 s with it, 2.3 s without (full lab, 3 nodes, load 6-13).
HC_CONSENSUS_S=1.5

# BGP: router and LB nodes (bird2), BFD timers (100 ms x 3: a silent node
# leaves the router's ECMP set in ~0.3 s; measured 0.23-0.31 s on these veths).
RTR_ASN=65000
LB_ASN=65001
RTR_ID=10.97.0.1
BFD_INTERVAL_MS=100
BFD_MULTIPLIER=3
BGP_TABLE=100                       # the agent's announcement table on each LB node
# Longer than an agent restart (agent_restart), so no restart flaps a route.
BGP_GRACE=30s
BGP_QUIET=500ms
BGP_DRAIN_TIMEOUT=10s

# etcd: member i in namespace xl-etcdi, 10.95.i.0/24 and fd00:95:i::/64 on its
# router link (router .1, member .2); client port 2379, peer port 2380. Heartbeat
# and election timeout are etcd's defaults (100 ms / 1 s): the lab shares two
# cores with six busy agents, and a 500 ms election timeout can elect spuriously
# there; a lost leader is replaced in 1-2 s.
ETCD_MEMBERS=3
ns_etcd() { echo "${LAB_PREFIX}etcd$1"; }
if_etcd() { echo "${LAB_PREFIX}etcd$1-rtr"; }
if_rtr_etcd() { echo "${LAB_PREFIX}rtr-etcd$1"; }
rtr_etcd4() { echo "10.95.$1.1"; }
rtr_etcd6() { echo "fd00:95:$1::1"; }
etcd4() { echo "10.95.$1.2"; }
etcd6() { echo "fd00:95:$1::2"; }
ETCD_CLIENT_PORT=2379
ETCD_PEER_PORT=2380
ETCD_HEARTBEAT_MS=100
ETCD_ELECTION_MS=1000
etcd_data() { echo "$LAB_STATE_DIR/etcd/e$1"; }
# The cluster's key prefix and the agents' cluster settings: a node's lease
# (its report and health vote) lapses 3 s after it dies; etcd unreachable for
# 5 s -> the node falls back to its own probes; 1 s per etcd request.
CLUSTER_PREFIX=/xdplb-lab/
CLUSTER_LEASE_TTL=3s
CLUSTER_FALLBACK_AFTER=5s
CLUSTER_REQUEST_TIMEOUT=1s
# The health rule the agents start with (asymmetric_health switches to local
# and back); the one in force is in $LAB_STATE_DIR/health_rule.
CLUSTER_HEALTH_RULE=majority
# asymmetric_health: LB node 1 loses its probes' path to this backend (probe_cut.bpf.c).
PROBE_CUT_BACKEND=1
cache_lb() { echo "$LAB_STATE_DIR/lb$1-cache.json"; }
# Where the operator runs `xdplb cluster …` and etcdctl.
NS_OPS=$NS_ROUTER
# etcd_endpoints: the client URLs of every member, comma separated.
etcd_endpoints() {
	local i out=()
	for ((i = 1; i <= ETCD_MEMBERS; i++)); do out+=("http://$(etcd4 "$i"):$ETCD_CLIENT_PORT"); done
	local IFS=,
	echo "${out[*]}"
}

# Where the lab keeps its state (one lab at a time: names are fixed).
LAB_STATE_DIR=${LAB_STATE_DIR:-/run/xdplb-ecmp-lab}

# Traffic sizes, full run and --quick.
set_sizes() {
	if [ "${LAB_QUICK:-0}" = 1 ]; then
		DIST_CONNS=800         # short connections in distribution (v4 + v6)
		LONG_CONNS=60          # long-lived connections per scenario
		LONG_INTERVAL=0.1      # seconds between messages on one connection
		PROBE_FLOWS=600        # fixed flows probed before/after backend_added
		SHORT_CONNS=200        # short connections during a change
		CONCURRENCY=16
		PHASE=2                # seconds of traffic before/after an action
		FLOOD_LONG_CONNS=200   # flood: long-lived connections kept through each flood
		FLOOD_SECONDS=4        # flood: seconds of each flood (its time bound)
		FLOOD_RATE=35000       # flood: spoofed SYNs per second offered (count bound: rate x seconds;
		                       # more than the 2 x 65,536 conntrack ways of the quick lab)
		ABUSE_RATE=1000        # flood: SYNs per second of the one abusive source (hping3)
	else
		DIST_CONNS=3000
		LONG_CONNS=240
		LONG_INTERVAL=0.1
		PROBE_FLOWS=2000
		SHORT_CONNS=600
		CONCURRENCY=24
		PHASE=4
		FLOOD_LONG_CONNS=1000
		FLOOD_SECONDS=10
		FLOOD_RATE=20000
		ABUSE_RATE=2000
	fi
	# flood, limits on: per LB node and per source /32 (IPv4) or /128 (IPv6;
	# the client's four IPv6 addresses share one /64), far above what the
	# lab's client opens or sends per address, far below the abusive source.
	PROT_NEW_FLOWS=100 PROT_NEW_FLOW_BURST=50 PROT_PPS=20000 PROT_PPS_BURST=20000
	# and a flood alert (a log line) when a VIP's new flows pass this rate on a node.
	PROT_FLOOD_ALERT=2000
}
