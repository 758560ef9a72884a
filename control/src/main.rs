//! `tollgate`: the subscriber gateway.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use tollgate_control::config::{Config, DEFAULT_CONFIG};
use tollgate_control::ctl::{client, proto::Request, render};
use tollgate_control::replay::{ReplayFiles, replay};
use tollgate_control::{ctl, engine};

/// Tollgate: a userspace poll-mode subscriber gateway.
///
/// Start with `make run` (the lab), or `tollgate run --config FILE`; inspect a running
/// gateway with `tollgate ctl show status`. docs/config.md lists every config key and
/// docs/ctl.md every control command.
#[derive(Parser, Debug)]
#[command(name = "tollgate", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the gateway in the foreground until SIGINT or SIGTERM.
    Run {
        /// Config file; without it the embedded default (the lab) is used.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Validate a config file without starting anything; errors name the key and line.
    CheckConfig {
        /// The config file.
        file: PathBuf,
    },
    /// Print the embedded default config (a starting point for your own).
    DefaultConfig,
    /// Run the pipeline over capture files, the capture timestamps being the clock, and
    /// print the counters.
    Replay {
        /// Config file (ports' backends are ignored: both sides read and write pcap).
        #[arg(long, short)]
        config: PathBuf,
        /// Frames arriving on the access port (pcap or pcapng, Ethernet).
        #[arg(long)]
        access_in: PathBuf,
        /// Frames arriving on the core port.
        #[arg(long)]
        core_in: Option<PathBuf>,
        /// Where frames sent on the access port are written (pcap, nanosecond stamps).
        #[arg(long)]
        access_out: PathBuf,
        /// Where frames sent on the core port are written.
        #[arg(long)]
        core_out: PathBuf,
        /// Keep the clock running this long after the last frame, so timers fire.
        #[arg(long, default_value_t = 0)]
        linger_ms: u64,
        /// Print the counters as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Talk to a running gateway over its control socket.
    #[command(disable_help_subcommand = true)]
    Ctl {
        /// Control socket [default: control.socket of --config, else /run/tollgate/ctl.sock]
        #[arg(long, env = "TOLLGATE_SOCKET")]
        socket: Option<PathBuf>,
        /// Read the socket path from this config file.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Print the answer as JSON, for scripts.
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        command: CtlCmd,
    },
    /// Manage the local subscriber store offline (add, remove, show, list, import).
    Subscriber(tollgate_control::store::cli::SubscriberArgs),
}

#[derive(Subcommand, Debug)]
enum CtlCmd {
    /// Show state and counters.
    Show {
        /// What to show.
        what: ShowWhat,
    },
    /// List the commands the daemon knows.
    Help,
    /// Send a raw JSON request line, e.g. '{"cmd":"show status"}'.
    Raw {
        /// The request.
        json: String,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum ShowWhat {
    /// Version, uptime, config, totals.
    Status,
    /// Per port: backend, MAC, address, packets, bytes.
    Ports,
    /// Per worker: core, polls, busy share, packets, drops.
    Workers,
    /// Packets per side, drops by reason, engine and control counters.
    Counters,
    /// The neighbour (ARP) table.
    Neighbors,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Run { config } => {
            let (cfg, name) = match load(config) {
                Ok(c) => c,
                Err(e) => return fail(&e, 2),
            };
            init_logging(&cfg.log.level);
            match engine::run(&cfg, &name) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&format!("{e:#}"), 1),
            }
        }
        Cmd::CheckConfig { file } => match Config::load(&file) {
            Ok(_) => {
                println!("{}: ok", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e.to_string(), 2),
        },
        Cmd::DefaultConfig => {
            print!("{DEFAULT_CONFIG}");
            ExitCode::SUCCESS
        }
        Cmd::Replay {
            config,
            access_in,
            core_in,
            access_out,
            core_out,
            linger_ms,
            json,
        } => {
            let cfg = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => return fail(&e.to_string(), 2),
            };
            init_logging("warn");
            let files = ReplayFiles {
                access_in,
                core_in,
                access_out,
                core_out,
            };
            match replay(&cfg, &files, Duration::from_millis(linger_ms)) {
                Ok(s) if json => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&s.to_json()).unwrap_or_default()
                    );
                    ExitCode::SUCCESS
                }
                Ok(s) => {
                    println!(
                        "replayed {:.3} ms of capture: wrote {} frames to {} and {} to {}\n",
                        s.span.1.since(s.span.0).as_secs_f64() * 1000.0,
                        s.written[0],
                        files.access_out.display(),
                        s.written[1],
                        files.core_out.display()
                    );
                    print!("{}", render::counters(&s.counters));
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&format!("{e:#}"), 1),
            }
        }
        Cmd::Ctl {
            socket,
            config,
            json,
            command,
        } => run_ctl(socket, config, json, command),
        Cmd::Subscriber(args) => tollgate_control::store::cli::run(args),
    }
}

fn run_ctl(
    socket: Option<PathBuf>,
    config: Option<PathBuf>,
    json: bool,
    command: CtlCmd,
) -> ExitCode {
    let socket = match (socket, config) {
        (Some(s), _) => s,
        (None, Some(c)) => match Config::load(&c) {
            Ok(cfg) => cfg.control.socket,
            Err(e) => return fail(&e.to_string(), 2),
        },
        (None, None) => Config::embedded().control.socket,
    };
    let req = match command {
        CtlCmd::Show { what } => Request::new(&format!(
            "show {}",
            what.to_possible_value()
                .map(|v| v.get_name().to_string())
                .unwrap_or_default()
        )),
        CtlCmd::Help => Request::new("help"),
        CtlCmd::Raw { json } => match ctl::proto::parse_request(&json) {
            Ok(r) => r,
            Err(e) => return fail(&e, 2),
        },
    };
    match client::call(&socket, &req, Duration::from_secs(15)) {
        Err(e) => fail(&e, 1),
        Ok(reply) if !reply.ok => fail(reply.error.as_deref().unwrap_or("failed"), 1),
        Ok(reply) if json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&reply.data).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Ok(reply) => {
            print!("{}", render::render(&req.words(), &reply.data));
            ExitCode::SUCCESS
        }
    }
}

fn load(path: Option<PathBuf>) -> Result<(Config, String), String> {
    match path {
        Some(p) => Config::load(&p)
            .map(|c| (c, p.display().to_string()))
            .map_err(|e| e.to_string()),
        None => Ok((Config::embedded(), "<embedded default>".to_string())),
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn fail(msg: &str, code: u8) -> ExitCode {
    eprintln!("tollgate: {msg}");
    ExitCode::from(code)
}
