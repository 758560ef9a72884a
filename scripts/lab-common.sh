# The helpers the namespace labs share (pppoe-lab.sh, ipoe-lab.sh, ipv6-lab.sh,
# l2tpns-lab.sh). Sourced after the lab sets LAB (its name, for errors), TG_BIN and SOCK.
# shellcheck shell=bash

log() { printf '%s\n' "$*"; }
die() {
    printf '%s: %s\n' "$LAB" "$*" >&2
    exit 1
}
pass() { log "PASS: $*"; }
fail() {
    FAILED=$((FAILED + 1))
    log "FAIL: $*"
}
nsx() {
    local ns=$1
    shift
    ip netns exec "$ns" "$@"
}
ctl() { "$TG_BIN" ctl --socket "$SOCK" --json "$@"; }

# wait_for SECONDS CMD...: retries CMD every 0.1 s until it succeeds or time is up.
wait_for() {
    local until=$((SECONDS + $1))
    shift
    while ((SECONDS < until)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    "$@"
}
