//! Identifiers and secrets, each parsed once: past its parser nothing is a bare
//! `String`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a field was refused. The message never repeats a secret or a card number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(String);

impl ParseError {
    pub fn new(msg: impl Into<String>) -> ParseError {
        ParseError(msg.into())
    }
}

/// The longest identifier (event id, transaction id, card token) accepted.
pub const ID_LEN_MAX: usize = 64;

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

fn plain_id(what: &str, s: &str) -> Result<String, ParseError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(ParseError::new(format!("{what} is empty")));
    }
    if t.chars().count() > ID_LEN_MAX {
        return Err(ParseError::new(format!("{what} is longer than {ID_LEN_MAX} characters")));
    }
    if t.chars().any(|c| c.is_control()) {
        return Err(ParseError::new(format!("{what} contains a control character")));
    }
    Ok(t.to_string())
}

macro_rules! string_id {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// A merchant id: exactly 9 digits. Read through its parser; written as the
/// text it holds. The digits are kept inline, not on the heap: every event,
/// statement and per-merchant map of the folds carries one, and a replay
/// clones, hashes and compares them by the million.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MerchantId([u8; 9]);

impl MerchantId {
    pub fn parse(s: &str) -> Result<MerchantId, ParseError> {
        let t = s.trim();
        match <[u8; 9]>::try_from(t.as_bytes()) {
            Ok(d) if digits(t, 9) => Ok(MerchantId(d)),
            _ => Err(ParseError::new(format!("merchant_id '{s}' is not 9 digits"))),
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("a merchant id is ASCII digits")
    }
}

impl fmt::Display for MerchantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for MerchantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MerchantId({:?})", self.as_str())
    }
}

impl Serialize for MerchantId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MerchantId {
    /// Through `parse`, from the text as read (borrowed or not: no copy).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<MerchantId, D::Error> {
        struct Digits;
        impl serde::de::Visitor<'_> for Digits {
            type Value = MerchantId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a merchant id of 9 digits")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<MerchantId, E> {
                MerchantId::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(Digits)
    }
}

impl TryFrom<String> for MerchantId {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        MerchantId::parse(&s)
    }
}
impl From<MerchantId> for String {
    fn from(m: MerchantId) -> String {
        m.as_str().to_string()
    }
}

/// A transaction id as the terminal sent it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TxnId(String);
string_id!(TxnId);
impl TxnId {
    pub fn parse(s: &str) -> Result<TxnId, ParseError> {
        plain_id("txn_id", s).map(TxnId)
    }
}

/// The idempotency key of one input row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(String);
string_id!(EventId);
impl EventId {
    pub fn parse(s: &str) -> Result<EventId, ParseError> {
        plain_id("event_id", s).map(EventId)
    }
}

/// An opaque card token. Anything that looks like a card number (13–19 digits,
/// spaces or dashes aside, passing the Luhn check) is refused: the engine never
/// stores card numbers.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CardToken(String);
string_id!(CardToken);

impl fmt::Debug for CardToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardToken({})", self.0)
    }
}

impl CardToken {
    pub fn parse(s: &str) -> Result<CardToken, ParseError> {
        if looks_like_card_number(s) {
            // Never echo the value: it may be a real card number.
            return Err(ParseError::new(
                "card looks like a card number (13-19 digits passing the Luhn check); only card tokens are accepted",
            ));
        }
        plain_id("card", s).map(CardToken)
    }
}

/// 13–19 digits (ignoring spaces and dashes, half- or full-width) that pass the
/// Luhn check.
pub fn looks_like_card_number(s: &str) -> bool {
    let ds: Vec<u32> = s
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '\u{3000}' | '－' | '‐' | '−'))
        .map(|c| match c {
            '０'..='９' => Some(c as u32 - '０' as u32),
            _ => c.to_digit(10),
        })
        .collect::<Option<Vec<u32>>>()
        .unwrap_or_default();
    if !(13..=19).contains(&ds.len()) {
        return false;
    }
    let sum: u32 = ds
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The merchant's 9-digit notice password: the key of the notice ZIP. It is never
/// printed: `Debug` and `Display` show asterisks.
#[derive(Clone, PartialEq, Eq)]
pub struct NoticePassword(String);

impl NoticePassword {
    pub fn parse(s: &str) -> Result<NoticePassword, ParseError> {
        let t = s.trim();
        if digits(t, 9) {
            Ok(NoticePassword(t.to_string()))
        } else {
            Err(ParseError::new("notice_password is not 9 digits"))
        }
    }

    /// The secret itself, for the ZIP encryption and the secrets table only.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NoticePassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NoticePassword(*********)")
    }
}
impl fmt::Display for NoticePassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("*********")
    }
}

/// Fixed-width digit codes of the payee bank.
pub fn parse_digits(field: &str, s: &str, n: usize) -> Result<String, ParseError> {
    let t = s.trim();
    if digits(t, n) {
        Ok(t.to_string())
    } else {
        Err(ParseError::new(format!("{field} '{s}' is not {n} digits")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merchant_id_is_nine_digits() {
        assert!(MerchantId::parse("270212122").is_ok());
        for bad in ["27021212", "2702121220", "27021212a", ""] {
            assert!(MerchantId::parse(bad).is_err());
        }
    }

    #[test]
    fn card_numbers_are_refused_without_echo() {
        for pan in ["4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111", "378282246310005"] {
            let e = CardToken::parse(pan).unwrap_err().to_string();
            assert!(e.contains("card number"));
            assert!(!e.contains("4111") && !e.contains("3782"));
        }
        assert!(CardToken::parse("４１１１１１１１１１１１１１１１").is_err());
        assert!(CardToken::parse("4111　1111　1111　1111").is_err());
        // Luhn fails, or too short: an opaque token.
        assert!(CardToken::parse("4111111111111112").is_ok());
        assert!(CardToken::parse("123456789012").is_ok());
        assert!(CardToken::parse("tok_a").is_ok());
        assert!(CardToken::parse("").is_err());
    }

    #[test]
    fn password_never_shows() {
        let p = NoticePassword::parse("123456789").unwrap();
        assert_eq!(format!("{p:?}"), "NoticePassword(*********)");
        assert_eq!(format!("{p}"), "*********");
        assert_eq!(p.expose_secret(), "123456789");
        assert!(NoticePassword::parse("12345678").is_err());
        assert!(NoticePassword::parse("1234567890").is_err());
    }
}
