#!/usr/bin/env bash
# Idle cost of knestd builds side by side: starts one standalone knestd (no
# syncer) per variant at once, waits until each is ready, lets them settle,
# then measures each one's CPU time, context switches (all its threads) and
# memory over the same window, so that every variant shares the machine's
# load. Prints one JSON object per variant.
#
#   hack/bench/idle/side-by-side.sh [-s SETTLE] [-w WINDOW] NAME=BINARY[:VAR=VALUE;VAR=VALUE] ...
#
# e.g. hack/bench/idle/side-by-side.sh main=/tmp/knestd-main this=bin/knestd
set -o errexit -o nounset -o pipefail

settle=30 window=60
while getopts s:w: opt; do
  case "${opt}" in
    s) settle="${OPTARG}" ;;
    w) window="${OPTARG}" ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { echo "usage: $0 [-s SETTLE] [-w WINDOW] NAME=BINARY[:VAR=VALUE;...] ..." >&2; exit 2; }

work="$(mktemp -d)"
declare -A pid
names=()
cleanup() {
  for n in "${names[@]}"; do kill -TERM "${pid[$n]}" 2>/dev/null || true; done
  wait || true
  rm -rf "${work}"
}
trap cleanup EXIT

for spec in "$@"; do
  name="${spec%%=*}" rest="${spec#*=}"
  bin="${rest%%:*}" envs=""
  [[ "${rest}" == *:* ]] && envs="${rest#*:}"
  mkdir -p "${work}/${name}"
  (
    IFS=';'
    for e in ${envs}; do export "${e?}"; done
    exec "${bin}" --data-dir="${work}/${name}/data" --name=bench --secure-port=0 >"${work}/${name}/log" 2>&1
  ) &
  pid[${name}]=$!
  names+=("${name}")
done

for n in "${names[@]}"; do
  for _ in $(seq 1 600); do
    grep -q 'Tenant control plane is ready' "${work}/${n}/log" && break
    kill -0 "${pid[$n]}" 2>/dev/null || { echo "${n}: knestd exited; log in ${work}/${n}/log" >&2; exit 1; }
    sleep 1
  done
done
sleep "${settle}"

# snapshot PID: "<utime+stime ticks> <context switches of all threads>"
snapshot() {
  local ticks switches=0 s
  ticks=$(awk '{print $14+$15}' "/proc/$1/stat")
  for s in /proc/"$1"/task/*/status; do
    switches=$((switches + $(awk '/ctxt_switches/ {n += $2} END {print n+0}' "${s}" 2>/dev/null || echo 0)))
  done
  echo "${ticks} ${switches}"
}
declare -A before
for n in "${names[@]}"; do before[${n}]=$(snapshot "${pid[$n]}"); done
load_start=$(cut -d' ' -f1 /proc/loadavg)
sleep "${window}"
load_end=$(cut -d' ' -f1 /proc/loadavg)
hz=$(getconf CLK_TCK)
for n in "${names[@]}"; do
  read -r t1 c1 <<<"${before[$n]}"
  read -r t2 c2 <<<"$(snapshot "${pid[$n]}")"
  read -r rss anon < <(awk '/^Rss:/ {r=$2} /^Anonymous:/ {a=$2} END {printf "%.1f %.1f\n", r/1024, a/1024}' "/proc/${pid[$n]}/smaps_rollup")
  cpu=$(awk -v t="$((t2 - t1))" -v hz="${hz}" -v w="${window}" 'BEGIN {printf "%.2f", t * 100 / hz / w}')
  printf '{"variant":"%s","idle_cpu_percent":%s,"idle_wakeups_per_second":%d,"rss_mib":%s,"rss_anon_mib":%s,"settle_seconds":%s,"window_seconds":%s,"load_average_start":%s,"load_average_end":%s}\n' \
    "${n}" "${cpu}" "$(((c2 - c1) / window))" "${rss}" "${anon}" "${settle}" "${window}" "${load_start}" "${load_end}"
done
