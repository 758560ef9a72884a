//! Importing subscribers from TOML and CSV files (formats in `docs/aaa.md`). Both carry
//! the same fields; an error names the file, the line and the field. An import is one
//! transaction: all records or none.

use std::net::Ipv4Addr;
use std::path::Path;

use serde::Deserialize;

use tollgate_control_core::gateway::identifier::Identifier;

use super::{PasswordCost, Store, StoreError, Subscriber, hash_password};
use tollgate_control_core::authz::{Conditions, LoginVictim};

/// The fields of a record, in CSV column order.
pub const FIELDS: &[&str] = &[
    "user_id",
    "password",
    "password_hash",
    "chap_secret",
    "mac",
    "mobile_id",
    "ip",
    "services",
    "billing_account",
    "bandwidth_up",
    "bandwidth_down",
    "framed_ip",
    "interim_interval_s",
    "session_time_s",
    "idle_time_s",
    "idle_server",
    "volume_bytes",
    "volume_bytes_up",
    "volume_bytes_down",
    "volume_packets_up",
    "volume_packets_down",
    "max_logins",
    "login_victim",
    "login_order",
    "rate_ratio_percent",
    "rate_window_s",
    "app_timeout_s",
];

/// An import problem, naming where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}{}: {message}", line.map(|l| format!(": line {l}")).unwrap_or_default(), field.as_ref().map(|f| format!(": field `{f}`")).unwrap_or_default())]
pub struct ImportError {
    /// The file.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The field, when known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// The file formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `[[subscriber]]` tables.
    Toml,
    /// A header row naming the columns, one subscriber per row.
    Csv,
}

impl Format {
    /// From a file's extension.
    pub fn of(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()? {
            "toml" => Some(Format::Toml),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }
}

/// One record as written in a file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// User id.
    pub user_id: String,
    /// Password in clear (hashed on import).
    #[serde(default)]
    pub password: Option<String>,
    /// An Argon2 PHC string (from another store).
    #[serde(default)]
    pub password_hash: Option<String>,
    /// The CHAP secret (kept reversibly, in the 0600 file beside the store).
    #[serde(default)]
    pub chap_secret: Option<super::ChapSecret>,
    /// MACs.
    #[serde(default)]
    pub mac: Vec<String>,
    /// Mobile ids.
    #[serde(default)]
    pub mobile_id: Vec<String>,
    /// Fixed IPs.
    #[serde(default)]
    pub ip: Vec<String>,
    /// Allowed services.
    #[serde(default)]
    pub services: Vec<String>,
    /// Billing account.
    #[serde(default)]
    pub billing_account: Option<String>,
    /// bit/s.
    #[serde(default)]
    pub bandwidth_up: Option<u64>,
    /// bit/s.
    #[serde(default)]
    pub bandwidth_down: Option<u64>,
    /// Fixed address.
    #[serde(default)]
    pub framed_ip: Option<String>,
    /// Seconds.
    #[serde(default)]
    pub interim_interval_s: Option<u32>,
    /// A.
    #[serde(default)]
    pub session_time_s: Option<u32>,
    /// B.
    #[serde(default)]
    pub idle_time_s: Option<u32>,
    /// B.
    #[serde(default)]
    pub idle_server: Option<String>,
    /// C.
    #[serde(default)]
    pub volume_bytes: Option<u64>,
    /// C.
    #[serde(default)]
    pub volume_bytes_up: Option<u64>,
    /// C.
    #[serde(default)]
    pub volume_bytes_down: Option<u64>,
    /// C.
    #[serde(default)]
    pub volume_packets_up: Option<u64>,
    /// C.
    #[serde(default)]
    pub volume_packets_down: Option<u64>,
    /// D.
    #[serde(default)]
    pub max_logins: Option<u32>,
    /// D: `earliest` or `order`.
    #[serde(default)]
    pub login_victim: Option<String>,
    /// D.
    #[serde(default)]
    pub login_order: Option<u32>,
    /// E.
    #[serde(default)]
    pub rate_ratio_percent: Option<u32>,
    /// E.
    #[serde(default)]
    pub rate_window_s: Option<u32>,
    /// F.
    #[serde(default)]
    pub app_timeout_s: Option<u32>,
}

impl Record {
    /// The subscriber this record describes; errors name the field.
    pub fn to_subscriber(&self, cost: PasswordCost) -> Result<Subscriber, (String, String)> {
        let f = |field: &str, m: String| (field.to_string(), m);
        let ip = |field: &str, v: &Option<String>| -> Result<Option<Ipv4Addr>, (String, String)> {
            v.as_deref()
                .map(|s| {
                    s.parse::<Ipv4Addr>()
                        .map_err(|_| f(field, format!("{s:?} is not an IPv4 address")))
                })
                .transpose()
        };
        let mut identifiers = Vec::new();
        for (kind, values) in [
            ("mac", &self.mac),
            ("mobile_id", &self.mobile_id),
            ("ip", &self.ip),
        ] {
            for v in values {
                identifiers.push(Identifier::parse(kind, v).map_err(|m| f(kind, m))?);
            }
        }
        let password_hash = match (&self.password, &self.password_hash) {
            (Some(_), Some(_)) => {
                return Err(f(
                    "password_hash",
                    "give password or password_hash, not both".into(),
                ));
            }
            (Some(p), None) => {
                Some(hash_password(p, cost).map_err(|e| f("password", e.to_string()))?)
            }
            (None, h) => h.clone(),
        };
        let login_victim = match self.login_victim.as_deref() {
            None => LoginVictim::Earliest,
            Some(v) => LoginVictim::parse(v)
                .ok_or_else(|| f("login_victim", format!("{v:?}: earliest or order")))?,
        };
        let s = Subscriber {
            user_id: self.user_id.clone(),
            password_hash,
            identifiers,
            conditions: Conditions {
                session_time_s: self.session_time_s,
                idle_time_s: self.idle_time_s,
                idle_server: ip("idle_server", &self.idle_server)?,
                volume_bytes: self.volume_bytes,
                volume_bytes_up: self.volume_bytes_up,
                volume_bytes_down: self.volume_bytes_down,
                volume_packets_up: self.volume_packets_up,
                volume_packets_down: self.volume_packets_down,
                max_logins: self.max_logins,
                login_victim,
                login_order: self.login_order,
                rate_ratio_percent: self.rate_ratio_percent,
                rate_window_s: self.rate_window_s,
                app_timeout_s: self.app_timeout_s,
            },
            bandwidth_up: self.bandwidth_up,
            bandwidth_down: self.bandwidth_down,
            services: self.services.clone(),
            billing_account: self.billing_account.clone(),
            framed_ip: ip("framed_ip", &self.framed_ip)?,
            interim_interval_s: self.interim_interval_s,
            chap_secret: self.chap_secret.clone(),
        };
        s.validate().map_err(|e| match e {
            StoreError::Invalid { field, message } => (field, message),
            other => ("user_id".to_string(), other.to_string()),
        })?;
        Ok(s)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlFile {
    #[serde(default)]
    subscriber: Vec<Record>,
}

fn line_of(src: &str, offset: usize) -> usize {
    src[..offset.min(src.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}

/// Parses a TOML import file: `[[subscriber]]` tables. Returns each subscriber with its
/// line.
pub fn parse_toml(
    src: &str,
    file: &str,
    cost: PasswordCost,
) -> Result<Vec<(usize, Subscriber)>, ImportError> {
    let parsed: TomlFile = toml::from_str(src).map_err(|e| {
        let line = e.span().map(|s| line_of(src, s.start));
        // The key on the line the error points at, when there is one.
        let field = line
            .and_then(|l| src.lines().nth(l - 1))
            .and_then(|text| text.split_once('='))
            .map(|(k, _)| k.trim().to_string())
            .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        ImportError {
            file: file.to_string(),
            line,
            field,
            message: e.message().trim().to_string(),
        }
    })?;
    let doc = toml_edit::Document::parse(src).ok();
    let tables = doc
        .as_ref()
        .and_then(|d| d.get("subscriber"))
        .and_then(|i| i.as_array_of_tables());
    let mut out = Vec::new();
    for (i, r) in parsed.subscriber.iter().enumerate() {
        let table = tables.and_then(|t| t.get(i));
        let header = table
            .and_then(|t| t.span())
            .map(|s| line_of(src, s.start))
            .unwrap_or(1);
        match r.to_subscriber(cost) {
            Ok(s) => out.push((header, s)),
            Err((field, message)) => {
                let line = table
                    .and_then(|t| t.key(&field))
                    .and_then(|k| k.span())
                    .map(|s| line_of(src, s.start))
                    .unwrap_or(header);
                return Err(ImportError {
                    file: file.to_string(),
                    line: Some(line),
                    field: Some(field),
                    message,
                });
            }
        }
    }
    Ok(out)
}

/// Parses a CSV import file: a header row of field names (any order, any subset
/// including `user_id`), then one subscriber per row. Empty cells are unset; lists
/// (mac, mobile_id, ip, services) are separated by `;`. Lines starting with `#` are
/// comments.
pub fn parse_csv(
    src: &str,
    file: &str,
    cost: PasswordCost,
) -> Result<Vec<(usize, Subscriber)>, ImportError> {
    let err = |line: Option<usize>, field: Option<&str>, message: String| ImportError {
        file: file.to_string(),
        line,
        field: field.map(str::to_string),
        message,
    };
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .flexible(false)
        .from_reader(src.as_bytes());
    let headers = rdr
        .headers()
        .map_err(|e| err(Some(1), None, e.to_string()))?
        .clone();
    let header_line = headers.position().map_or(1, |p| p.line() as usize);
    for h in headers.iter() {
        if !FIELDS.contains(&h) {
            return Err(err(
                Some(header_line),
                Some(h),
                format!("unknown column; columns are: {}", FIELDS.join(", ")),
            ));
        }
        if headers.iter().filter(|x| *x == h).count() > 1 {
            return Err(err(Some(header_line), Some(h), "column given twice".into()));
        }
    }
    if !headers.iter().any(|h| h == "user_id") {
        return Err(err(
            Some(header_line),
            Some("user_id"),
            "the user_id column is required".into(),
        ));
    }
    let mut out = Vec::new();
    for row in rdr.records() {
        let row = row.map_err(|e| {
            let line = e.position().map(|p| p.line() as usize);
            err(line, None, e.to_string())
        })?;
        let line = row.position().map_or(0, |p| p.line() as usize);
        let mut r = Record::default();
        for (h, v) in headers.iter().zip(row.iter()) {
            if v.is_empty() {
                continue;
            }
            let num = |v: &str| -> Result<u64, ImportError> {
                v.parse::<u64>()
                    .map_err(|_| err(Some(line), Some(h), format!("{v:?} is not a whole number")))
            };
            let small = |v: &str| -> Result<u32, ImportError> {
                v.parse::<u32>().map_err(|_| {
                    err(
                        Some(line),
                        Some(h),
                        format!("{v:?} is not a whole number up to 4294967295"),
                    )
                })
            };
            let list = |v: &str| -> Vec<String> {
                v.split(';')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            };
            match h {
                "user_id" => r.user_id = v.to_string(),
                "password" => r.password = Some(v.to_string()),
                "password_hash" => r.password_hash = Some(v.to_string()),
                "chap_secret" => r.chap_secret = Some(super::ChapSecret(v.as_bytes().to_vec())),
                "mac" => r.mac = list(v),
                "mobile_id" => r.mobile_id = list(v),
                "ip" => r.ip = list(v),
                "services" => r.services = list(v),
                "billing_account" => r.billing_account = Some(v.to_string()),
                "bandwidth_up" => r.bandwidth_up = Some(num(v)?),
                "bandwidth_down" => r.bandwidth_down = Some(num(v)?),
                "framed_ip" => r.framed_ip = Some(v.to_string()),
                "interim_interval_s" => r.interim_interval_s = Some(small(v)?),
                "session_time_s" => r.session_time_s = Some(small(v)?),
                "idle_time_s" => r.idle_time_s = Some(small(v)?),
                "idle_server" => r.idle_server = Some(v.to_string()),
                "volume_bytes" => r.volume_bytes = Some(num(v)?),
                "volume_bytes_up" => r.volume_bytes_up = Some(num(v)?),
                "volume_bytes_down" => r.volume_bytes_down = Some(num(v)?),
                "volume_packets_up" => r.volume_packets_up = Some(num(v)?),
                "volume_packets_down" => r.volume_packets_down = Some(num(v)?),
                "max_logins" => r.max_logins = Some(small(v)?),
                "login_victim" => r.login_victim = Some(v.to_string()),
                "login_order" => r.login_order = Some(small(v)?),
                "rate_ratio_percent" => r.rate_ratio_percent = Some(small(v)?),
                "rate_window_s" => r.rate_window_s = Some(small(v)?),
                "app_timeout_s" => r.app_timeout_s = Some(small(v)?),
                _ => {}
            }
        }
        let s = r
            .to_subscriber(cost)
            .map_err(|(field, m)| err(Some(line), Some(&field), m))?;
        out.push((line, s));
    }
    Ok(out)
}

/// What an import did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// New subscribers.
    pub added: usize,
    /// Existing subscribers replaced (with `replace`).
    pub replaced: usize,
}

/// Reads `path` (format from `format` or the extension) and writes every subscriber in
/// one transaction. With `replace` false, a user id already in the store is an error.
pub fn import_file(
    store: &mut Store,
    path: &Path,
    format: Option<Format>,
    replace: bool,
) -> Result<ImportSummary, ImportError> {
    let file = path.display().to_string();
    let plain = |message: String| ImportError {
        file: file.clone(),
        line: None,
        field: None,
        message,
    };
    let format = format.or_else(|| Format::of(path)).ok_or_else(|| {
        plain("cannot tell the format from the extension: use .toml or .csv, or --format".into())
    })?;
    let src = std::fs::read_to_string(path).map_err(|e| plain(format!("cannot read: {e}")))?;
    let cost = store.password_cost();
    let records = match format {
        Format::Toml => parse_toml(&src, &file, cost)?,
        Format::Csv => parse_csv(&src, &file, cost)?,
    };
    import_records(store, &file, &records, replace)
}

/// Writes parsed records; errors name the line of the record at fault.
pub fn import_records(
    store: &mut Store,
    file: &str,
    records: &[(usize, Subscriber)],
    replace: bool,
) -> Result<ImportSummary, ImportError> {
    let at = |line: usize, field: &str, message: String| ImportError {
        file: file.to_string(),
        line: Some(line),
        field: Some(field.to_string()),
        message,
    };
    for (i, (line, s)) in records.iter().enumerate() {
        if let Some((first, _)) = records[..i].iter().find(|(_, o)| o.user_id == s.user_id) {
            return Err(at(
                *line,
                "user_id",
                format!("{:?} is also on line {first}", s.user_id),
            ));
        }
        for id in &s.identifiers {
            if let Some((first, o)) = records[..i]
                .iter()
                .find(|(_, o)| o.identifiers.contains(id))
            {
                return Err(at(
                    *line,
                    id.kind(),
                    format!(
                        "{} is also given to {:?} on line {first}",
                        id.value(),
                        o.user_id
                    ),
                ));
            }
        }
    }
    let subs: Vec<Subscriber> = records.iter().map(|(_, s)| s.clone()).collect();
    match store.put_all(&subs, replace) {
        Ok((added, replaced)) => Ok(ImportSummary { added, replaced }),
        Err(StoreError::AlreadyExists(u)) => {
            let line = records
                .iter()
                .find(|(_, s)| s.user_id == u)
                .map_or(0, |r| r.0);
            Err(at(
                line,
                "user_id",
                format!("{u:?} is already in the store (use --replace)"),
            ))
        }
        Err(StoreError::IdentifierTaken { identifier, owner }) => {
            let line = records
                .iter()
                .find(|(_, s)| s.identifiers.contains(&identifier))
                .map_or(0, |r| r.0);
            Err(at(
                line,
                identifier.kind(),
                format!(
                    "{} already belongs to {owner:?} in the store",
                    identifier.value()
                ),
            ))
        }
        Err(e) => Err(ImportError {
            file: file.to_string(),
            line: None,
            field: None,
            message: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{TEST_COST, store};
    use super::*;

    const TOML: &str = r#"
[[subscriber]]
user_id = "alice"
password = "wonderland"
mac = ["02:00:00:00:00:0a"]
services = ["web", "mail"]
session_time_s = 3600
volume_bytes = 1099511627776
max_logins = 2
login_victim = "order"
login_order = 5

[[subscriber]]
user_id = "bob"
mobile_id = ["440109999"]
bandwidth_down = 50000000
"#;

    #[test]
    fn toml_import() {
        let mut st = store();
        let recs = parse_toml(TOML, "subs.toml", TEST_COST).unwrap();
        assert_eq!(recs.iter().map(|r| r.0).collect::<Vec<_>>(), [2, 13]);
        let sum = import_records(&mut st, "subs.toml", &recs, false).unwrap();
        assert_eq!(
            sum,
            ImportSummary {
                added: 2,
                replaced: 0
            }
        );
        let a = st.verify_password("alice", b"wonderland").unwrap().unwrap();
        assert_eq!(a.conditions.volume_bytes, Some(1 << 40));
        assert_eq!(a.conditions.login_victim, LoginVictim::Order);
        assert_eq!(a.services, vec!["mail", "web"]);
        // Again without replace: refused, naming the line.
        let e = import_records(&mut st, "subs.toml", &recs, false).unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (Some(2), Some("user_id")));
        assert_eq!(
            import_records(&mut st, "subs.toml", &recs, true).unwrap(),
            ImportSummary {
                added: 0,
                replaced: 2
            }
        );
    }

    #[test]
    fn toml_errors_name_line_and_field() {
        let e = parse_toml(
            "[[subscriber]]\nuser_id = \"a\"\nsession_time_s = \"long\"\n",
            "f.toml",
            TEST_COST,
        )
        .unwrap_err();
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(3), Some("session_time_s")),
            "{e}"
        );
        let e = parse_toml(
            "[[subscriber]]\nuser_id = \"a\"\nsesion_time_s = 5\n",
            "f.toml",
            TEST_COST,
        )
        .unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.message.contains("sesion_time_s"), "{e}");
        let e = parse_toml(
            "[[subscriber]]\nuser_id = \"a\"\n\n[[subscriber]]\nuser_id = \"b\"\nmac = [\"zz\"]\n",
            "f.toml",
            TEST_COST,
        )
        .unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (Some(6), Some("mac")), "{e}");
        assert!(
            e.to_string().starts_with("f.toml: line 6: field `mac`: "),
            "{e}"
        );
        let e = parse_toml(
            "[[subscriber]]\nuser_id = \"a\"\nlogin_victim = \"latest\"\n",
            "f.toml",
            TEST_COST,
        )
        .unwrap_err();
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(3), Some("login_victim")),
            "{e}"
        );
    }

    const CSV: &str = "\
# subscribers exported from billing
user_id,password,mac,services,session_time_s,volume_bytes_up,login_victim
alice,wonderland,02:00:00:00:00:0a,web;mail,3600,1000000,order
bob,,,,,,
";

    #[test]
    fn csv_import() {
        let mut st = store();
        let recs = parse_csv(CSV, "subs.csv", TEST_COST).unwrap();
        assert_eq!(recs.iter().map(|r| r.0).collect::<Vec<_>>(), [3, 4]);
        import_records(&mut st, "subs.csv", &recs, false).unwrap();
        let a = st.verify_password("alice", b"wonderland").unwrap().unwrap();
        assert_eq!(a.conditions.session_time_s, Some(3600));
        assert_eq!(a.conditions.volume_bytes_up, Some(1_000_000));
        assert_eq!(a.services, vec!["mail", "web"]);
        let b = st.get("bob").unwrap().unwrap();
        assert_eq!(b.password_hash, None);
    }

    #[test]
    fn chap_secrets_are_imported_like_the_other_fields() {
        let mut st = store();
        let toml =
            "[[subscriber]]\nuser_id = \"carol\"\npassword = \"pw\"\nchap_secret = \"s3cret\"\n";
        let recs = parse_toml(toml, "c.toml", TEST_COST).unwrap();
        assert!(!format!("{recs:?}").contains("s3cret"), "Debug is redacted");
        import_records(&mut st, "c.toml", &recs, false).unwrap();
        let csv = "user_id,chap_secret\ndave,d4ve\n";
        let recs = parse_csv(csv, "d.csv", TEST_COST).unwrap();
        import_records(&mut st, "d.csv", &recs, false).unwrap();
        let c = st.get("carol").unwrap().unwrap();
        assert_eq!(
            c.chap_secret,
            Some(super::super::ChapSecret(b"s3cret".to_vec()))
        );
        assert!(c.password_hash.is_some(), "PAP keeps its hash");
        let d = st.get("dave").unwrap().unwrap();
        assert_eq!(
            d.chap_secret,
            Some(super::super::ChapSecret(b"d4ve".to_vec()))
        );
        let long = format!("user_id,chap_secret\ne,{}\n", "x".repeat(256));
        let e = parse_csv(&long, "e.csv", TEST_COST).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("chap_secret"));
    }

    #[test]
    fn csv_errors_name_line_and_field() {
        let e = parse_csv("user_id,speed\na,1\n", "s.csv", TEST_COST).unwrap_err();
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(1), Some("speed")),
            "{e}"
        );
        let e = parse_csv("user_id,max_logins\na,1\nb,many\n", "s.csv", TEST_COST).unwrap_err();
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(3), Some("max_logins")),
            "{e}"
        );
        let e =
            parse_csv("user_id,ip\na,10.0.0.1\nb,10.0.0.300\n", "s.csv", TEST_COST).unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (Some(3), Some("ip")), "{e}");
        let e = parse_csv("mac\n02:00:00:00:00:01\n", "s.csv", TEST_COST).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("user_id"), "{e}");
        let e = parse_csv("user_id,mac\na,02:00:00:00:00:01\nb\n", "s.csv", TEST_COST).unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
    }

    #[test]
    fn duplicates_within_a_file_name_both_lines() {
        let mut st = store();
        let recs = parse_csv(
            "user_id,mac\na,02:00:00:00:00:01\nb,02:00:00:00:00:01\n",
            "s.csv",
            TEST_COST,
        )
        .unwrap();
        let e = import_records(&mut st, "s.csv", &recs, false).unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (Some(3), Some("mac")), "{e}");
        assert!(e.message.contains("line 2"), "{e}");
        assert_eq!(st.count().unwrap(), 0, "nothing written");
    }
}
