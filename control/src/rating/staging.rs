//! Imports that arrive in parts (`tollgate ctl billing import FILE`: a file larger than
//! one control request is sent as numbered parts): the parts are held here, in memory,
//! until the last one, and the whole file is then stored in one transaction, or none of
//! it. A part out of order, an error in any part, or [`EXPIRY_S`] without a part
//! discards what was held. Sans-I/O: time comes in as Unix seconds.

use std::collections::HashMap;

use super::usage::Record;

/// Records one import (one file) may hold, by `tollgate billing import` or by
/// `tollgate ctl billing import`; a larger file is refused before anything is stored.
pub const MAX_IMPORT_RECORDS: usize = 100_000;
/// Seconds an unfinished import is held without a part.
pub const EXPIRY_S: i64 = 60;
/// Unfinished imports held at once.
pub const MAX_UNFINISHED: usize = 4;

/// Why a part was refused; the import it belongs to is discarded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StagingError {
    /// A part other than the first for an import not held (discarded or never begun).
    #[error(
        "import {id:?}: part {part} does not follow a held part (an earlier part failed, or none came for {EXPIRY_S} s): nothing of this import is stored; send the file again"
    )]
    OutOfOrder {
        /// The import.
        id: String,
        /// The part that came.
        part: u32,
    },
    /// Too many records.
    #[error(
        "import {id:?}: more than {MAX_IMPORT_RECORDS} records in one import: nothing of it is stored; split the file"
    )]
    TooLarge {
        /// The import.
        id: String,
    },
    /// Too many imports under way.
    #[error("{MAX_UNFINISHED} imports are under way; try again when one has finished")]
    Busy,
}

#[derive(Debug)]
struct Unfinished {
    records: Vec<Record>,
    parts: u32,
    touched: i64,
}

/// The unfinished imports.
#[derive(Debug, Default)]
pub struct Staging {
    imports: HashMap<String, Unfinished>,
}

impl Staging {
    fn expire(&mut self, now: i64) {
        self.imports.retain(|_, u| now < u.touched + EXPIRY_S);
    }

    /// Adds part `part` of import `id`; with `last`, returns every record of the
    /// import (to be stored in one transaction) and forgets it. An error discards the
    /// import.
    pub fn add(
        &mut self,
        id: &str,
        part: u32,
        records: Vec<Record>,
        last: bool,
        now: i64,
    ) -> Result<Option<Vec<Record>>, StagingError> {
        self.expire(now);
        if part == 0 {
            self.imports.remove(id);
            if !last && self.imports.len() >= MAX_UNFINISHED {
                return Err(StagingError::Busy);
            }
            self.imports.insert(
                id.to_string(),
                Unfinished {
                    records: Vec::new(),
                    parts: 0,
                    touched: now,
                },
            );
        }
        let u = match self.imports.get_mut(id) {
            Some(u) if u.parts == part => u,
            _ => {
                self.imports.remove(id);
                return Err(StagingError::OutOfOrder {
                    id: id.to_string(),
                    part,
                });
            }
        };
        if u.records.len() + records.len() > MAX_IMPORT_RECORDS {
            self.imports.remove(id);
            return Err(StagingError::TooLarge { id: id.to_string() });
        }
        u.records.extend(records);
        u.parts += 1;
        u.touched = now;
        if !last {
            return Ok(None);
        }
        Ok(self.imports.remove(id).map(|u| u.records))
    }

    /// Forgets import `id` (a part of it failed).
    pub fn discard(&mut self, id: &str) {
        self.imports.remove(id);
    }

    /// Records held of import `id`.
    pub fn held(&self, id: &str) -> usize {
        self.imports.get(id).map_or(0, |u| u.records.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rating::ServiceUsage;

    fn rec(i: usize) -> Record {
        Record::Service(ServiceUsage {
            id: format!("r{i}"),
            account: "a".into(),
            user: None,
            contract: "c".into(),
            at: 1_700_000_000,
            quantity: 1,
        })
    }

    #[test]
    fn parts_in_order_make_one_import() {
        let mut s = Staging::default();
        assert_eq!(s.add("x", 0, vec![rec(0), rec(1)], false, 100), Ok(None));
        assert_eq!(s.add("x", 1, vec![rec(2)], false, 110), Ok(None));
        assert_eq!(s.held("x"), 3);
        let all = s.add("x", 2, vec![rec(3)], true, 120).unwrap().unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(s.held("x"), 0, "forgotten");
    }

    #[test]
    fn a_gap_an_expiry_or_too_many_records_discard_the_import() {
        let mut s = Staging::default();
        s.add("x", 0, vec![rec(0)], false, 100).unwrap();
        assert!(matches!(
            s.add("x", 2, vec![rec(1)], true, 101),
            Err(StagingError::OutOfOrder { part: 2, .. })
        ));
        // The last part alone must not be stored as if it were the file.
        assert!(s.add("x", 1, vec![rec(1)], true, 102).is_err());
        s.add("y", 0, vec![rec(0)], false, 100).unwrap();
        assert!(matches!(
            s.add("y", 1, vec![rec(1)], true, 100 + EXPIRY_S),
            Err(StagingError::OutOfOrder { .. })
        ));
        let many: Vec<Record> = (0..MAX_IMPORT_RECORDS).map(rec).collect();
        s.add("z", 0, many, false, 200).unwrap();
        assert_eq!(
            s.add("z", 1, vec![rec(0)], true, 200),
            Err(StagingError::TooLarge { id: "z".into() })
        );
        assert_eq!(s.held("z"), 0);
        for i in 0..MAX_UNFINISHED {
            s.add(&format!("u{i}"), 0, vec![rec(i)], false, 300)
                .unwrap();
        }
        assert_eq!(
            s.add("one-more", 0, vec![rec(0)], false, 300),
            Err(StagingError::Busy)
        );
        assert!(
            s.add("single", 0, vec![rec(0)], true, 300).is_ok(),
            "a one-part import needs no room"
        );
    }
}
