//! Finding cids in error messages, as an operator reading the director's
//! task log would: a word of the message is a cid when it has the shape of
//! a cid the cloud has already handed out (`i-` and 17 hex digits, a UUID,
//! an integer of the same length), whichever cloud it is.

use std::collections::BTreeSet;

/// One piece of a cid's shape: literal text, a run of hex digits of a given
/// length, or (when the whole cid is a number) a run of decimal digits.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Piece {
    Text(String),
    Hex(usize),
    Number(usize),
}

/// The shape of a cid: `i-0123456789abcdef0` is `i-` + 17 hex digits;
/// `1f0e…-…` (a UUID) is 8-4-4-4-12 hex digits; `12345678` is 8 digits.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Shape(Vec<Piece>);

/// Runs of hex digits shorter than this are literal text (`snap`, `ami`,
/// `vm`, a lone `a`), so prefixes keep their letters.
const MIN_HEX_RUN: usize = 4;

impl Shape {
    /// The shape of a cid, or None for a word too plain to be told from
    /// prose (no digit in it: `server`, `volume`).
    pub fn of(cid: &str) -> Option<Shape> {
        if cid.is_empty() || !cid.bytes().any(|b| b.is_ascii_digit()) {
            return None;
        }
        if cid.bytes().all(|b| b.is_ascii_digit()) {
            return Some(Shape(vec![Piece::Number(cid.len())]));
        }
        let mut pieces = Vec::new();
        let bytes = cid.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let run = bytes[i..]
                .iter()
                .take_while(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                .count();
            if run >= MIN_HEX_RUN {
                pieces.push(Piece::Hex(run));
                i += run;
            } else {
                let step = run.max(1);
                let text = &cid[i..i + step];
                match pieces.last_mut() {
                    Some(Piece::Text(t)) => t.push_str(text),
                    _ => pieces.push(Piece::Text(text.to_owned())),
                }
                i += step;
            }
        }
        Some(Shape(pieces))
    }
}

/// The words of a message that could be cids: maximal runs of letters,
/// digits, `-` and `_`, with trailing `-`/`_` dropped.
pub fn words(message: &str) -> impl Iterator<Item = &str> {
    message
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .map(|w| w.trim_matches(|c| c == '-' || c == '_'))
        .filter(|w| !w.is_empty())
}

/// The shapes learned so far from cids the calls returned (and what the
/// cloud's inventory lists), and the cids they pick out of messages.
#[derive(Clone, Debug, Default)]
pub struct Shapes(BTreeSet<Shape>);

impl Shapes {
    pub fn learn(&mut self, cid: &str) {
        if let Some(s) = Shape::of(cid) {
            self.0.insert(s);
        }
    }

    pub fn learn_all<'a>(&mut self, cids: impl IntoIterator<Item = &'a String>) {
        for c in cids {
            self.learn(c);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The words of `message` shaped like a known cid, in order, once each.
    pub fn extract(&self, message: &str) -> Vec<String> {
        let mut seen = BTreeSet::new();
        words(message)
            .filter(|w| Shape::of(w).is_some_and(|s| self.0.contains(&s)))
            .filter(|w| seen.insert(w.to_string()))
            .map(str::to_owned)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shapes(cids: &[&str]) -> Shapes {
        let mut s = Shapes::default();
        for c in cids {
            s.learn(c);
        }
        s
    }

    #[test]
    fn shapes_keep_prefixes_and_count_hex_digits() {
        assert_eq!(
            Shape::of("i-0123456789abcdef0"),
            Some(Shape(vec![Piece::Text("i-".into()), Piece::Hex(17)]))
        );
        assert_eq!(
            Shape::of("snap-0a1b2c3d4e5f60718"),
            Some(Shape(vec![Piece::Text("snap-".into()), Piece::Hex(17)]))
        );
        assert_eq!(Shape::of("12345678"), Some(Shape(vec![Piece::Number(8)])));
        // Two UUIDs have one shape even when a group is all digits.
        assert_eq!(
            Shape::of("0f8fad5b-d9cb-469f-a165-70867728950e"),
            Shape::of("7c9e6679-7425-40de-944b-e07fc1f90ae7")
        );
        assert_eq!(Shape::of("server"), None);
        assert_eq!(Shape::of(""), None);
    }

    #[test]
    fn extracts_words_shaped_like_known_cids_from_any_cloud() {
        let aws = shapes(&["i-0123456789abcdef0", "vol-0fedcba9876543210"]);
        assert_eq!(
            aws.extract(
                "VMCreationFailed: instance i-0aaaaaaaaaaaaaaaa (with vol-0bbbbbbbbbbbbbbbb) left; \
                 request 500 in us-east-1; i-0aaaaaaaaaaaaaaaa again"
            ),
            vec!["i-0aaaaaaaaaaaaaaaa", "vol-0bbbbbbbbbbbbbbbb"]
        );
        let openstack = shapes(&["0f8fad5b-d9cb-469f-a165-70867728950e"]);
        assert_eq!(
            openstack.extract("server '7c9e6679-7425-40de-944b-e07fc1f90ae7' in ERROR."),
            vec!["7c9e6679-7425-40de-944b-e07fc1f90ae7"]
        );
        // SoftLayer's integer ids: only numbers of a known length.
        let softlayer = shapes(&["81234567"]);
        assert_eq!(
            softlayer.extract("guest 81299999 has an active transaction (HTTP 500, 1024 MB)"),
            vec!["81299999"]
        );
        assert!(Shapes::default().extract("i-0123456789abcdef0").is_empty());
    }

    #[test]
    fn a_cid_with_a_prefix_is_not_found_inside_another_word() {
        let s = shapes(&["vm-0f8fad5bd9cb469fa16570867728950e"]);
        assert!(s
            .extract("disk-0f8fad5bd9cb469fa16570867728950e")
            .is_empty());
        assert_eq!(
            s.extract("(vm-1f8fad5bd9cb469fa16570867728950e)"),
            vec!["vm-1f8fad5bd9cb469fa16570867728950e"]
        );
    }
}
