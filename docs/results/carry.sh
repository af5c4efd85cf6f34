#!/usr/bin/env bash
# Carry an unfinished study's stores from one working session to the next, through the
# repository, on machines whose mlruns/ does not survive between sessions.
#
#   docs/results/carry.sh save HOME ARCHIVE      # after stopping the study's processes
#   docs/results/carry.sh restore HOME ARCHIVE   # before running the same commands again
#
# save packs HOME (the study's --home) into ARCHIVE: the Optuna and MLflow stores and the
# artifacts a continuation needs, among them the last checkpoint (checkpoint/last.pt) of each
# trial that was running, so that its retry resumes from there. Left out: best checkpoints and
# logged models of finished trials (a results page of the study needs their metrics, not their
# weights), reports and their logged pages (made again) and lock files. restore unpacks it in
# HOME's place; running the study's commands again then fails the killed trials (no heartbeat)
# and retries them.
set -euo pipefail
if [ "$#" -ne 3 ] || { [ "$1" != save ] && [ "$1" != restore ]; }; then
  echo "usage: $0 save|restore HOME ARCHIVE" >&2
  exit 2
fi
action=$1 home=${2%/} archive=$3
parent=$(dirname "$home") name=$(basename "$home")
if [ "$action" = save ]; then
  if pgrep -f -- "--home $home( |$)" >/dev/null; then
    echo "$0: a process still uses $home: stop it first" >&2
    exit 2
  fi
  mkdir -p "$(dirname "$archive")"
  tar -czf "$archive" -C "$parent" --exclude='*/best.pt' --exclude='*/models/*' \
    --exclude="$name/reports" --exclude='*/report.html' --exclude='*.lock' "$name"
  echo "saved $home to $archive ($(du -h "$archive" | cut -f1))"
else
  if [ -e "$home" ]; then
    echo "$0: $home exists: move it away first" >&2
    exit 2
  fi
  mkdir -p "$parent"
  unpacked=$(mktemp -d "$parent/.carry.XXXXXX")
  tar -xzf "$archive" -C "$unpacked"
  mv "$unpacked"/* "$home"
  rmdir "$unpacked"
  echo "restored $home from $archive"
fi
