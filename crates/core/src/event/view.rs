//! Borrowed views of the event messages: the same fields as the messages
//! prost generates ([`super::pb`]), with strings and bytes as slices.
//!
//! A verifier decodes every entry of a log only to check it. With views
//! its field rules ([`super::Event`]) and catalog rules
//! ([`crate::catalog::Catalog::apply_view`]) read the entry's own bytes
//! ([`super::EventView::decode`]) and copy no string or byte field (only a
//! non-empty repeated field takes a vector of slices); a writer
//! or node that holds an owned message checks it through
//! [`pb::EventBody`]'s view of it, so each rule has one implementation.
//! `view()` borrows an owned message; `to_message()` copies a view out.

use super::pb;

/// Declares, for each listed message, the view struct with the same field
/// names, `pb::Message::view` and `View::to_message`. A field's form is
/// `str` (string), `bytes`, `strs` (repeated string), `msg(M)` (optional
/// nested message), `msgs(M)` (repeated nested message) or `copy(T)`
/// (scalar or enum, kept as is).
macro_rules! views {
    ($($(#[$doc:meta])* $name:ident { $($field:ident: $form:ident $(($inner:ty))?),* $(,)? })*) => {$(
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct $name<'a> {
            $(
                #[allow(missing_docs)]
                pub $field: views!(@ty 'a, $form $($inner)?),
            )*
        }

        impl pb::$name {
            /// This message as a view.
            pub fn view(&self) -> $name<'_> {
                $name { $($field: views!(@view $form, self.$field),)* }
            }
        }

        impl $name<'_> {
            /// The view copied into an owned message.
            pub fn to_message(&self) -> pb::$name {
                pb::$name { $($field: views!(@own $form, self.$field),)* }
            }
        }
    )*};
    (@ty $a:lifetime, str) => { &$a str };
    (@ty $a:lifetime, bytes) => { &$a [u8] };
    (@ty $a:lifetime, strs) => { Vec<&$a str> };
    (@ty $a:lifetime, msg $m:ty) => { Option<$m> };
    (@ty $a:lifetime, msgs $m:ty) => { Vec<$m> };
    (@ty $a:lifetime, copy $t:ty) => { $t };
    (@view str, $e:expr) => { $e.as_str() };
    (@view bytes, $e:expr) => { $e.as_slice() };
    (@view strs, $e:expr) => { $e.iter().map(String::as_str).collect() };
    (@view msg, $e:expr) => { $e.as_ref().map(|m| m.view()) };
    (@view msgs, $e:expr) => { $e.iter().map(|m| m.view()).collect() };
    (@view copy, $e:expr) => { $e };
    (@own str, $e:expr) => { $e.to_owned() };
    (@own bytes, $e:expr) => { $e.to_vec() };
    (@own strs, $e:expr) => { $e.iter().map(|s| (*s).to_owned()).collect() };
    (@own msg, $e:expr) => { $e.as_ref().map(|m| m.to_message()) };
    (@own msgs, $e:expr) => { $e.iter().map(|m| m.to_message()).collect() };
    (@own copy, $e:expr) => { $e };
}

views! {
    /// [`pb::Genesis`].
    Genesis { department: str, division_code: str }
    /// [`pb::Matter`].
    Matter {
        category: str,
        level1: str,
        level2: str,
        elements: strs,
        legal_basis: str,
        deadline_working_days: copy(u32),
        responsible_body: str,
        channels: strs,
        audience: copy(i32),
        audience_group: str,
        mode: copy(i32),
        periodicity: copy(i32),
        periods_from: str,
        report_row: copy(i32),
    }
    /// [`pb::MatterDefined`].
    MatterDefined { matter_id: str, matter: msg(Matter<'a>) }
    /// [`pb::MatterChanged`].
    MatterChanged { matter_id: str, matter: msg(Matter<'a>), reason: str }
    /// [`pb::MatterRetired`].
    MatterRetired { matter_id: str, reason: str, legal_basis: str }
    /// [`pb::ContentRef`].
    ContentRef { digest: bytes, length: copy(u64), media_type: str }
    /// [`pb::ItemRef`].
    ItemRef { origin: str, item_id: str, relation: copy(i32) }
    /// [`pb::Published`].
    Published {
        item_id: str,
        matter_id: str,
        title: str,
        content: msg(ContentRef<'a>),
        date_formed: str,
        legal_basis: str,
        related: msgs(ItemRef<'a>),
        period: str,
        imported: copy(bool),
        quantity: copy(u64),
    }
    /// [`pb::Amended`].
    Amended {
        item_id: str,
        title: str,
        content: msg(ContentRef<'a>),
        date_changed: str,
        reason: str,
        quantity: copy(u64),
    }
    /// [`pb::Withdrawn`].
    Withdrawn { item_id: str, reason: str, legal_basis: str }
    /// [`pb::Redacted`].
    Redacted { item_id: str, content_digest: bytes, reason: str, legal_basis: str }
    /// [`pb::RequestReceived`].
    RequestReceived { request_id: str, date_received: str, subject: str, applicant: copy(i32) }
    /// [`pb::RequestClarification`].
    RequestClarification { request_id: str, stage: copy(i32), date: str, note: str }
    /// [`pb::ThirdPartyConsultation`].
    ThirdPartyConsultation { request_id: str, stage: copy(i32), date: str, note: str }
    /// [`pb::RequestExtended`].
    RequestExtended { request_id: str, date: str, approved_by: str, reason: str }
    /// [`pb::RequestAnswered`].
    RequestAnswered {
        request_id: str,
        date_answered: str,
        decision: copy(i32),
        legal_basis: str,
        content: msg(ContentRef<'a>),
        items: msgs(ItemRef<'a>),
        outcome: copy(i32),
    }
    /// [`pb::KeyRotated`].
    KeyRotated { next_key: bytes, proof: bytes, reason: str }
    /// [`pb::ChallengeFiled`].
    ChallengeFiled { request_id: str, case_id: str, procedure: copy(i32), date_filed: str, note: str }
    /// [`pb::ChallengeConcluded`].
    ChallengeConcluded { request_id: str, case_id: str, result: copy(i32), date_concluded: str, note: str }
}

/// Declares the view of the `kind` oneof and its two conversions.
macro_rules! kind_view {
    ($($variant:ident = $name:literal),* $(,)?) => {
        /// [`pb::event_body::Kind`]: what happened.
        #[derive(Clone, Debug, PartialEq)]
        #[allow(missing_docs)]
        pub enum Kind<'a> {
            $($variant($variant<'a>),)*
        }

        impl pb::event_body::Kind {
            /// This kind as a view.
            pub fn view(&self) -> Kind<'_> {
                match self {
                    $(pb::event_body::Kind::$variant(m) => Kind::$variant(m.view()),)*
                }
            }

            /// The short stable name of the kind, as used in reports and
            /// FORMAT.md.
            pub fn name(&self) -> &'static str {
                match self {
                    $(pb::event_body::Kind::$variant(_) => $name,)*
                }
            }
        }

        impl Kind<'_> {
            /// As [`pb::event_body::Kind::name`].
            pub fn name(&self) -> &'static str {
                match self {
                    $(Kind::$variant(_) => $name,)*
                }
            }

            /// The view copied into an owned message.
            pub fn to_message(&self) -> pb::event_body::Kind {
                match self {
                    $(Kind::$variant(m) => pb::event_body::Kind::$variant(m.to_message()),)*
                }
            }
        }
    };
}

kind_view!(
    Genesis = "genesis",
    MatterDefined = "matter_defined",
    MatterChanged = "matter_changed",
    MatterRetired = "matter_retired",
    Published = "published",
    Amended = "amended",
    Withdrawn = "withdrawn",
    Redacted = "redacted",
    RequestReceived = "request_received",
    RequestClarification = "request_clarification",
    ThirdPartyConsultation = "third_party_consultation",
    RequestExtended = "request_extended",
    RequestAnswered = "request_answered",
    KeyRotated = "key_rotated",
    ChallengeFiled = "challenge_filed",
    ChallengeConcluded = "challenge_concluded",
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message of the test vectors comes back unchanged from its view.
    #[test]
    fn views_copy_back_to_the_same_message() {
        use prost::Message as _;
        let hex = include_str!("../../../../docs/vectors/entries.hex");
        for line in hex.lines().filter(|l| !l.is_empty()) {
            let entry = hex::decode(line).unwrap();
            let m = pb::EventBody::decode(&entry[3..entry.len() - 64]).unwrap();
            let kind = m.kind.unwrap();
            assert_eq!(kind.view().to_message(), kind);
        }
    }
}
