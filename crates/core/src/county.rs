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
//! least one checkpoint.

use crate::Error;
use crate::checkpoint::SignedCheckpoint;

/// The first bytes of every county leaf.
pub const LEAF_MAGIC: &[u8] = b"gongkai/county-leaf/v1\n";

/// Largest county leaf, bytes.
pub const MAX_LEAF_LEN: usize = 16 << 20;

/// A county leaf: when it was made and the cosigned checkpoints it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountyLeaf {
    /// Unix seconds when the county made the leaf.
    pub time_secs: u64,
    /// Cosigned department checkpoints, ordered by origin, origins unique.
    pub checkpoints: Vec<SignedCheckpoint>,
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
    pub fn new(
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
        if leaf.encode().len() > MAX_LEAF_LEN {
            return Err(bad("larger than the 16 MiB limit"));
        }
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
            return Err(bad("larger than the 16 MiB limit"));
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
