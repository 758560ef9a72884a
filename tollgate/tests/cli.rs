//! The binary as a shell sees it.

use std::process::{Command, Stdio};

/// A reader that stops early (`| head -1`, `| grep -q`) ends the output quietly: exit 0,
/// no panic on stderr, so `set -o pipefail` scripts see the reader's verdict.
#[test]
fn a_closed_pipe_is_not_a_panic() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("default-config")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The read end closes before the child (still starting) writes a byte, so its first
    // write meets a pipe without a reader.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
