//! Prometheus metrics: a [`Registry`] of counter and gauge families with labels, rendered
//! in the text exposition format 0.0.4, and a minimal HTTP/1.1 server thread
//! ([`server`]) that serves the latest rendering at `GET /metrics`. The control thread
//! fills a registry from its counters every `render_ms` and publishes the text into a
//! [`Snapshot`]; the server thread only ever reads that text, so scrapes never touch the
//! control thread's state.

pub mod aaa;
pub mod gateway;
pub mod server;

use std::fmt::Write as _;
use std::sync::Arc;

use parking_lot::Mutex;

/// The Content-Type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Counter or gauge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (resets at restart).
    Counter,
    /// Goes up and down.
    Gauge,
}

/// One metric family: name, help, type, samples.
#[derive(Clone, Debug)]
pub struct Family {
    name: String,
    help: String,
    kind: Kind,
    samples: Vec<(Vec<(String, String)>, f64)>,
}

impl Family {
    /// Adds a sample with these labels.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.samples.push((
            labels
                .iter()
                .map(|(k, v)| (sanitize(k, false), (*v).to_string()))
                .collect(),
            value,
        ));
        self
    }

    /// Adds an integer sample (counters).
    pub fn value(&mut self, labels: &[(&str, &str)], value: u64) -> &mut Self {
        self.sample(labels, value as f64)
    }
}

/// A set of families, rendered together.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    families: Vec<Family>,
}

/// Makes a metric (or, with `label`, a label) name valid: characters outside
/// `[a-zA-Z0-9_:]` (no `:` in labels) become `_`, and a leading digit gets a `_`.
fn sanitize(name: &str, metric: bool) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || (metric && c == ':') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn escape_label(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn number(v: f64, out: &mut String) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    fn family(&mut self, name: &str, help: &str, kind: Kind) -> &mut Family {
        let name = sanitize(name, true);
        let i = match self.families.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                self.families.push(Family {
                    name,
                    help: help.to_string(),
                    kind,
                    samples: Vec::new(),
                });
                self.families.len() - 1
            }
        };
        &mut self.families[i]
    }

    /// The counter family `name` (created on first use).
    pub fn counter(&mut self, name: &str, help: &str) -> &mut Family {
        self.family(name, help, Kind::Counter)
    }

    /// The gauge family `name` (created on first use).
    pub fn gauge(&mut self, name: &str, help: &str) -> &mut Family {
        self.family(name, help, Kind::Gauge)
    }

    /// The text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in &self.families {
            let _ = write!(out, "# HELP {} ", f.name);
            escape_help(&f.help, &mut out);
            out.push('\n');
            let kind = match f.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
            };
            let _ = writeln!(out, "# TYPE {} {kind}", f.name);
            for (labels, v) in &f.samples {
                out.push_str(&f.name);
                if !labels.is_empty() {
                    out.push('{');
                    for (i, (k, val)) in labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str(k);
                        out.push_str("=\"");
                        escape_label(val, &mut out);
                        out.push('"');
                    }
                    out.push('}');
                }
                out.push(' ');
                number(*v, &mut out);
                out.push('\n');
            }
        }
        out
    }
}

/// The latest rendering, shared between the control thread (writer) and the server
/// thread (reader). Publishing swaps an `Arc`; a scrape clones it and renders nothing.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    text: Arc<Mutex<Arc<str>>>,
}

impl Snapshot {
    /// An empty snapshot.
    pub fn new() -> Snapshot {
        Snapshot::default()
    }

    /// Publishes a new rendering.
    pub fn publish(&self, text: String) {
        *self.text.lock() = Arc::from(text);
    }

    /// The latest rendering.
    pub fn get(&self) -> Arc<str> {
        self.text.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format() {
        let mut r = Registry::new();
        r.counter("tollgate_radius_requests_total", "RADIUS requests sent.")
            .value(&[("server", "127.0.0.1:1812"), ("kind", "auth")], 7)
            .value(&[("server", "127.0.0.1:1813"), ("kind", "acct")], 3);
        r.gauge("tollgate_sessions", "Sessions open.")
            .value(&[], 12);
        r.gauge("tollgate_rtt_seconds", "EWMA.")
            .sample(&[("target", "pgw1")], 0.0125);
        assert_eq!(
            r.render(),
            "# HELP tollgate_radius_requests_total RADIUS requests sent.\n\
             # TYPE tollgate_radius_requests_total counter\n\
             tollgate_radius_requests_total{server=\"127.0.0.1:1812\",kind=\"auth\"} 7\n\
             tollgate_radius_requests_total{server=\"127.0.0.1:1813\",kind=\"acct\"} 3\n\
             # HELP tollgate_sessions Sessions open.\n\
             # TYPE tollgate_sessions gauge\n\
             tollgate_sessions 12\n\
             # HELP tollgate_rtt_seconds EWMA.\n\
             # TYPE tollgate_rtt_seconds gauge\n\
             tollgate_rtt_seconds{target=\"pgw1\"} 0.0125\n"
        );
    }

    #[test]
    fn escaping_and_names() {
        let mut r = Registry::new();
        r.gauge("bad-name.x", "line one\nback\\slash")
            .sample(&[("user id", "a\"b\\c\nd")], f64::NAN)
            .sample(&[("l", "x")], f64::INFINITY);
        r.gauge("9lives", "h").sample(&[], -3.5);
        let t = r.render();
        assert!(
            t.contains("# HELP bad_name_x line one\\nback\\\\slash\n"),
            "{t}"
        );
        assert!(
            t.contains("bad_name_x{user_id=\"a\\\"b\\\\c\\nd\"} NaN\n"),
            "{t}"
        );
        assert!(t.contains("bad_name_x{l=\"x\"} +Inf\n"), "{t}");
        assert!(t.contains("_9lives -3.5\n"), "{t}");
    }

    #[test]
    fn families_are_merged_by_name() {
        let mut r = Registry::new();
        r.counter("a_total", "A.").value(&[("x", "1")], 1);
        r.counter("a_total", "A.").value(&[("x", "2")], 2);
        assert_eq!(r.render().matches("# TYPE a_total").count(), 1);
    }

    #[test]
    fn snapshot_publish() {
        let s = Snapshot::new();
        assert_eq!(&*s.get(), "");
        let reader = s.clone();
        s.publish("x 1\n".into());
        assert_eq!(&*reader.get(), "x 1\n");
    }
}
