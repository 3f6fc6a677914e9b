# ecmp-lab/scenario.sh — the common start of every scenario script:
#   . "$(dirname "$0")/../scenario.sh" NAME
# Sets LAB_DIR and REPO (unless run gave them), sources config.sh, lib.sh,
# topology.sh and cluster.sh, and starts scenario NAME (its directory $SC, its
# meta file).
umask 077
LAB_DIR=${LAB_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
REPO=${REPO:-$(cd "$LAB_DIR/.." && pwd)}
# shellcheck source=config.sh
. "$LAB_DIR/config.sh"
# shellcheck source=lib.sh
. "$LAB_DIR/lib.sh"
# shellcheck source=topology.sh
. "$LAB_DIR/topology.sh"
# shellcheck source=cluster.sh
. "$LAB_DIR/cluster.sh"
scenario_begin "$1"
