//! The local subscriber store's thread: password and identifier checks (an Argon2
//! check costs tens of milliseconds, so not on the control thread) and the ctl
//! `subscriber ...` operations, one at a time, in order.

use super::*;
use crate::proto::{SubscriberAdded, SubscribersImported, UserArg};

/// A typed answer (`crate::proto`) as the reply's data.
fn answer<T: serde::Serialize>(a: &T) -> Result<Value, String> {
    serde_json::to_value(a).map_err(|e| e.to_string())
}

/// Checks a login against the local store: a CHAP response (PPP) against the user's
/// CHAP secret, a password login by user name, else the first identifier (mobile id,
/// MAC, address) a subscriber has.
pub fn authenticate_local(store: &Store, req: &AuthRequest) -> AuthAnswer {
    let accept = |s: crate::store::Subscriber| AuthAnswer::Accept {
        user: s.user_id.clone(),
        authorization: Box::new(s.authorization()),
    };
    let unavailable = |e: crate::store::StoreError| AuthAnswer::Unavailable(e.to_string());
    if let (Some(user), Some(chap)) = (&req.user, &req.chap) {
        return match store.verify_chap(user, chap) {
            Ok(Some(s)) => accept(s),
            Ok(None) => AuthAnswer::Reject("wrong user name or CHAP response".into()),
            Err(e) => unavailable(e),
        };
    }
    if let Some(user) = &req.user {
        return match &req.password {
            Some(pw) => match store.verify_password(user, pw.as_bytes()) {
                Ok(Some(s)) => accept(s),
                Ok(None) => AuthAnswer::Reject("wrong user name or password".into()),
                Err(e) => unavailable(e),
            },
            // A login by name alone is for subscribers without a password.
            None => match store.get(user) {
                Ok(Some(s)) if s.password_hash.is_none() => accept(s),
                Ok(Some(_)) => AuthAnswer::Reject(format!("{user} needs a password")),
                Ok(None) => AuthAnswer::Reject(format!("no subscriber {user:?}")),
                Err(e) => unavailable(e),
            },
        };
    }
    for id in &req.identifiers {
        match store.lookup_by_identifier(id) {
            Ok(Some(s)) => return accept(s),
            Ok(None) => {}
            Err(e) => return unavailable(e),
        }
    }
    let ids: Vec<String> = req.identifiers.iter().map(|i| i.to_string()).collect();
    AuthAnswer::Reject(format!("no subscriber has {}", ids.join(" or ")))
}

/// A change to the local store asked over the control socket.
#[derive(Debug)]
pub enum StoreOp {
    /// `subscriber add`: a record as in an import file; `replace` an existing one.
    Add(Box<Record>, bool),
    /// `subscriber remove`.
    Remove(String),
    /// `subscriber show`.
    Show(String),
    /// `subscriber list`.
    List,
    /// `subscriber import`: a file's contents, its name and format.
    Import {
        /// The file's text.
        text: String,
        /// Its name (for errors).
        file: String,
        /// TOML or CSV.
        format: Format,
        /// Replace subscribers that exist.
        replace: bool,
    },
}

pub(super) enum StoreJob {
    /// A login to check, and when it was queued.
    Auth(AuthRequest, std::time::Instant),
    Admin(StoreOp, Sender<Reply>),
}

/// The store's thread: answers logins and store changes in order.
pub(super) struct StoreThread {
    pub(super) jobs: Sender<StoreJob>,
    pub(super) answers: Receiver<(LoginId, AuthAnswer)>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl StoreThread {
    /// The thread over `store`. A login check that waited longer than `max_wait` in the
    /// queue (the PPP authentication timeout: the longest a login is waited for) is
    /// answered unavailable without being computed: its subscriber has given up or been
    /// ended, and at tens of milliseconds per Argon2 check a backlog of stale checks
    /// would starve the live ones behind it (1 000 PAP clients at once, BNG Blaster).
    pub(super) fn start(store: Store, max_wait: Duration) -> anyhow::Result<StoreThread> {
        let (jobs, rx) = unbounded::<StoreJob>();
        let (tx, answers) = unbounded();
        let handle = std::thread::Builder::new()
            .name("tg-store".into())
            .spawn(move || {
                let mut store = store;
                while let Ok(job) = rx.recv() {
                    match job {
                        StoreJob::Auth(req, queued) => {
                            let waited = queued.elapsed();
                            let a = if waited > max_wait {
                                AuthAnswer::Unavailable(format!(
                                    "the local store was busy: the check waited {} s",
                                    waited.as_secs()
                                ))
                            } else {
                                authenticate_local(&store, &req)
                            };
                            if tx.send((req.login, a)).is_err() {
                                return;
                            }
                        }
                        StoreJob::Admin(op, reply) => {
                            let _ = reply.try_send(admin(&mut store, op));
                        }
                    }
                }
            })
            .context("starting the store thread")?;
        Ok(StoreThread {
            jobs,
            answers,
            handle: Some(handle),
        })
    }
}

impl Drop for StoreThread {
    fn drop(&mut self) {
        // Closing the job channel ends the thread.
        let (dead, _) = unbounded();
        self.jobs = dead;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

pub(super) fn admin(store: &mut Store, op: StoreOp) -> Reply {
    let r: Result<Value, String> = (|| match op {
        StoreOp::Add(rec, replace) => {
            let s = rec
                .to_subscriber(store.password_cost())
                .map_err(|(f, m)| format!("{f}: {m}"))?;
            let exists = store.get(&s.user_id).map_err(|e| e.to_string())?.is_some();
            if exists && replace {
                store.update(&s).map_err(|e| e.to_string())?;
                answer(&SubscriberAdded {
                    user: s.user_id,
                    replaced: true,
                })
            } else {
                store.add(&s).map_err(|e| e.to_string())?;
                answer(&SubscriberAdded {
                    user: s.user_id,
                    replaced: false,
                })
            }
        }
        StoreOp::Remove(user) => {
            store.remove(&user).map_err(|e| e.to_string())?;
            answer(&UserArg { user })
        }
        StoreOp::Show(user) => match store.get(&user).map_err(|e| e.to_string())? {
            Some(s) => serde_json::to_value(SubscriberView::from(&s)).map_err(|e| e.to_string()),
            None => Err(format!("no subscriber {user:?}")),
        },
        StoreOp::List => {
            let list = store.list().map_err(|e| e.to_string())?;
            let views: Vec<SubscriberView> = list.iter().map(SubscriberView::from).collect();
            serde_json::to_value(views).map_err(|e| e.to_string())
        }
        StoreOp::Import {
            text,
            file,
            format,
            replace,
        } => {
            let cost = store.password_cost();
            let records = match format {
                Format::Toml => import::parse_toml(&text, &file, cost),
                Format::Csv => import::parse_csv(&text, &file, cost),
            }
            .map_err(|e| e.to_string())?;
            let s = import::import_records(store, &file, &records, replace)
                .map_err(|e| e.to_string())?;
            answer(&SubscribersImported {
                file,
                added: s.added as u64,
                replaced: s.replaced as u64,
            })
        }
    })();
    match r {
        Ok(v) => Reply::ok(v),
        Err(e) => Reply::error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(id: LoginId) -> AuthRequest {
        AuthRequest {
            login: id,
            user: Some("bob".into()),
            password: None,
            identifiers: Vec::new(),
            calling_station: None,
            address: None,
            chap: None,
            line: None,
        }
    }

    /// A check queued longer than the limit is answered unavailable, without the store;
    /// the next, fresh one is checked as usual.
    #[test]
    fn a_check_that_waited_past_the_limit_is_not_computed() {
        let mut store = Store::open_in_memory().unwrap();
        let records = import::parse_toml(
            "[[subscriber]]\nuser_id = \"bob\"\n",
            "t.toml",
            store.password_cost(),
        )
        .unwrap();
        import::import_records(&mut store, "t.toml", &records, false).unwrap();
        let t = StoreThread::start(store, Duration::from_secs(30)).unwrap();
        let old = std::time::Instant::now() - Duration::from_secs(31);
        t.jobs.send(StoreJob::Auth(login(1), old)).unwrap();
        t.jobs
            .send(StoreJob::Auth(login(2), std::time::Instant::now()))
            .unwrap();
        let (id, a) = t.answers.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(id, 1);
        assert_eq!(
            a,
            AuthAnswer::Unavailable("the local store was busy: the check waited 31 s".into())
        );
        let (id, a) = t.answers.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(id, 2);
        assert!(
            matches!(a, AuthAnswer::Accept { ref user, .. } if user == "bob"),
            "{a:?}"
        );
    }
}
