#!/usr/bin/env bash
# Run one command of a results page and append what the page reports about it to LOG: the
# command line (quoted so that it can be pasted back), the machine's cores, the load average
# before and after (`uptime`), the wall time and the exit status. The command's own output goes
# to the terminal as usual, and its exit status is this script's.
#
#   docs/results/timed.sh LOG COMMAND [ARGS...]
#   docs/results/timed.sh docs/results/layerdrop/log.txt dropout-lab run studies/layerdrop.yaml
set -u
if [ "$#" -lt 2 ]; then
  echo "usage: $0 LOG COMMAND [ARGS...]" >&2
  exit 2
fi
log=$1
shift
mkdir -p "$(dirname "$log")"
{
  printf '$'
  printf ' %q' "$@"
  printf '\n'
  printf 'started  %s on %s cores; uptime:%s\n' "$(date '+%F %T')" "$(nproc)" "$(uptime)"
} >>"$log"
start=$(date +%s.%N)
"$@"
status=$?
end=$(date +%s.%N)
wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
{
  printf 'finished %s; uptime:%s\n' "$(date '+%F %T')" "$(uptime)"
  printf 'wall %s s, exit status %d\n\n' "$wall" "$status"
} >>"$log"
exit "$status"
