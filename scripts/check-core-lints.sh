#!/usr/bin/env bash
# Proves that control-core/clippy.toml keeps I/O out of the sans-I/O core: a probe crate
# with the same clippy.toml calls each forbidden std API, and clippy must name every one
# of them (and fail). `make lint` runs this after the workspace clippy.
#
#   scripts/check-core-lints.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
probe=$(mktemp -d /tmp/tollgate-core-lint.XXXXXX)
trap 'rm -rf "$probe"' EXIT

mkdir -p "$probe/src"
cp control-core/clippy.toml "$probe/clippy.toml"
cat > "$probe/Cargo.toml" <<'TOML'
[package]
name = "core-lint-probe"
version = "0.0.0"
edition = "2024"
publish = false

[workspace]
TOML
# Each line: an expression, then (after ' => ') the path clippy must name for it.
cases=(
  'let _ = std::time::SystemTime::now(); => std::time::SystemTime::now'
  'let _ = std::time::Instant::now(); => std::time::Instant::now'
  'std::thread::sleep(core::time::Duration::from_millis(1)); => std::thread::sleep'
  'let _ = std::thread::spawn(|| ()); => std::thread::spawn'
  'let _ = std::fs::read("x"); => std::fs::read'
  'let _ = std::fs::write("x", b""); => std::fs::write'
  'let _: Option<std::fs::File> = None; => std::fs::File'
  'let _: Option<std::net::UdpSocket> = None; => std::net::UdpSocket'
  'let _: Option<std::net::TcpStream> = None; => std::net::TcpStream'
  'let _: Option<std::process::Command> = None; => std::process::Command'
  'std::process::exit(0); => std::process::exit'
  'let _ = std::env::var("X"); => std::env::var'
)
{
  echo '#![deny(clippy::disallowed_methods, clippy::disallowed_types)]'
  echo '#![allow(unreachable_code)]'
  i=0
  for c in "${cases[@]}"; do
    echo "pub fn probe_$i() { ${c%% => *} }"
    i=$((i + 1))
  done
} > "$probe/src/lib.rs"

out=$(CARGO_TARGET_DIR="$probe/target" cargo clippy --quiet --manifest-path "$probe/Cargo.toml" 2>&1 || true)
missing=0
for c in "${cases[@]}"; do
  want="${c##* => }"
  if ! grep -qF "\`$want\`" <<<"$out"; then
    echo "check-core-lints: clippy did not flag $want" >&2
    missing=$((missing + 1))
  fi
done
if [ "$missing" -ne 0 ]; then
  echo "$out" >&2
  exit 1
fi
echo "check-core-lints: all ${#cases[@]} forbidden APIs flagged by control-core/clippy.toml"
