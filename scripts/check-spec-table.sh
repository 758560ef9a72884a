#!/usr/bin/env bash
# Keeps docs/architecture.md's "Where each SPEC id lives" true: every path a row of its
# table names (`dir/` or `dir/file`, relative to the repo) must exist, and where the
# project's shared/SPEC.md lies beside the repo (../shared, as in a checkout and in CI),
# every SPEC id in it must have a row. It first proves that it fails on a probe table
# with a missing path and a missing id. `make lint` runs it.
#
#   scripts/check-spec-table.sh [DOC] [SPEC]
set -euo pipefail
cd "$(dirname "$0")/.."

# check DOC SPEC: prints one line per problem; fails if there is one.
check() {
  local doc=$1 spec=$2 rows bad=0 p id
  rows=$(awk '/^## Where each SPEC id lives/ {on = 1; next} on && /^## / {exit} on && /^\|/' "$doc")
  if [ -z "$rows" ]; then
    echo "$doc: no table under '## Where each SPEC id lives'"
    return 1
  fi
  while read -r p; do
    [ -e "$p" ] || { echo "$doc: the SPEC table names $p, which does not exist"; bad=1; }
  done < <(grep -oE '`[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]*`' <<<"$rows" | tr -d '`' | sort -u)
  if [ -f "$spec" ]; then
    while read -r id; do
      grep -qE "^\| *$id *\|" <<<"$rows" || { echo "$doc: $id ($spec) has no row in the SPEC table"; bad=1; }
    done < <(grep -oE '^- [A-Z]+-[0-9]+' "$spec" | cut -c3- | sort -u)
  fi
  return $bad
}

# The probe: a table with a path that is not there and a SPEC without its row.
probe=$(mktemp -d /tmp/tollgate-spec-table.XXXXXX)
trap 'rm -rf "$probe"' EXIT
printf '## Where each SPEC id lives\n\n| SPEC | rules |\n|---|---|\n| X-1 | `control/src/no_such_module.rs`, `control/src/router.rs` |\n' > "$probe/doc.md"
printf -- '- X-1 one\n- X-2 two\n' > "$probe/SPEC.md"
out=$(check "$probe/doc.md" "$probe/SPEC.md" || true)
if ! grep -q 'no_such_module.rs, which does not exist' <<<"$out" || ! grep -q 'X-2 .* has no row' <<<"$out" \
   || grep -q 'router.rs' <<<"$out"; then
  echo "check-spec-table: the probe was not caught as expected:" >&2
  echo "$out" >&2
  exit 1
fi

doc=${1:-docs/architecture.md}
spec=${2:-../shared/SPEC.md}
[ -f "$spec" ] || echo "check-spec-table: $spec not found; checking the paths only"
if ! check "$doc" "$spec"; then
  echo "check-spec-table: fix the table in $doc (see above)" >&2
  exit 1
fi
echo "check-spec-table: every path in the SPEC table of $doc exists$([ -f "$spec" ] && echo ", every SPEC id has a row")"
