//! A decoder that accepts only canonical event bodies (FORMAT.md § Event
//! body, rule 1), without prost's generic decoding and without encoding the
//! message again to compare.
//!
//! [`decode`] returns the message exactly when the bytes are what prost
//! encodes for it: fields in tag order, each once (repeated fields
//! consecutively), no unknown field, minimal varints, default-valued
//! scalars and empty strings and bytes absent, exactly one `kind`. For
//! anything else it returns `None`, and the caller asks prost's decoding
//! and the re-encoding only to name the error. The verdict is this
//! decoder's, so it must agree with the re-encoding rule both ways: never
//! accept a body that rule refuses, never refuse one it accepts, and never
//! return a message other than prost's. Debug builds check all three on
//! every body ([`super::EventView::decode`]), so the whole test suite
//! cross-checks it, and the tests below check it on random, mutated and
//! reordered bodies.
//!
//! Its result borrows every string and byte field from the body, so a
//! verifier decodes and checks an entry without copying them.

use super::pb;
use super::view::{self, Kind};

/// One field's payload, as its wire type gives it.
#[derive(Clone, Copy)]
enum Value<'a> {
    Varint(u64),
    Len(&'a [u8]),
}

/// Reads the fields of one message in order. `next` refuses a field number
/// lower than the one before; a field number equal to the one before is
/// reported as a repeat, which only repeated fields accept.
struct Fields<'a> {
    buf: &'a [u8],
    last: u32,
}

/// Reads a varint at the front of `buf`, only in its minimal encoding.
fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut value: u64 = 0;
    for i in 0..10 {
        let (&byte, rest) = buf.split_first()?;
        *buf = rest;
        if i == 9 && byte > 1 {
            return None;
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            // A last byte of zero (after the first) is a longer encoding of
            // a smaller number.
            return (i == 0 || byte != 0).then_some(value);
        }
    }
    None
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8]) -> Fields<'a> {
        Fields { buf, last: 0 }
    }

    /// The next field: `Some(None)` at the end, `None` on anything the
    /// canonical form does not allow here.
    #[allow(clippy::option_option)]
    fn next(&mut self) -> Option<Option<(u32, bool, Value<'a>)>> {
        if self.buf.is_empty() {
            return Some(None);
        }
        let key = varint(&mut self.buf)?;
        let number = u32::try_from(key >> 3).ok()?;
        if number == 0 || number < self.last {
            return None;
        }
        let repeat = number == self.last;
        self.last = number;
        let value = match key & 7 {
            0 => Value::Varint(varint(&mut self.buf)?),
            2 => {
                let len = usize::try_from(varint(&mut self.buf)?).ok()?;
                if len > self.buf.len() {
                    return None;
                }
                let (payload, rest) = self.buf.split_at(len);
                self.buf = rest;
                Value::Len(payload)
            }
            _ => return None,
        };
        Some(Some((number, repeat, value)))
    }
}

/// A singular `string`: present only when not empty.
fn string(v: Value<'_>) -> Option<&str> {
    let s = repeated_string(v)?;
    (!s.is_empty()).then_some(s)
}

/// An element of a `repeated string`: may be empty.
fn repeated_string(v: Value<'_>) -> Option<&str> {
    match v {
        Value::Len(b) => std::str::from_utf8(b).ok(),
        Value::Varint(_) => None,
    }
}

/// A singular `bytes` field: present only when not empty.
fn bytes(v: Value<'_>) -> Option<&[u8]> {
    match v {
        Value::Len(b) if !b.is_empty() => Some(b),
        _ => None,
    }
}

/// A `uint64`: present only when not zero.
fn uint64(v: Value<'_>) -> Option<u64> {
    match v {
        Value::Varint(n) if n != 0 => Some(n),
        _ => None,
    }
}

/// A `uint32`: present only when not zero; prost would truncate a larger
/// number, which then encodes differently.
fn uint32(v: Value<'_>) -> Option<u32> {
    u32::try_from(uint64(v)?).ok()
}

/// An enum (`int32` on the wire): present only when not zero; a negative
/// value is its 64-bit sign extension, as prost encodes it.
fn enumeration(v: Value<'_>) -> Option<i32> {
    let n = uint64(v)?;
    // Truncation intended: the value is canonical only if widening the
    // truncated value gives it back.
    #[allow(clippy::cast_possible_truncation)]
    let x = n as i32;
    (i64::from(x).cast_unsigned() == n).then_some(x)
}

/// A `bool`: present only when true, encoded as 1.
fn boolean(v: Value<'_>) -> Option<bool> {
    match v {
        Value::Varint(1) => Some(true),
        _ => None,
    }
}

/// A nested message (may be empty).
fn message<'a, T>(v: Value<'a>, decode: fn(&'a [u8]) -> Option<T>) -> Option<T> {
    match v {
        Value::Len(b) => decode(b),
        Value::Varint(_) => None,
    }
}

/// Decodes one message type: `$field => $target = $how` arms for singular
/// fields and `$field => repeated $target = $how` for repeated ones.
macro_rules! decoder {
    ($name:ident, $ty:ident, { $($arms:tt)* }) => {
        fn $name(buf: &[u8]) -> Option<view::$ty<'_>> {
            let mut m = view::$ty::default();
            let mut fields = Fields::new(buf);
            while let Some((number, repeat, v)) = fields.next()? {
                decoder!(@arms m, number, repeat, v, { $($arms)* });
            }
            Some(m)
        }
    };
    (@arms $m:ident, $number:ident, $repeat:ident, $v:ident, { $($n:literal => $kind:tt $($field:ident).+ = $how:expr),* $(,)? }) => {
        match $number {
            $($n => decoder!(@one $m, $repeat, $v, $kind $($field).+ = $how),)*
            _ => return None,
        }
    };
    (@one $m:ident, $repeat:ident, $v:ident, one $($field:ident).+ = $how:expr) => {{
        if $repeat {
            return None;
        }
        $m.$($field).+ = $how($v)?;
    }};
    (@one $m:ident, $repeat:ident, $v:ident, many $($field:ident).+ = $how:expr) => {{
        $m.$($field).+.push($how($v)?);
    }};
}

decoder!(genesis, Genesis, {
    1 => one department = string,
    2 => one division_code = string,
});

decoder!(matter, Matter, {
    1 => one category = string,
    2 => one level1 = string,
    3 => one level2 = string,
    4 => many elements = repeated_string,
    5 => one legal_basis = string,
    6 => one deadline_working_days = uint32,
    7 => one responsible_body = string,
    8 => many channels = repeated_string,
    9 => one audience = enumeration,
    10 => one audience_group = string,
    11 => one mode = enumeration,
    12 => one periodicity = enumeration,
    13 => one periods_from = string,
    14 => one report_row = enumeration,
});

fn some_matter(v: Value<'_>) -> Option<Option<view::Matter<'_>>> {
    message(v, matter).map(Some)
}

fn some_content(v: Value<'_>) -> Option<Option<view::ContentRef<'_>>> {
    message(v, content_ref).map(Some)
}

fn item_ref_element(v: Value<'_>) -> Option<view::ItemRef<'_>> {
    message(v, item_ref)
}

decoder!(matter_defined, MatterDefined, {
    1 => one matter_id = string,
    2 => one matter = some_matter,
});

decoder!(matter_changed, MatterChanged, {
    1 => one matter_id = string,
    2 => one matter = some_matter,
    3 => one reason = string,
});

decoder!(matter_retired, MatterRetired, {
    1 => one matter_id = string,
    2 => one reason = string,
    3 => one legal_basis = string,
});

decoder!(content_ref, ContentRef, {
    1 => one digest = bytes,
    2 => one length = uint64,
    3 => one media_type = string,
});

decoder!(item_ref, ItemRef, {
    1 => one origin = string,
    2 => one item_id = string,
    3 => one relation = enumeration,
});

decoder!(published, Published, {
    1 => one item_id = string,
    2 => one matter_id = string,
    3 => one title = string,
    4 => one content = some_content,
    5 => one date_formed = string,
    6 => one legal_basis = string,
    7 => many related = item_ref_element,
    8 => one period = string,
    9 => one imported = boolean,
    10 => one quantity = uint64,
});

decoder!(amended, Amended, {
    1 => one item_id = string,
    2 => one title = string,
    3 => one content = some_content,
    4 => one date_changed = string,
    5 => one reason = string,
    6 => one quantity = uint64,
});

decoder!(withdrawn, Withdrawn, {
    1 => one item_id = string,
    2 => one reason = string,
    3 => one legal_basis = string,
});

decoder!(redacted, Redacted, {
    1 => one item_id = string,
    2 => one content_digest = bytes,
    3 => one reason = string,
    4 => one legal_basis = string,
});

decoder!(request_received, RequestReceived, {
    1 => one request_id = string,
    2 => one date_received = string,
    3 => one subject = string,
    4 => one applicant = enumeration,
});

decoder!(request_clarification, RequestClarification, {
    1 => one request_id = string,
    2 => one stage = enumeration,
    3 => one date = string,
    4 => one note = string,
});

decoder!(third_party_consultation, ThirdPartyConsultation, {
    1 => one request_id = string,
    2 => one stage = enumeration,
    3 => one date = string,
    4 => one note = string,
});

decoder!(request_extended, RequestExtended, {
    1 => one request_id = string,
    2 => one date = string,
    3 => one approved_by = string,
    4 => one reason = string,
});

decoder!(request_answered, RequestAnswered, {
    1 => one request_id = string,
    2 => one date_answered = string,
    3 => one decision = enumeration,
    4 => one legal_basis = string,
    5 => one content = some_content,
    6 => many items = item_ref_element,
    7 => one outcome = enumeration,
});

decoder!(key_rotated, KeyRotated, {
    1 => one next_key = bytes,
    2 => one proof = bytes,
    3 => one reason = string,
});

decoder!(challenge_filed, ChallengeFiled, {
    1 => one request_id = string,
    2 => one case_id = string,
    3 => one procedure = enumeration,
    4 => one date_filed = string,
    5 => one note = string,
});

decoder!(challenge_concluded, ChallengeConcluded, {
    1 => one request_id = string,
    2 => one case_id = string,
    3 => one result = enumeration,
    4 => one date_concluded = string,
    5 => one note = string,
});

/// The `kind` variant in field `number`, decoded from `v`.
fn kind(number: u32, v: Value<'_>) -> Option<Kind<'_>> {
    Some(match number {
        16 => Kind::Genesis(message(v, genesis)?),
        17 => Kind::MatterDefined(message(v, matter_defined)?),
        18 => Kind::MatterChanged(message(v, matter_changed)?),
        19 => Kind::MatterRetired(message(v, matter_retired)?),
        20 => Kind::Published(message(v, published)?),
        21 => Kind::Amended(message(v, amended)?),
        22 => Kind::Withdrawn(message(v, withdrawn)?),
        23 => Kind::Redacted(message(v, redacted)?),
        24 => Kind::RequestReceived(message(v, request_received)?),
        25 => Kind::RequestClarification(message(v, request_clarification)?),
        26 => Kind::ThirdPartyConsultation(message(v, third_party_consultation)?),
        27 => Kind::RequestExtended(message(v, request_extended)?),
        28 => Kind::RequestAnswered(message(v, request_answered)?),
        29 => Kind::KeyRotated(message(v, key_rotated)?),
        30 => Kind::ChallengeFiled(message(v, challenge_filed)?),
        31 => Kind::ChallengeConcluded(message(v, challenge_concluded)?),
        _ => return None,
    })
}

/// A canonical event body, every field borrowed from the body's bytes:
/// the parts [`super::EventView`] is built from.
#[derive(Debug, PartialEq)]
pub(crate) struct Body<'a> {
    pub origin: &'a str,
    pub index: u64,
    pub prev_hash: &'a [u8],
    pub time_ms: u64,
    pub signer: &'a [u8],
    pub kind: Kind<'a>,
}

impl Body<'_> {
    /// The same body as prost's message.
    pub(crate) fn to_message(&self) -> pb::EventBody {
        pb::EventBody {
            origin: self.origin.to_owned(),
            index: self.index,
            prev_hash: self.prev_hash.to_vec(),
            time_ms: self.time_ms,
            signer: self.signer.to_vec(),
            kind: Some(self.kind.to_message()),
        }
    }
}

/// The event body `body` encodes, if `body` is canonical and has a `kind`
/// (see the module documentation); `None` leaves the verdict to prost.
pub(crate) fn decode(body: &[u8]) -> Option<Body<'_>> {
    let mut origin = "";
    let (mut index, mut time_ms) = (0, 0);
    let (mut prev_hash, mut signer): (&[u8], &[u8]) = (&[], &[]);
    let mut kind_found = None;
    let mut fields = Fields::new(body);
    while let Some((number, repeat, v)) = fields.next()? {
        if repeat {
            return None;
        }
        match number {
            1 => origin = string(v)?,
            2 => index = uint64(v)?,
            3 => prev_hash = bytes(v)?,
            4 => time_ms = uint64(v)?,
            5 => signer = bytes(v)?,
            // Fields come in increasing order, so a second variant of the
            // oneof would be a later field: prost keeps only the last.
            16..=31 if kind_found.is_none() => kind_found = Some(kind(number, v)?),
            _ => return None,
        }
    }
    Some(Body {
        origin,
        index,
        prev_hash,
        time_ms,
        signer,
        kind: kind_found?,
    })
}

#[cfg(test)]
mod tests {
    use proptest::collection::vec;
    use proptest::prelude::*;
    use prost::Message as _;

    use super::*;
    use crate::event::pb::event_body::Kind;

    #[test]
    fn varints_only_in_their_minimal_encoding() {
        let read = |b: &[u8]| {
            let mut s = b;
            varint(&mut s).filter(|_| s.is_empty())
        };
        assert_eq!(read(&[0]), Some(0));
        assert_eq!(read(&[1]), Some(1));
        assert_eq!(read(&[0x96, 0x01]), Some(150));
        assert_eq!(read(&[0x80, 0x00]), None, "0 in two bytes");
        assert_eq!(read(&[0x81, 0x80, 0x00]), None, "1 in three bytes");
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(read(&max), Some(u64::MAX));
        let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(read(&over), None, "more than 64 bits");
        assert_eq!(read(&[0x80]), None, "truncated");
    }

    #[test]
    fn enums_match_prost_int32() {
        assert_eq!(enumeration(Value::Varint(3)), Some(3));
        assert_eq!(enumeration(Value::Varint(0)), None, "default is absent");
        assert_eq!(
            enumeration(Value::Varint((-2i64).cast_unsigned())),
            Some(-2)
        );
        // prost would decode 2^32 + 3 as 3 and encode it in one byte.
        assert_eq!(enumeration(Value::Varint((1 << 32) + 3)), None);
        assert_eq!(uint32(Value::Varint(u64::from(u32::MAX) + 1)), None);
        assert_eq!(boolean(Value::Varint(2)), None, "true is encoded as 1");
    }

    /// Every body of the published test vectors (every event kind) takes
    /// the fast path, and gives prost's message.
    #[test]
    fn the_vectors_take_the_fast_path() {
        let hex = include_str!("../../../../docs/vectors/entries.hex");
        let mut n = 0;
        for line in hex.lines().filter(|l| !l.is_empty()) {
            let entry = hex::decode(line).unwrap();
            let body = &entry[3..entry.len() - 64];
            let fast = decode(body).map(|b| b.to_message());
            assert_eq!(fast, Some(pb::EventBody::decode(body).unwrap()));
            n += 1;
        }
        assert!(n >= 16, "{n} vectors");
    }

    /// The fast decoder's verdict must be the re-encoding rule's: `Some(m)`
    /// exactly when prost decodes `bytes` to a message `m` with a kind, and
    /// `m` encodes to `bytes` again.
    fn agrees(bytes: &[u8]) -> Result<(), TestCaseError> {
        let by_rule = pb::EventBody::decode(bytes)
            .ok()
            .filter(|m| m.kind.is_some() && m.encode_to_vec() == bytes);
        prop_assert_eq!(decode(bytes).map(|b| b.to_message()), by_rule);
        Ok(())
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![Just(String::new()), "[a-z0-9-]{1,6}", "\\PC{1,4}"]
    }

    fn blob() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![Just(Vec::new()), vec(any::<u8>(), 1..40)]
    }

    fn number() -> impl Strategy<Value = u64> {
        prop_oneof![Just(0), 1..300u64, any::<u64>()]
    }

    fn small() -> impl Strategy<Value = u32> {
        prop_oneof![Just(0), 1..300u32, any::<u32>()]
    }

    fn enum_value() -> impl Strategy<Value = i32> {
        prop_oneof![Just(0), 1..8i32, any::<i32>()]
    }

    fn content() -> impl Strategy<Value = Option<pb::ContentRef>> {
        proptest::option::of(
            (blob(), number(), text()).prop_map(|(digest, length, media_type)| pb::ContentRef {
                digest,
                length,
                media_type,
            }),
        )
    }

    fn refs() -> impl Strategy<Value = Vec<pb::ItemRef>> {
        vec(
            (text(), text(), enum_value()).prop_map(|(origin, item_id, relation)| pb::ItemRef {
                origin,
                item_id,
                relation,
            }),
            0..3,
        )
    }

    fn matter() -> impl Strategy<Value = Option<pb::Matter>> {
        let head = (text(), text(), text(), vec(text(), 0..3), text(), small());
        let tail = (
            text(),
            vec(text(), 0..3),
            enum_value(),
            text(),
            enum_value(),
            enum_value(),
            text(),
            enum_value(),
        );
        proptest::option::of((head, tail).prop_map(|(h, t)| pb::Matter {
            category: h.0,
            level1: h.1,
            level2: h.2,
            elements: h.3,
            legal_basis: h.4,
            deadline_working_days: h.5,
            responsible_body: t.0,
            channels: t.1,
            audience: t.2,
            audience_group: t.3,
            mode: t.4,
            periodicity: t.5,
            periods_from: t.6,
            report_row: t.7,
        }))
    }

    fn kind() -> impl Strategy<Value = Kind> {
        prop_oneof![
            (text(), text()).prop_map(|(department, division_code)| Kind::Genesis(pb::Genesis {
                department,
                division_code
            })),
            (text(), matter()).prop_map(|(matter_id, matter)| Kind::MatterDefined(
                pb::MatterDefined { matter_id, matter }
            )),
            (text(), matter(), text()).prop_map(|(matter_id, matter, reason)| {
                Kind::MatterChanged(pb::MatterChanged {
                    matter_id,
                    matter,
                    reason,
                })
            }),
            (text(), text(), text()).prop_map(|(matter_id, reason, legal_basis)| {
                Kind::MatterRetired(pb::MatterRetired {
                    matter_id,
                    reason,
                    legal_basis,
                })
            }),
            (
                (text(), text(), text(), content()),
                (text(), text(), refs(), text(), any::<bool>(), number())
            )
                .prop_map(|(a, b)| Kind::Published(pb::Published {
                    item_id: a.0,
                    matter_id: a.1,
                    title: a.2,
                    content: a.3,
                    date_formed: b.0,
                    legal_basis: b.1,
                    related: b.2,
                    period: b.3,
                    imported: b.4,
                    quantity: b.5,
                })),
            (text(), text(), content(), text(), text(), number()).prop_map(|a| Kind::Amended(
                pb::Amended {
                    item_id: a.0,
                    title: a.1,
                    content: a.2,
                    date_changed: a.3,
                    reason: a.4,
                    quantity: a.5,
                }
            )),
            (text(), text(), text()).prop_map(|a| Kind::Withdrawn(pb::Withdrawn {
                item_id: a.0,
                reason: a.1,
                legal_basis: a.2,
            })),
            (text(), blob(), text(), text()).prop_map(|a| Kind::Redacted(pb::Redacted {
                item_id: a.0,
                content_digest: a.1,
                reason: a.2,
                legal_basis: a.3,
            })),
            (text(), text(), text(), enum_value()).prop_map(|a| Kind::RequestReceived(
                pb::RequestReceived {
                    request_id: a.0,
                    date_received: a.1,
                    subject: a.2,
                    applicant: a.3,
                }
            )),
            (text(), enum_value(), text(), text()).prop_map(|a| Kind::RequestClarification(
                pb::RequestClarification {
                    request_id: a.0,
                    stage: a.1,
                    date: a.2,
                    note: a.3,
                }
            )),
            (text(), enum_value(), text(), text()).prop_map(|a| Kind::ThirdPartyConsultation(
                pb::ThirdPartyConsultation {
                    request_id: a.0,
                    stage: a.1,
                    date: a.2,
                    note: a.3,
                }
            )),
            (text(), text(), text(), text()).prop_map(|a| Kind::RequestExtended(
                pb::RequestExtended {
                    request_id: a.0,
                    date: a.1,
                    approved_by: a.2,
                    reason: a.3,
                }
            )),
            (
                text(),
                text(),
                enum_value(),
                text(),
                content(),
                refs(),
                enum_value()
            )
                .prop_map(|a| {
                    Kind::RequestAnswered(pb::RequestAnswered {
                        request_id: a.0,
                        date_answered: a.1,
                        decision: a.2,
                        legal_basis: a.3,
                        content: a.4,
                        items: a.5,
                        outcome: a.6,
                    })
                }),
            (blob(), blob(), text()).prop_map(|a| Kind::KeyRotated(pb::KeyRotated {
                next_key: a.0,
                proof: a.1,
                reason: a.2,
            })),
            (text(), text(), enum_value(), text(), text()).prop_map(|a| Kind::ChallengeFiled(
                pb::ChallengeFiled {
                    request_id: a.0,
                    case_id: a.1,
                    procedure: a.2,
                    date_filed: a.3,
                    note: a.4,
                }
            )),
            (text(), text(), enum_value(), text(), text()).prop_map(|a| {
                Kind::ChallengeConcluded(pb::ChallengeConcluded {
                    request_id: a.0,
                    case_id: a.1,
                    result: a.2,
                    date_concluded: a.3,
                    note: a.4,
                })
            }),
        ]
    }

    fn body() -> impl Strategy<Value = pb::EventBody> {
        (
            text(),
            number(),
            blob(),
            number(),
            blob(),
            proptest::option::of(kind()),
        )
            .prop_map(
                |(origin, index, prev_hash, time_ms, signer, kind)| pb::EventBody {
                    origin,
                    index,
                    prev_hash,
                    time_ms,
                    signer,
                    kind,
                },
            )
    }

    /// The top-level fields of `m`, each encoded on its own.
    fn parts(m: &pb::EventBody) -> Vec<Vec<u8>> {
        let none = pb::EventBody::default;
        [
            pb::EventBody {
                origin: m.origin.clone(),
                ..none()
            },
            pb::EventBody {
                index: m.index,
                ..none()
            },
            pb::EventBody {
                prev_hash: m.prev_hash.clone(),
                ..none()
            },
            pb::EventBody {
                time_ms: m.time_ms,
                ..none()
            },
            pb::EventBody {
                signer: m.signer.clone(),
                ..none()
            },
            pb::EventBody {
                kind: m.kind.clone(),
                ..none()
            },
        ]
        .iter()
        .map(prost::Message::encode_to_vec)
        .filter(|b| !b.is_empty())
        .collect()
    }

    fn put_varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    /// Field `number` with a length-delimited payload, encoded.
    fn len_field(number: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, u64::from(number) << 3 | 2);
        put_varint(&mut out, payload.len() as u64);
        out.extend_from_slice(payload);
        out
    }

    /// Field `number` with a varint payload, encoded.
    fn varint_field(number: u32, value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, u64::from(number) << 3);
        put_varint(&mut out, value);
        out
    }

    /// Splits well-formed message bytes into its fields (number, whole
    /// field bytes, payload of a length-delimited field); written apart
    /// from the decoder under test.
    fn split(mut b: &[u8]) -> Vec<(u32, Vec<u8>, Option<Vec<u8>>)> {
        let get = |b: &mut &[u8]| {
            let mut v = 0u64;
            for shift in (0..64).step_by(7) {
                let (&x, rest) = b.split_first().unwrap();
                *b = rest;
                v |= u64::from(x & 0x7f) << shift;
                if x & 0x80 == 0 {
                    break;
                }
            }
            v
        };
        let mut out = Vec::new();
        while !b.is_empty() {
            let start = b;
            let key = get(&mut b);
            let payload = if key & 7 == 2 {
                let len = get(&mut b) as usize;
                let (p, rest) = b.split_at(len);
                b = rest;
                Some(p.to_vec())
            } else {
                get(&mut b);
                None
            };
            let whole = start[..start.len() - b.len()].to_vec();
            out.push(((key >> 3) as u32, whole, payload));
        }
        out
    }

    /// Shapes prost decodes but never encodes, one per rule of the fast
    /// decoder, each inside an otherwise canonical body.
    #[test]
    fn non_canonical_shapes_inside_a_kind_are_refused() {
        let head = [len_field(1, b"o"), varint_field(2, 1)].concat();
        let body = |kinds: &[Vec<u8>]| [head.clone(), kinds.concat()].concat();
        let genesis = |inner: &[u8]| len_field(16, inner);
        let good = body(&[genesis(&len_field(1, b"dept"))]);
        assert!(decode(&good).is_some());
        let cases = [
            ("an empty string", body(&[genesis(&len_field(1, b""))])),
            ("empty bytes", body(&[len_field(23, &len_field(2, b""))])),
            (
                "a field twice",
                body(&[genesis(&[len_field(1, b"a"), len_field(1, b"b")].concat())]),
            ),
            (
                "two kinds",
                body(&[genesis(&[]), len_field(22, &len_field(1, b"x"))]),
            ),
            (
                "a zero uint32",
                body(&[len_field(17, &len_field(2, &varint_field(6, 0)))]),
            ),
            ("a false bool", body(&[len_field(20, &varint_field(9, 0))])),
            ("an unknown field", body(&[genesis(&len_field(3, b"x"))])),
            (
                "a varint field as bytes",
                body(&[len_field(20, &len_field(9, b"\x01"))]),
            ),
            ("no kind", head.clone()),
        ];
        for (what, bytes) in cases {
            assert_eq!(decode(&bytes), None, "{what}");
            let again = pb::EventBody::decode(bytes.as_slice()).map(|m| m.encode_to_vec());
            assert!(
                again.as_ref() != Ok(&bytes) || what == "no kind",
                "{what}: the re-encoding rule accepts it"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Inside the kind's message: a field repeated or fields in another
        /// order are refused.
        #[test]
        fn nested_fields_out_of_shape_are_refused(
            m in body(),
            pick in any::<prop::sample::Index>(),
        ) {
            let bytes = m.encode_to_vec();
            let mut top = split(&bytes);
            if let Some((number, _, Some(payload))) = top.pop().filter(|t| t.0 >= 16) {
                let inner = split(&payload);
                let rebuild = |fields: &[Vec<u8>]| {
                    let mut out: Vec<u8> = top.iter().flat_map(|t| t.1.clone()).collect();
                    out.extend(len_field(number, &fields.concat()));
                    out
                };
                let fields: Vec<Vec<u8>> = inner.iter().map(|t| t.1.clone()).collect();
                prop_assert_eq!(decode(&rebuild(&fields)).map(|b| b.to_message()), Some(m.clone()));
                if !fields.is_empty() {
                    let i = pick.index(fields.len());
                    let mut doubled = fields.clone();
                    doubled.insert(i, fields[i].clone());
                    // Elements of a repeated field may follow each other.
                    let repeated = matches!((number, inner[i].0), (20, 7) | (28, 6));
                    if !repeated {
                        prop_assert!(decode(&rebuild(&doubled)).is_none());
                    }
                    agrees(&rebuild(&doubled))?;
                }
                let distinct = inner.windows(2).any(|w| w[0].0 != w[1].0);
                if distinct {
                    let mut reordered = fields.clone();
                    reordered.reverse();
                    prop_assert!(decode(&rebuild(&reordered)).is_none());
                    agrees(&rebuild(&reordered))?;
                }
            }
        }

        /// Every canonical body with a kind takes the fast path and gives
        /// prost's message; one without a kind is refused. Every message
        /// comes back unchanged from its view.
        #[test]
        fn canonical_bodies_decode_as_prost_decodes_them(m in body()) {
            let bytes = m.encode_to_vec();
            let want = m.kind.is_some().then(|| m.clone());
            prop_assert_eq!(decode(&bytes).map(|b| b.to_message()), want);
            if let Some(kind) = &m.kind {
                prop_assert_eq!(&kind.view().to_message(), kind);
            }
        }

        /// Bytes changed in place, inserted, removed or cut off: the fast
        /// decoder accepts exactly what the re-encoding rule accepts.
        #[test]
        fn mutated_bodies_get_the_reencoding_rules_verdict(
            m in body(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            how in 0..4u8,
        ) {
            let mut bytes = m.encode_to_vec();
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                match how {
                    0 => bytes[i] ^= byte | 1,
                    1 => bytes.insert(i, byte),
                    2 => { bytes.remove(i); }
                    _ => bytes.truncate(i),
                }
            }
            agrees(&bytes)?;
        }

        /// The same fields in another order, or one of them twice: prost
        /// decodes them, the fast decoder must not accept them.
        #[test]
        fn reordered_or_repeated_fields_are_refused(
            m in body(),
            order in any::<prop::sample::Index>(),
            twice in any::<prop::sample::Index>(),
        ) {
            let mut parts = parts(&m);
            let n = parts.len();
            if n >= 1 {
                let i = twice.index(n);
                let mut doubled = parts.clone();
                doubled.insert(i, parts[i].clone());
                prop_assert!(decode(&doubled.concat()).is_none());
                agrees(&doubled.concat())?;
            }
            if n >= 2 {
                parts.rotate_left(1 + order.index(n - 1));
                let reordered = parts.concat();
                prop_assert_eq!(decode(&reordered), None);
                agrees(&reordered)?;
            }
        }

        #[test]
        fn random_bytes_get_the_reencoding_rules_verdict(bytes in vec(any::<u8>(), 0..200)) {
            agrees(&bytes)?;
        }
    }
}
