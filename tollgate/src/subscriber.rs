//! `tollgate subscriber add|remove|show|list|import`: the local store, offline, on the
//! database file (`--db`, else `[aaa] store` of `--config`, else the default path).
//! Safe while the daemon runs (SQLite WAL, busy timeout).

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use tollgate_control::ctl::proto::{self, Request};

use tollgate_control::config::Config;
use tollgate_control::store::import::{self, Format, Record};
use tollgate_control::store::{ChapSecret, Store, Subscriber, SubscriberView};

/// `tollgate subscriber ...`
#[derive(Args, Debug)]
pub struct SubscriberArgs {
    /// The subscriber database file [default: the store of --config: its [database]
    /// (PostgreSQL) or `[aaa] store`, else /var/lib/tollgate/subscribers.db]
    #[arg(long, env = "TOLLGATE_SUBSCRIBER_DB")]
    pub db: Option<PathBuf>,
    /// Read the store (its path, or [database]) from this config file.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Print JSON, for scripts.
    #[arg(long)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: SubscriberCmd,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum SubscriberCmd {
    /// Add a subscriber (or replace one with --replace).
    Add(Box<AddArgs>),
    /// Remove a subscriber with its identifiers and services.
    Remove {
        /// User id.
        user: String,
    },
    /// Show one subscriber.
    Show {
        /// User id.
        user: String,
    },
    /// List every subscriber.
    List,
    /// Import subscribers from a TOML or CSV file (formats in docs/aaa.md): all or none.
    Import {
        /// The file.
        file: PathBuf,
        /// The format [default: from the extension]
        #[arg(long)]
        format: Option<FileFormat>,
        /// Replace subscribers that exist instead of refusing.
        #[arg(long)]
        replace: bool,
    },
}

/// `--format`
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum FileFormat {
    /// `[[subscriber]]` tables.
    Toml,
    /// Header row and one row per subscriber.
    Csv,
}

/// `tollgate subscriber add`
#[derive(Args, Debug)]
pub struct AddArgs {
    /// User id (RADIUS User-Name).
    pub user: String,
    /// Password (prefer --password-stdin: arguments show in `ps`).
    #[arg(long)]
    pub password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long, conflicts_with = "password")]
    pub password_stdin: bool,
    /// CHAP secret, for PPP clients that authenticate by CHAP (stored apart, in
    /// `<store>.chap`, mode 0600; prefer --chap-secret-stdin).
    #[arg(long)]
    pub chap_secret: Option<String>,
    /// Read the CHAP secret from the first line of standard input.
    #[arg(long, conflicts_with_all = ["chap_secret", "password_stdin"])]
    pub chap_secret_stdin: bool,
    /// A MAC identifying the subscriber; repeat for several.
    #[arg(long)]
    pub mac: Vec<String>,
    /// A mobile id identifying the subscriber; repeat for several.
    #[arg(long)]
    pub mobile_id: Vec<String>,
    /// A fixed IPv4 address identifying the subscriber; repeat for several.
    #[arg(long)]
    pub ip: Vec<String>,
    /// An allowed service; repeat for several.
    #[arg(long)]
    pub service: Vec<String>,
    /// Billing account.
    #[arg(long)]
    pub billing_account: Option<String>,
    /// Declared bandwidth from the subscriber, bit/s.
    #[arg(long)]
    pub bandwidth_up: Option<u64>,
    /// Declared bandwidth to the subscriber, bit/s.
    #[arg(long)]
    pub bandwidth_down: Option<u64>,
    /// A fixed address to give the subscriber.
    #[arg(long)]
    pub framed_ip: Option<String>,
    /// Seconds between accounting Interim-Updates.
    #[arg(long)]
    pub interim_interval: Option<u32>,
    /// A: maximum session time, seconds.
    #[arg(long)]
    pub session_time: Option<u32>,
    /// B: idle time, seconds.
    #[arg(long)]
    pub idle_time: Option<u32>,
    /// B: count idle time only towards this server.
    #[arg(long)]
    pub idle_server: Option<String>,
    /// C: octets both ways.
    #[arg(long)]
    pub volume_bytes: Option<u64>,
    /// C: octets from the subscriber.
    #[arg(long)]
    pub volume_bytes_up: Option<u64>,
    /// C: octets to the subscriber.
    #[arg(long)]
    pub volume_bytes_down: Option<u64>,
    /// C: packets from the subscriber.
    #[arg(long)]
    pub volume_packets_up: Option<u64>,
    /// C: packets to the subscriber.
    #[arg(long)]
    pub volume_packets_down: Option<u64>,
    /// D: simultaneous logins allowed.
    #[arg(long)]
    pub max_logins: Option<u32>,
    /// D: which login goes when one too many arrives: earliest or order.
    #[arg(long)]
    pub login_victim: Option<String>,
    /// D: this subscriber's order value (highest goes first).
    #[arg(long)]
    pub login_order: Option<u32>,
    /// E: rate limit, percent of the path's maximum.
    #[arg(long)]
    pub rate_ratio: Option<u32>,
    /// E: window for the rate, seconds.
    #[arg(long)]
    pub rate_window: Option<u32>,
    /// F: the application's idle timeout, seconds.
    #[arg(long)]
    pub app_timeout: Option<u32>,
    /// Replace the subscriber if it exists.
    #[arg(long)]
    pub replace: bool,
}

fn fail(msg: &str, code: u8) -> ExitCode {
    eprintln!("tollgate: {msg}");
    ExitCode::from(code)
}

/// Runs `tollgate subscriber ...`.
pub fn run(args: SubscriberArgs) -> ExitCode {
    // --db names a file; without it the config's store: [database] (PostgreSQL) or
    // [aaa] store.
    let (db, cluster) = match (&args.db, &args.config) {
        (Some(d), _) => (d.clone(), None),
        (None, Some(c)) => match Config::load(c) {
            Ok(cfg) => (cfg.aaa.store, cfg.database),
            Err(e) => return fail(&e.to_string(), 2),
        },
        (None, None) => (
            tollgate_control::config::aaa::AaaConfig::default().store,
            None,
        ),
    };
    let opened = match &cluster {
        Some(cluster) => Store::open_postgres(cluster).map_err(|e| e.to_string()),
        None => Store::open(&db).map_err(|e| format!("{}: {e}", db.display())),
    };
    let mut store = match opened {
        Ok(s) => s,
        Err(e) => return fail(&e, 1),
    };
    match args.command {
        SubscriberCmd::Add(a) => add(&mut store, *a),
        SubscriberCmd::Remove { user } => match store.remove(&user) {
            Ok(()) => {
                println!("removed {user}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e.to_string(), 1),
        },
        SubscriberCmd::Show { user } => match store.get(&user) {
            Ok(Some(s)) => {
                let v = SubscriberView::from(&s);
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                } else {
                    print!("{}", render(&v));
                }
                ExitCode::SUCCESS
            }
            Ok(None) => fail(&format!("no subscriber {user:?}"), 1),
            Err(e) => fail(&e.to_string(), 1),
        },
        SubscriberCmd::List => match store.list() {
            Ok(list) => {
                let views: Vec<SubscriberView> = list.iter().map(SubscriberView::from).collect();
                if args.json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&views).unwrap_or_default()
                    );
                } else {
                    println!(
                        "{:<24} {:<9} {:<40} services",
                        "user", "password", "identifiers"
                    );
                    for v in &views {
                        println!(
                            "{:<24} {:<9} {:<40} {}",
                            v.user_id,
                            if v.has_password { "set" } else { "-" },
                            v.identifiers.join(", "),
                            v.authorization.services.join(",")
                        );
                    }
                    println!("{} subscriber(s)", views.len());
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e.to_string(), 1),
        },
        SubscriberCmd::Import {
            file,
            format,
            replace,
        } => {
            let format = format.map(|f| match f {
                FileFormat::Toml => Format::Toml,
                FileFormat::Csv => Format::Csv,
            });
            match import::import_file(&mut store, &file, format, replace) {
                Ok(s) => {
                    println!(
                        "imported {}: {} added, {} replaced",
                        file.display(),
                        s.added,
                        s.replaced
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.to_string(), 1),
            }
        }
    }
}

/// The first line of standard input, without its line end.
pub fn read_password() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("reading the password: {e}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// `tollgate ctl subscriber ...`: the request for the daemon, which changes its store
/// on its store thread (same records and checks as the offline command).
pub fn ctl_request(cmd: SubscriberCmd) -> Result<Request, String> {
    Ok(match cmd {
        SubscriberCmd::Add(a) => {
            let replace = a.replace;
            let record = record(*a)?;
            Request::SubscriberAdd(proto::SubscriberAdd { record, replace })
        }
        SubscriberCmd::Remove { user } => Request::SubscriberRemove(proto::UserArg { user }),
        SubscriberCmd::Show { user } => Request::SubscriberShow(proto::UserArg { user }),
        SubscriberCmd::List => Request::SubscriberList,
        SubscriberCmd::Import {
            file,
            format,
            replace,
        } => {
            let text =
                std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let format = format.map(|f| match f {
                FileFormat::Toml => "toml".to_string(),
                FileFormat::Csv => "csv".to_string(),
            });
            Request::SubscriberImport(proto::SubscriberImport {
                text,
                file: file.display().to_string(),
                format,
                replace,
            })
        }
    })
}

/// The record an `add` describes, as the JSON an import file would hold.
fn record(a: AddArgs) -> Result<serde_json::Value, String> {
    let password = if a.password_stdin {
        Some(read_password()?)
    } else {
        a.password
    };
    let chap_secret = if a.chap_secret_stdin {
        Some(read_password()?)
    } else {
        a.chap_secret
    };
    Ok(serde_json::json!({
        "user_id": a.user, "password": password, "chap_secret": chap_secret, "mac": a.mac, "mobile_id": a.mobile_id,
        "ip": a.ip, "services": a.service, "billing_account": a.billing_account,
        "bandwidth_up": a.bandwidth_up, "bandwidth_down": a.bandwidth_down,
        "framed_ip": a.framed_ip, "interim_interval_s": a.interim_interval,
        "session_time_s": a.session_time, "idle_time_s": a.idle_time,
        "idle_server": a.idle_server, "volume_bytes": a.volume_bytes,
        "volume_bytes_up": a.volume_bytes_up, "volume_bytes_down": a.volume_bytes_down,
        "volume_packets_up": a.volume_packets_up, "volume_packets_down": a.volume_packets_down,
        "max_logins": a.max_logins, "login_victim": a.login_victim,
        "login_order": a.login_order, "rate_ratio_percent": a.rate_ratio,
        "rate_window_s": a.rate_window, "app_timeout_s": a.app_timeout,
    }))
}

fn add(store: &mut Store, a: AddArgs) -> ExitCode {
    let password = if a.password_stdin {
        match read_password() {
            Ok(p) => Some(p),
            Err(e) => return fail(&e, 1),
        }
    } else {
        a.password
    };
    let chap_secret = if a.chap_secret_stdin {
        match read_password() {
            Ok(p) => Some(p),
            Err(e) => return fail(&e, 1),
        }
    } else {
        a.chap_secret
    };
    let r = Record {
        user_id: a.user.clone(),
        password,
        password_hash: None,
        chap_secret: chap_secret.map(|c| ChapSecret(c.into_bytes())),
        mac: a.mac,
        mobile_id: a.mobile_id,
        ip: a.ip,
        services: a.service,
        billing_account: a.billing_account,
        bandwidth_up: a.bandwidth_up,
        bandwidth_down: a.bandwidth_down,
        framed_ip: a.framed_ip,
        interim_interval_s: a.interim_interval,
        session_time_s: a.session_time,
        idle_time_s: a.idle_time,
        idle_server: a.idle_server,
        volume_bytes: a.volume_bytes,
        volume_bytes_up: a.volume_bytes_up,
        volume_bytes_down: a.volume_bytes_down,
        volume_packets_up: a.volume_packets_up,
        volume_packets_down: a.volume_packets_down,
        max_logins: a.max_logins,
        login_victim: a.login_victim,
        login_order: a.login_order,
        rate_ratio_percent: a.rate_ratio,
        rate_window_s: a.rate_window,
        app_timeout_s: a.app_timeout,
    };
    let s: Subscriber = match r.to_subscriber(store.password_cost()) {
        Ok(s) => s,
        Err((field, m)) => return fail(&format!("--{}: {m}", cli_flag(&field)), 2),
    };
    let result = if a.replace && matches!(store.get(&s.user_id), Ok(Some(_))) {
        store.update(&s).map(|()| "replaced")
    } else {
        store.add(&s).map(|()| "added")
    };
    match result {
        Ok(what) => {
            println!("{what} {}", s.user_id);
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string(), 1),
    }
}

/// The command-line flag for a record field.
fn cli_flag(field: &str) -> String {
    let f = match field {
        "services" => "service",
        "interim_interval_s" => "interim-interval",
        "session_time_s" => "session-time",
        "idle_time_s" => "idle-time",
        "rate_ratio_percent" => "rate-ratio",
        "rate_window_s" => "rate-window",
        "app_timeout_s" => "app-timeout",
        other => other,
    };
    f.replace('_', "-")
}

fn render(v: &SubscriberView) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let a = &v.authorization;
    let c = &a.conditions;
    let opt = |x: Option<String>| x.unwrap_or_else(|| "-".into());
    let _ = writeln!(o, "user            {}", v.user_id);
    let _ = writeln!(
        o,
        "password        {}",
        if v.has_password { "set" } else { "none" }
    );
    let _ = writeln!(
        o,
        "chap secret     {}",
        if v.has_chap_secret { "set" } else { "none" }
    );
    let _ = writeln!(
        o,
        "identifiers     {}",
        if v.identifiers.is_empty() {
            "-".into()
        } else {
            v.identifiers.join(", ")
        }
    );
    let _ = writeln!(
        o,
        "services        {}",
        if a.services.is_empty() {
            "-".into()
        } else {
            a.services.join(", ")
        }
    );
    let _ = writeln!(o, "billing account {}", opt(a.billing_account.clone()));
    let _ = writeln!(
        o,
        "bandwidth       up {} bit/s, down {} bit/s",
        opt(a.bandwidth_up.map(|x| x.to_string())),
        opt(a.bandwidth_down.map(|x| x.to_string()))
    );
    let _ = writeln!(
        o,
        "framed ip       {}",
        opt(a.framed_ip.map(|x| x.to_string()))
    );
    let _ = writeln!(
        o,
        "interim         {}",
        opt(a.interim_interval_s.map(|x| format!("{x} s")))
    );
    let _ = writeln!(o, "disconnect when:");
    let _ = writeln!(
        o,
        "  A session time  {}",
        opt(c.session_time_s.map(|x| format!("{x} s")))
    );
    let _ = writeln!(
        o,
        "  B idle time     {}{}",
        opt(c.idle_time_s.map(|x| format!("{x} s"))),
        c.idle_server
            .map(|s| format!(" (towards {s})"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        o,
        "  C volume        bytes {} (up {}, down {}), packets up {}, down {}",
        opt(c.volume_bytes.map(|x| x.to_string())),
        opt(c.volume_bytes_up.map(|x| x.to_string())),
        opt(c.volume_bytes_down.map(|x| x.to_string())),
        opt(c.volume_packets_up.map(|x| x.to_string())),
        opt(c.volume_packets_down.map(|x| x.to_string()))
    );
    let _ = writeln!(
        o,
        "  D logins        max {}, victim {}{}",
        opt(c.max_logins.map(|x| x.to_string())),
        c.login_victim.name(),
        c.login_order
            .map(|x| format!(", order {x}"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        o,
        "  E rate          {}",
        match (c.rate_ratio_percent, c.rate_window_s) {
            (Some(r), Some(w)) => format!("{r}% over {w} s"),
            _ => "-".into(),
        }
    );
    let _ = writeln!(
        o,
        "  F app timeout   {}",
        opt(c.app_timeout_s.map(|x| format!("{x} s")))
    );
    o
}
