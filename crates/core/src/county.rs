//! The county log's leaves (FORMAT.md § 19).
//!
//! The county aggregator keeps its own Merkle log (the same BLAKE3 RFC 9162
//! tree as a department log, §8). At a bounded rate it appends one leaf
//! holding the newest cosigned checkpoint of every department that advanced
//! since the previous leaf:
//!
//! ```text
//! leaf = "gongkai/county-leaf/v1\n"
//!        || "time " || <unix seconds, decimal> || "\n"
//!        || for each checkpoint, ordered by origin (bytewise), origins unique:
//!             u32be(len(note)) || note
//! ```
//!
//! where `note` is the full signed note: the department's checkpoint text,
//! its signature and the county's cosignature line (§11). A leaf holds at
//! least one checkpoint and at most [`MAX_LEAF_LEN`] bytes, like any entry,
//! so that the county log exports as tiles and entry bundles; a round whose
//! checkpoints do not fit one leaf takes several ([`CountyLeaf::pack`]).

use crate::Error;
use crate::calendar::published::{self, CalendarTable};
use crate::checkpoint::SignedCheckpoint;
use crate::entry::MAX_ENTRY_LEN;

/// The first bytes of every county leaf.
pub const LEAF_MAGIC: &[u8] = b"gongkai/county-leaf/v1\n";

/// Largest county leaf, bytes: the largest entry an entry bundle holds.
pub const MAX_LEAF_LEN: usize = MAX_ENTRY_LEN;

/// Bytes of a leaf around its notes, at most: the magic, `"time "`, the
/// 20 digits of the largest time, the newline.
const MAX_HEADER_LEN: usize = LEAF_MAGIC.len() + "time ".len() + 20 + 1;

/// Largest cosigned note a county leaf can hold (it must fit a leaf alone,
/// with its 4-byte length): 65,482 bytes. The county cosigns no checkpoint
/// whose cosigned note is longer.
pub const MAX_NOTE_LEN: usize = MAX_LEAF_LEN - MAX_HEADER_LEN - 4;

/// A county leaf: when it was made and the cosigned checkpoints it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountyLeaf {
    /// Unix seconds when the county made the leaf.
    pub time_secs: u64,
    /// Cosigned department checkpoints, ordered by origin, origins unique.
    pub checkpoints: Vec<SignedCheckpoint>,
}

/// A leaf of the county log: a round of cosigned department checkpoints,
/// or a published calendar table (FORMAT.md § 14.4), told apart by their
/// first bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CountyRecord {
    /// `gongkai/county-leaf/v1`: cosigned department checkpoints.
    Checkpoints(CountyLeaf),
    /// `gongkai/calendar/v1`: one version of one year's holiday table.
    Calendar(CalendarTable),
}

impl CountyRecord {
    /// Decodes a county log leaf of either kind, strictly.
    ///
    /// # Errors
    /// [`Error::MalformedCountyLeaf`] for an unknown kind or a malformed
    /// checkpoint leaf; the errors of [`CalendarTable::decode`] for a
    /// malformed calendar leaf.
    pub fn decode(bytes: &[u8]) -> Result<CountyRecord, Error> {
        if bytes.starts_with(published::LEAF_MAGIC) {
            CalendarTable::decode(bytes).map(CountyRecord::Calendar)
        } else {
            CountyLeaf::decode(bytes).map(CountyRecord::Checkpoints)
        }
    }

    /// The cosigned checkpoints the leaf holds (none in a calendar leaf).
    pub fn checkpoints(&self) -> &[SignedCheckpoint] {
        match self {
            CountyRecord::Checkpoints(l) => &l.checkpoints,
            CountyRecord::Calendar(_) => &[],
        }
    }
}

fn bad(reason: impl Into<String>) -> Error {
    Error::MalformedCountyLeaf(reason.into())
}

impl CountyLeaf {
    /// A leaf of `checkpoints` (sorted here by origin).
    ///
    /// # Errors
    /// [`Error::MalformedCountyLeaf`] if there is none, two share an origin
    /// or the leaf would exceed [`MAX_LEAF_LEN`].
    pub fn new(time_secs: u64, checkpoints: Vec<SignedCheckpoint>) -> Result<CountyLeaf, Error> {
        let leaf = CountyLeaf::ordered(time_secs, checkpoints)?;
        if leaf.encode().len() > MAX_LEAF_LEN {
            return Err(bad(format!("larger than {MAX_LEAF_LEN} bytes")));
        }
        Ok(leaf)
    }

    /// The leaves of one round: `checkpoints` ordered by origin, cut into
    /// as few consecutive runs as keep every leaf within [`MAX_LEAF_LEN`]
    /// (usually one leaf). Appended in order, the leaves hold each
    /// checkpoint once and their origins increase across them.
    ///
    /// # Errors
    /// [`Error::MalformedCountyLeaf`] if there is no checkpoint, two share
    /// an origin, or a note is longer than [`MAX_NOTE_LEN`] (it fits no
    /// leaf; the county refuses to cosign such checkpoints).
    pub fn pack(
        time_secs: u64,
        checkpoints: Vec<SignedCheckpoint>,
    ) -> Result<Vec<CountyLeaf>, Error> {
        let mut rest = CountyLeaf::ordered(time_secs, checkpoints)?.checkpoints;
        let notes: Vec<usize> = rest.iter().map(|cp| cp.to_string().len()).collect();
        if let Some((cp, len)) = rest
            .iter()
            .zip(&notes)
            .find(|(_, len)| **len > MAX_NOTE_LEN)
        {
            return Err(bad(format!(
                "the cosigned note of {} is {len} bytes; a county leaf holds notes of at most {MAX_NOTE_LEN}",
                cp.checkpoint().origin
            )));
        }
        let header = LEAF_MAGIC.len() + format!("time {time_secs}\n").len();
        let mut notes = notes.as_slice();
        let mut leaves = Vec::new();
        while !rest.is_empty() {
            // Every note fits a leaf alone, so each leaf takes at least one.
            let mut len = header;
            let take = notes
                .iter()
                .take_while(|n| {
                    len += 4 + **n;
                    len <= MAX_LEAF_LEN
                })
                .count();
            if take == 0 {
                return Err(bad("a note fits no leaf"));
            }
            let tail = rest.split_off(take);
            leaves.push(CountyLeaf {
                time_secs,
                checkpoints: rest,
            });
            rest = tail;
            notes = &notes[take..];
        }
        Ok(leaves)
    }

    /// A leaf of `checkpoints`, sorted by origin; any size.
    fn ordered(
        time_secs: u64,
        mut checkpoints: Vec<SignedCheckpoint>,
    ) -> Result<CountyLeaf, Error> {
        checkpoints.sort_by(|a, b| {
            a.checkpoint()
                .origin
                .as_str()
                .cmp(b.checkpoint().origin.as_str())
        });
        let leaf = CountyLeaf {
            time_secs,
            checkpoints,
        };
        leaf.check()?;
        Ok(leaf)
    }

    fn check(&self) -> Result<(), Error> {
        if self.checkpoints.is_empty() {
            return Err(bad("holds no checkpoint"));
        }
        for pair in self.checkpoints.windows(2) {
            if pair[0].checkpoint().origin.as_str() >= pair[1].checkpoint().origin.as_str() {
                return Err(bad("checkpoints not ordered by origin, or an origin twice"));
            }
        }
        Ok(())
    }

    /// The leaf bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = LEAF_MAGIC.to_vec();
        out.extend_from_slice(format!("time {}\n", self.time_secs).as_bytes());
        for cp in &self.checkpoints {
            let note = cp.to_string();
            let len = u32::try_from(note.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(note.as_bytes());
        }
        out
    }

    /// Parses leaf bytes strictly: the magic, a canonical decimal time, and
    /// length-prefixed signed checkpoints ordered by origin. Signatures are
    /// not verified here.
    ///
    /// # Errors
    /// [`Error::MalformedCountyLeaf`] naming what is wrong; the note and
    /// checkpoint errors of [`SignedCheckpoint::from_bytes`].
    pub fn decode(bytes: &[u8]) -> Result<CountyLeaf, Error> {
        if bytes.len() > MAX_LEAF_LEN {
            return Err(bad(format!("larger than {MAX_LEAF_LEN} bytes")));
        }
        let rest = bytes
            .strip_prefix(LEAF_MAGIC)
            .ok_or_else(|| bad("does not start with gongkai/county-leaf/v1"))?;
        let rest = rest
            .strip_prefix(b"time ")
            .ok_or_else(|| bad("no time line"))?;
        let nl = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| bad("time line does not end"))?;
        let digits = &rest[..nl];
        let time_secs = std::str::from_utf8(digits)
            .ok()
            .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            .filter(|d| *d == "0" || !d.starts_with('0'))
            .and_then(|d| d.parse::<u64>().ok())
            .ok_or_else(|| bad("time is not a canonical decimal"))?;
        let mut rest = &rest[nl + 1..];
        let mut checkpoints = Vec::new();
        while !rest.is_empty() {
            let (len, tail) = rest
                .split_first_chunk::<4>()
                .ok_or_else(|| bad("truncated length"))?;
            let len = usize::try_from(u32::from_be_bytes(*len)).map_err(|_| bad("length"))?;
            if tail.len() < len {
                return Err(bad("truncated checkpoint"));
            }
            let cp = SignedCheckpoint::from_bytes(&tail[..len])?;
            if cp.to_string().as_bytes() != &tail[..len] {
                return Err(bad("checkpoint note is not in canonical form"));
            }
            checkpoints.push(cp);
            rest = &tail[len..];
        }
        let leaf = CountyLeaf {
            time_secs,
            checkpoints,
        };
        leaf.check()?;
        Ok(leaf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Checkpoint;
    use crate::keys::SigningKey;
    use crate::types::Origin;

    fn cp(origin: &str, size: u64) -> SignedCheckpoint {
        let key = SigningKey::from_seed([7; 32]);
        let c = Checkpoint::new(
            Origin::new(origin).unwrap(),
            size,
            crate::Hash([size as u8; 32]),
        );
        SignedCheckpoint::sign(&c, &key).unwrap()
    }

    #[test]
    fn round_trip_and_order() {
        let leaf = CountyLeaf::new(
            1_700_000_000,
            vec![cp("b.example/x", 3), cp("a.example/y", 9)],
        )
        .unwrap();
        assert_eq!(
            leaf.checkpoints[0].checkpoint().origin.as_str(),
            "a.example/y"
        );
        let bytes = leaf.encode();
        assert_eq!(CountyLeaf::decode(&bytes).unwrap(), leaf);
        // Any truncation or extension is refused.
        assert!(CountyLeaf::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(CountyLeaf::decode(&longer).is_err());
    }

    /// A signed checkpoint whose note is exactly `len` bytes (padded with
    /// one extension line).
    fn cp_of_len(origin: &str, len: usize) -> SignedCheckpoint {
        let key = SigningKey::from_seed([7; 32]);
        let mut c = Checkpoint::new(Origin::new(origin).unwrap(), 1, crate::Hash([1; 32]));
        c.extensions = vec!["x".into()];
        let base = SignedCheckpoint::sign(&c, &key).unwrap().to_string().len();
        c.extensions = vec!["x".repeat(1 + len - base)];
        let cp = SignedCheckpoint::sign(&c, &key).unwrap();
        assert_eq!(cp.to_string().len(), len);
        cp
    }

    #[test]
    fn a_round_too_large_for_one_leaf_takes_several() {
        let cps: Vec<SignedCheckpoint> = (0..400)
            .rev()
            .map(|i| cp(&format!("d{i:03}.example/x"), i + 1))
            .collect();
        let note = cps[0].to_string().len();
        assert!(
            400 * (note + 4) > MAX_LEAF_LEN,
            "the test needs several leaves"
        );
        let leaves = CountyLeaf::pack(u64::MAX, cps.clone()).unwrap();
        assert!(leaves.len() >= 2);
        let mut seen = Vec::new();
        for (k, leaf) in leaves.iter().enumerate() {
            let bytes = leaf.encode();
            assert!(bytes.len() <= MAX_LEAF_LEN);
            assert_eq!(&CountyLeaf::decode(&bytes).unwrap(), leaf);
            // Each leaf but the last is full: the next note would not fit.
            if let Some(next) = leaves.get(k + 1) {
                let more = 4 + next.checkpoints[0].to_string().len();
                assert!(bytes.len() + more > MAX_LEAF_LEN);
            }
            seen.extend(leaf.checkpoints.iter().cloned());
        }
        // Every checkpoint once, origins increasing across the leaves.
        let mut want = cps;
        want.reverse();
        assert_eq!(seen, want);
        // A round that fits is one leaf, as `new` makes it.
        let one = CountyLeaf::pack(5, want[..3].to_vec()).unwrap();
        assert_eq!(one, vec![CountyLeaf::new(5, want[..3].to_vec()).unwrap()]);
        assert!(CountyLeaf::pack(5, vec![]).is_err());
    }

    #[test]
    fn a_note_fits_a_leaf_alone_up_to_max_note_len() {
        let largest = cp_of_len("a.example/y", MAX_NOTE_LEN);
        let leaves = CountyLeaf::pack(u64::MAX, vec![largest.clone()]).unwrap();
        assert_eq!(leaves[0].encode().len(), MAX_LEAF_LEN);
        // With a smaller one beside it: two leaves.
        let leaves = CountyLeaf::pack(u64::MAX, vec![largest, cp("b.example/y", 1)]).unwrap();
        assert_eq!(leaves.len(), 2);
        // One byte more fits no leaf: refused, naming the department.
        let too_large = cp_of_len("c.example/y", MAX_NOTE_LEN + 1);
        let err = CountyLeaf::pack(1, vec![cp("b.example/y", 1), too_large.clone()]).unwrap_err();
        assert!(err.to_string().contains("c.example/y"), "{err}");
        assert!(CountyLeaf::new(u64::MAX, vec![too_large.clone()]).is_err());
        let mut bytes = LEAF_MAGIC.to_vec();
        bytes.extend_from_slice(format!("time {}\n", u64::MAX).as_bytes());
        let note = too_large.to_string();
        bytes.extend_from_slice(&(note.len() as u32).to_be_bytes());
        bytes.extend_from_slice(note.as_bytes());
        assert_eq!(bytes.len(), MAX_LEAF_LEN + 1);
        assert!(CountyLeaf::decode(&bytes).is_err(), "a leaf over the limit");
    }

    #[test]
    fn refuses_duplicates_empty_and_bad_time() {
        assert!(CountyLeaf::new(1, vec![]).is_err());
        assert!(CountyLeaf::new(1, vec![cp("a.example/y", 1), cp("a.example/y", 2)]).is_err());
        let bytes = CountyLeaf::new(5, vec![cp("a.example/y", 1)])
            .unwrap()
            .encode();
        let text = String::from_utf8_lossy(&bytes).replace("time 5", "time 05");
        assert!(CountyLeaf::decode(text.as_bytes()).is_err());
    }
}
