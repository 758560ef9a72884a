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

/// `tollgate ctl --json ARGS`: (exit code, standard output as JSON, standard error).
fn ctl_json(args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("ctl")
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout:?}"));
    (
        out.status.code().unwrap(),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Issue 13 item 2: a command line `ctl --json` refuses before anything is sent (clap's
/// usage errors, a value the typed request cannot hold) is JSON on standard output too,
/// exit status 2, the same words on standard error; help is no failure.
#[test]
fn usage_errors_under_json_are_json_too() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-daemon.sock");
    let missing = missing.to_str().unwrap();
    for (args, says) in [
        (&["--socket", missing, "show", "sesions"][..], "sesions"),
        (&["--socket", missing, "show"][..], "incomplete command"),
        (
            &["--socket", missing, "lb", "set", "02:aa:00:00:00:01"][..],
            "<STATE>",
        ),
        (
            &["--socket", missing, "show", "tunnel", "x"][..],
            "invalid value 'x'",
        ),
        (
            &[
                "--socket",
                missing,
                "session",
                "add",
                "--user",
                "a",
                "--address",
                "10.10.0.9",
                "--up",
                "10X",
            ][..],
            "--up: \"10X\" is not a rate",
        ),
        (
            &["--socket", missing, "session", "login", "--mac", "02:zz"][..],
            "--mac",
        ),
    ] {
        let (code, v, err) = ctl_json(args);
        assert_eq!(code, 2, "{args:?}: {v} {err}");
        assert_eq!(v["ok"], false, "{args:?}: {v}");
        let e = v["error"].as_str().unwrap();
        assert!(e.contains(says), "{args:?}: {e}");
        assert!(!err.is_empty(), "{args:?}: standard error says it too");
    }
    // Help is not an error: it prints as usual.
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["ctl", "--json", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: tollgate ctl"));
}

/// Issue 13 item 2: with `--json`, a failure is JSON on standard output too, in the
/// socket's error shape, whether the client could not reach the daemon, the request was
/// bad, or the daemon answered an error; standard error and the exit status are as
/// without `--json`.
#[test]
fn json_errors_are_json() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-daemon.sock");
    let missing = missing.to_str().unwrap();

    for args in [
        &["--socket", missing, "show", "status"][..],
        &["--socket", missing, "billing", "status"][..],
    ] {
        let (code, v, err) = ctl_json(args);
        assert_eq!(code, 1, "{args:?}");
        assert_eq!(v["ok"], false, "{v}");
        let e = v["error"].as_str().unwrap();
        assert!(e.starts_with("cannot connect to "), "{e}");
        assert!(err.contains(e), "standard error says it too: {err}");
    }

    let (code, v, _) = ctl_json(&["--socket", missing, "raw", "not json"]);
    assert_eq!(code, 2);
    assert_eq!(v["ok"], false);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("malformed request"),
        "{v}"
    );

    // A daemon's error reply comes out as the daemon said it.
    let sock = dir.path().join("ctl.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let server = std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Write};
        let (s, _) = listener.accept().unwrap();
        let mut line = String::new();
        BufReader::new(&s).read_line(&mut line).unwrap();
        let mut s = s;
        writeln!(s, r#"{{"ok":false,"error":"no session 10.10.0.99"}}"#).unwrap();
        line
    });
    let (code, v, _) = ctl_json(&["--socket", sock.to_str().unwrap(), "show", "status"]);
    assert_eq!(server.join().unwrap().trim(), r#"{"cmd":"show status"}"#);
    assert_eq!(code, 1);
    assert_eq!(
        v,
        serde_json::json!({"ok": false, "error": "no session 10.10.0.99"})
    );
}

/// Issue 17 item 6: the scaling curve runs on a machine without a Rust toolchain, from
/// the release binary and scripts/scale.sh copied into one directory: no cargo, no
/// python on PATH, the binary found beside the script; counts come out in order, each
/// with the interleaved runs asked for.
#[test]
fn scale_sh_runs_from_a_copied_binary() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("tollgate");
    let script = dir.path().join("scale.sh");
    std::fs::copy(env!("CARGO_BIN_EXE_tollgate"), &bin).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/scale.sh"),
        &script,
    )
    .unwrap();
    // Only the shell's basic tools: bash, dirname, nproc.
    let tools = dir.path().join("tools");
    std::fs::create_dir(&tools).unwrap();
    for t in ["bash", "dirname", "nproc"] {
        let found = ["/usr/bin", "/bin"]
            .iter()
            .map(|d| std::path::Path::new(d).join(t))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{t} not found"));
        std::os::unix::fs::symlink(found, tools.join(t)).unwrap();
    }
    let json = dir.path().join("scale.json");
    let out = Command::new(tools.join("bash"))
        .arg(&script)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", &tools)
        .env("WORKERS", "1,2")
        .env("OVERSUBSCRIBE", "1")
        .env("FLOWS", "1k")
        .env("RUNS", "3")
        .env("RUN_SECONDS", "0.05")
        .env("OUT", &json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("efficiency (min-max)"), "{stdout}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let rows = r["results"].as_array().expect("results");
    let counts: Vec<u64> = rows
        .iter()
        .map(|w| w["workers"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [1, 2], "{r}");
    for w in rows {
        assert_eq!(w["runs_mpps"].as_array().unwrap().len(), 3, "{w}");
        assert!(w["mpps"].as_f64().unwrap() > 0.0, "{w}");
    }
    assert_eq!(rows[0]["efficiency"], 1.0);
}

/// Issue 14: the offline `subscriber add` stores a CHAP secret read from standard input
/// (so it never shows in `ps`), and `subscriber show` says it is set without printing it.
#[test]
fn subscriber_add_takes_a_chap_secret_from_stdin() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("subscribers.db");
    let db = db.to_str().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args([
            "subscriber",
            "--db",
            db,
            "add",
            "dana",
            "--chap-secret-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"d4na-secret\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "added dana\n");
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["subscriber", "--db", db, "show", "dana"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("chap secret     set\n"), "{text}");
    assert!(text.contains("password        none\n"), "{text}");
    assert!(!text.contains("d4na-secret"), "{text}");
    // The secret is in the 0600 file beside the store, not in the store itself.
    let chap = std::fs::read(format!("{db}.chap")).unwrap();
    assert!(chap.windows(11).any(|w| w == b"d4na-secret"));
    assert!(
        !std::fs::read(db)
            .unwrap()
            .windows(11)
            .any(|w| w == b"d4na-secret")
    );
    // Both secrets cannot come from standard input.
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args([
            "subscriber",
            "--db",
            db,
            "add",
            "erin",
            "--password-stdin",
            "--chap-secret-stdin",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
