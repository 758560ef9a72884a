//! What a newcomer meets first, checked: `tollgate run` without a config outside the lab,
//! sizes the machine cannot hold, where state lives, the README against the Makefile and
//! the default config, and tests that say when they did not run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tollgate_control::config::{Config, DEFAULT_CONFIG};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn tollgate(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn run_without_a_config_outside_the_lab_says_the_default_is_the_labs() {
    assert!(
        !Path::new("/sys/class/net/acc0").exists(),
        "this namespace has an interface acc0: the test needs one without"
    );
    let (code, _, err) = tollgate(&["run"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(
            "opening the access port: interface acc0 not found: No such device (os error 19)"
        ),
        "{err}"
    );
    assert_eq!(
        err.matches("os error").count(),
        1,
        "the OS error once: {err}"
    );
    assert!(
        err.contains("embedded default, which is the lab's"),
        "{err}"
    );
    assert!(err.contains("sudo make run"), "{err}");
    assert!(err.contains("--config"), "{err}");
}

#[test]
fn sizes_the_machine_cannot_hold_are_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let base = format!(
        "[control]\nsocket = \"{d}/ctl.sock\"\n[access]\nbackend = \"memory\"\naddress = \"10.10.0.1/24\"\n[core]\nbackend = \"memory\"\naddress = \"192.0.2.1/24\"\n[aaa]\nstore = \"{d}/s.db\"\nspool = \"{d}/a.db\"\n"
    );
    let write = |name: &str, extra: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, format!("{base}{extra}")).unwrap();
        p
    };
    // Beyond the bounds: check-config says so, with the key and the line.
    let big = write("big.toml", "[subscribers]\nmax_sessions = 100000000\n");
    let (code, _, err) = tollgate(&["check-config", big.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("line 13: key `subscribers.max_sessions`: 100000000 sessions per worker"),
        "{err}"
    );
    // Within the bounds but more than any machine has (256 workers): run refuses before
    // allocating, naming the key that takes the most.
    let huge = write(
        "huge.toml",
        "[engine]\nworkers = 256\n[subscribers]\nmax_sessions = 16777216\nmax_flows = 67108864\n",
    );
    let (code, _, err) = tollgate(&["check-config", huge.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let t = Instant::now();
    let (code, _, err) = tollgate(&["run", "--config", huge.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{err}");
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert!(err.contains("the configured tables need"), "{err}");
    assert!(err.contains("`subscribers.max_flows` = 67108864"), "{err}");
    assert!(!err.contains("memory allocation"), "{err}");
    assert!(!dir.path().join("ctl.sock").exists(), "nothing started");
}

#[test]
fn the_lab_keeps_its_state_apart_from_other_configs() {
    let lab = Config::embedded();
    let other = Config::parse(
        "[access]\nbackend = \"memory\"\naddress = \"10.10.0.1/24\"\n[core]\nbackend = \"memory\"\naddress = \"192.0.2.1/24\"\n",
        "other",
    )
    .unwrap();
    let lab_paths = [
        &lab.aaa.store,
        &lab.aaa.spool,
        &lab.subscribers.session_log,
        &lab.subscribers.flow_records,
    ];
    for p in lab_paths {
        assert!(
            p.starts_with("/var/lib/tollgate/lab") || p.starts_with("/var/log/tollgate/lab"),
            "{}: the lab's state in the lab's own directory",
            p.display()
        );
    }
    for p in [&other.aaa.store, &other.aaa.spool] {
        assert!(!lab_paths.contains(&p), "{} is shared", p.display());
    }
    // The README says where state lives, for both.
    let readme = read("README.md");
    let table = &readme[readme.find("## Where state lives").expect("the section")..];
    for p in lab_paths
        .iter()
        .chain([&&other.aaa.store, &&other.aaa.spool])
    {
        assert!(
            table.contains(&format!("`{}`", p.display())),
            "README does not say {}",
            p.display()
        );
    }
    // The lab test moves every state path into its throwaway directory.
    let lab_sh = read("scripts/lab.sh");
    assert!(
        lab_sh.contains("s#/var/lib/tollgate/lab/#$RUNDIR/#"),
        "lab.sh"
    );
    assert!(
        lab_sh.contains("s#/var/log/tollgate/lab/#$RUNDIR/records/#"),
        "lab.sh"
    );
}

/// `DEB_PACKAGES := ...` of the Makefile, continuation lines joined.
fn makefile_list(makefile: &str, var: &str) -> Vec<String> {
    let start = makefile
        .find(&format!("{var} :="))
        .unwrap_or_else(|| panic!("{var} in the Makefile"));
    let mut words = Vec::new();
    for line in makefile[start..].lines() {
        let body = line.trim_start_matches(&format!("{var} :=")).trim();
        let cont = body.ends_with('\\');
        words.extend(
            body.trim_end_matches('\\')
                .split_whitespace()
                .map(str::to_string),
        );
        if !cont {
            break;
        }
    }
    words
}

#[test]
fn the_readme_lists_what_make_deps_installs_and_does() {
    let makefile = read("Makefile");
    let readme = read("README.md");
    let packages = makefile_list(&makefile, "DEB_PACKAGES");
    for must in [
        "libdpdk-dev",
        "dpdk",
        "clang",
        "pkg-config",
        "procps",
        "iputils-ping",
    ] {
        assert!(packages.iter().any(|p| p == must), "{must} in DEB_PACKAGES");
    }
    let at = readme
        .find("(`DEB_PACKAGES` in the Makefile)")
        .expect("README names DEB_PACKAGES");
    let block = readme[at..]
        .split("```")
        .nth(1)
        .expect("a code block after it");
    let listed: Vec<String> = block.split_whitespace().map(str::to_string).collect();
    assert_eq!(
        listed, packages,
        "README's package list against the Makefile's"
    );
    // It says that it disables the system FreeRADIUS, xl2tpd, l2tpns, Kea and PostgreSQL, as
    // deps does.
    assert!(
        makefile.contains(
            "for svc in freeradius xl2tpd l2tpns kea-dhcp4-server kea-dhcp6-server postgresql; do"
        ),
        "Makefile"
    );
    assert!(
        makefile.contains("systemctl disable --now $$svc"),
        "Makefile"
    );
    assert!(
        readme.contains(
            "**disables and stops them** (`systemctl disable --now freeradius xl2tpd l2tpns\nkea-dhcp4-server kea-dhcp6-server postgresql`)"
        ),
        "README says deps disables the services"
    );
    // make run says it builds, before it does.
    let run = &makefile[makefile.find("\nrun:").expect("run target")..];
    let run = &run[..run[1..].find("\n\n").unwrap_or(run.len() - 1)];
    let say = run
        .find("building the release binary first")
        .expect("run says it builds");
    let build = run
        .find("$(MAKE) --no-print-directory build")
        .expect("run builds");
    assert!(say < build, "{run}");
    assert!(
        readme.contains("a few minutes the"),
        "README says make run builds for minutes"
    );
}

#[test]
fn the_default_configs_comments_say_what_it_routes() {
    let cfg = Config::embedded();
    let comments: String = DEFAULT_CONFIG
        .lines()
        .filter(|l| l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    for r in &cfg.routes {
        let prefix = format!("{}/{}", r.prefix.network(), r.prefix.len);
        assert!(comments.contains(&prefix), "the comments name {prefix}");
    }
    if !cfg.routes.iter().any(|r| r.prefix.len == 0) {
        assert!(
            comments.contains("There is no default route") && comments.contains("no_route"),
            "the comments say what happens to other destinations"
        );
        assert!(!comments.contains("Anything not on a connected subnet goes"));
    }
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() && !p.ends_with("target") {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn tests_that_need_the_machine_are_ignored_not_passed() {
    let mut files = Vec::new();
    for d in ["control", "dataplane", "ffi", "testkit", "benches"] {
        sources(&repo().join(d), &mut files);
    }
    let me = Path::new(file!()).file_name().unwrap();
    for f in files.iter().filter(|f| f.file_name() != Some(me)) {
        let text = std::fs::read_to_string(f).unwrap();
        // A test that finds its environment missing must not print a note and pass.
        assert!(
            !text.contains("SKIPPED") && !text.contains("skipped: set"),
            "{}: a test prints that it skipped and passes; #[ignore] it with the reason",
            f.display()
        );
    }
    // The AF_PACKET tests that need namespaces are ignored, and netns-test runs them.
    let af = read("dataplane/tests/af_packet.rs");
    for (i, _) in af.match_indices("if !netns_tests_enabled(") {
        let before = &af[..i];
        let test_at = before.rfind("#[test]").unwrap();
        assert!(
            before[test_at..].contains("#[ignore = \"needs root and network namespaces"),
            "a netns test without #[ignore]: {}",
            &af[test_at..i]
        );
    }
    let makefile = read("Makefile");
    assert!(
        makefile.contains("--test af_packet -- --ignored"),
        "netns-test"
    );
    assert!(
        makefile.contains("--test radius --test aaa -- --ignored"),
        "host-test"
    );
    assert!(
        makefile.contains("host-test dpdk-test"),
        "make test runs host-test"
    );
}
