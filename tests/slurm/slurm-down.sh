#!/usr/bin/env bash
# Stops what slurm-up.sh started (by PID) and removes its state. usage: slurm-down.sh STATE_DIR
STATE=$(realpath -m "$1")
stop() {
  [ -s "$1" ] || return 0
  local pid; pid=$(cat "$1")
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null; true
}
stop "$STATE"/slurmd.bgpid
stop "$STATE"/slurmctld.bgpid
stop "$STATE"/munged.pid
rm -rf "$STATE"
