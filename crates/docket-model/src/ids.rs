//! Identifiers: subjects (Unified Social Credit Code, resident identity number,
//! tagged other schemes) and the short names of agencies, lists, measures, MOUs,
//! rule sets and cases.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::limits::{NAME_BYTES_MAX, OTHER_ID_BYTES_MAX};

/// Why an identifier was refused. `position` is 1-based, counted in characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    #[error("{kind}: expected {expected} characters, got {actual}")]
    Length { kind: &'static str, expected: usize, actual: usize },
    #[error("{kind}: character {position} ({found:?}) is not allowed here: {allowed}")]
    Character { kind: &'static str, position: usize, found: char, allowed: &'static str },
    #[error("{kind}: check character (position {position}) is {found:?}, expected {expected:?}")]
    Checksum { kind: &'static str, position: usize, found: char, expected: char },
    #[error("resident id: characters 7-14 ({found}) are not a valid birth date YYYYMMDD")]
    BirthDate { found: String },
    #[error("{kind}: {reason}")]
    Invalid { kind: &'static str, reason: String },
}

/// The 31 characters of GB 32100-2015, in value order (no I, O, S, V, Z).
const USCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// Weight of position i is 3^i mod 31.
const USCC_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
const USCC_LEN: usize = 18;

fn uscc_value(c: u8) -> Option<u32> {
    USCC_ALPHABET.iter().position(|&a| a == c).map(|v| v as u32)
}

/// Unified Social Credit Code of a legal person (GB 32100-2015), validated.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Uscc(String);

impl Uscc {
    /// Validates length, alphabet, the six-digit administrative division code
    /// (positions 3-8) and the check character. Prefixes are not whitelisted.
    pub fn parse(text: &str) -> Result<Self, IdError> {
        const KIND: &str = "unified social credit code";
        let chars: Vec<char> = text.chars().collect();
        if chars.len() != USCC_LEN {
            return Err(IdError::Length { kind: KIND, expected: USCC_LEN, actual: chars.len() });
        }
        for (index, &c) in chars.iter().enumerate() {
            u8::try_from(c).ok().and_then(uscc_value).ok_or(IdError::Character {
                kind: KIND,
                position: index + 1,
                found: c,
                allowed: "digits and upper-case letters other than I, O, S, V, Z",
            })?;
        }
        // Positions 3-8 are the administrative division code (GB/T 2260), six digits.
        if let Some((index, &c)) = chars.iter().enumerate().take(8).skip(2).find(|(_, c)| !c.is_ascii_digit()) {
            return Err(IdError::Character {
                kind: KIND,
                position: index + 1,
                found: c,
                allowed: "a digit (positions 3-8 are the administrative division code)",
            });
        }
        let expected = Self::check_character(&text.as_bytes()[..USCC_LEN - 1]);
        if chars[USCC_LEN - 1] != expected {
            return Err(IdError::Checksum { kind: KIND, position: USCC_LEN, found: chars[USCC_LEN - 1], expected });
        }
        Ok(Self(text.to_owned()))
    }

    /// Check character for the first 17 characters (which must be in the alphabet).
    pub fn check_character(first17: &[u8]) -> char {
        let sum: u32 = first17.iter().zip(USCC_WEIGHTS).map(|(&c, w)| uscc_value(c).unwrap_or(0) * w).sum();
        USCC_ALPHABET[((31 - sum % 31) % 31) as usize] as char
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The alphabet codes are drawn from, in value order.
    pub fn alphabet() -> &'static [u8; 31] {
        USCC_ALPHABET
    }
}

/// Weights of GB 11643-1999 for the first 17 digits.
const RESIDENT_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character indexed by the weighted sum mod 11.
const RESIDENT_CHECK: &[u8; 11] = b"10X98765432";
const RESIDENT_LEN: usize = 18;

/// Sex recorded in a resident identity number (odd sequence = male).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Male,
    Female,
}

/// Resident identity number of a natural person (GB 11643-1999), validated.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResidentId(String);

impl ResidentId {
    /// Validates digits, birth date and check character.
    pub fn parse(text: &str) -> Result<Self, IdError> {
        const KIND: &str = "resident id";
        let chars: Vec<char> = text.chars().collect();
        if chars.len() == 15 {
            return Err(IdError::Invalid {
                kind: KIND,
                reason: "15-digit first-generation numbers are not accepted; \
                         convert to 18 digits or tag the scheme as other"
                    .into(),
            });
        }
        if chars.len() != RESIDENT_LEN {
            return Err(IdError::Length { kind: KIND, expected: RESIDENT_LEN, actual: chars.len() });
        }
        for (index, &c) in chars.iter().enumerate().take(RESIDENT_LEN - 1) {
            if !c.is_ascii_digit() {
                return Err(IdError::Character { kind: KIND, position: index + 1, found: c, allowed: "digits 0-9" });
            }
        }
        let last = chars[RESIDENT_LEN - 1];
        if !(last.is_ascii_digit() || last == 'X') {
            return Err(IdError::Character {
                kind: KIND,
                position: RESIDENT_LEN,
                found: last,
                allowed: "digits 0-9 or X",
            });
        }
        let expected = Self::check_character(&text.as_bytes()[..RESIDENT_LEN - 1]);
        if last != expected {
            return Err(IdError::Checksum { kind: KIND, position: RESIDENT_LEN, found: last, expected });
        }
        let id = Self(text.to_owned());
        id.birth_date()?;
        Ok(id)
    }

    /// Check character for the first 17 digits.
    pub fn check_character(first17: &[u8]) -> char {
        let sum: u32 = first17.iter().zip(RESIDENT_WEIGHTS).map(|(&c, w)| u32::from(c.wrapping_sub(b'0')) * w).sum();
        RESIDENT_CHECK[(sum % 11) as usize] as char
    }

    /// Birth date from characters 7-14. The minors rule needs it.
    pub fn birth_date(&self) -> Result<NaiveDate, IdError> {
        let digits = &self.0[6..14];
        let parsed = NaiveDate::parse_from_str(digits, "%Y%m%d").ok();
        match parsed {
            Some(date) if (1900..=2199).contains(&chrono::Datelike::year(&date)) => Ok(date),
            _ => Err(IdError::BirthDate { found: digits.to_owned() }),
        }
    }

    /// Sex from the parity of the sequence number (characters 15-17).
    pub fn sex(&self) -> Sex {
        if (self.0.as_bytes()[16] - b'0') % 2 == 1 {
            Sex::Male
        } else {
            Sex::Female
        }
    }

    /// Six-digit administrative area code of the place of first registration.
    pub fn area(&self) -> &str {
        &self.0[..6]
    }

    /// The number as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number masked for public disclosure: area and last 4 kept, e.g. `110105********123X`.
    pub fn masked(&self) -> String {
        format!("{}********{}", &self.0[..6], &self.0[14..])
    }
}

macro_rules! string_newtype_conversions {
    ($type:ident) => {
        impl TryFrom<String> for $type {
            type Error = IdError;
            fn try_from(text: String) -> Result<Self, IdError> {
                Self::parse(&text)
            }
        }
        impl From<$type> for String {
            fn from(value: $type) -> String {
                value.0
            }
        }
        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::str::FromStr for $type {
            type Err = IdError;
            fn from_str(text: &str) -> Result<Self, IdError> {
                Self::parse(text)
            }
        }
    };
}
string_newtype_conversions!(Uscc);
string_newtype_conversions!(ResidentId);

/// A subject on a list: a legal person, a natural person, or an identifier of
/// another scheme, which is tagged and carried as given, never guessed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectId {
    /// Unified Social Credit Code (legal persons and other organisations).
    Uscc(Uscc),
    /// Resident identity number (natural persons).
    Resident(ResidentId),
    /// Any other scheme (foreign passport, organisation code, ...), tagged by name.
    Other { scheme: Name, value: String },
}

impl SubjectId {
    /// Checks what serde cannot: the length and charset of an "other" value.
    pub fn validate(&self) -> Result<(), IdError> {
        if let Self::Other { value, .. } = self {
            if value.is_empty() || value.len() > OTHER_ID_BYTES_MAX {
                return Err(IdError::Invalid {
                    kind: "subject id",
                    reason: format!("value must be 1..={OTHER_ID_BYTES_MAX} bytes"),
                });
            }
            if let Some((index, c)) = value.chars().enumerate().find(|(_, c)| c.is_control()) {
                return Err(IdError::Character {
                    kind: "subject id",
                    position: index + 1,
                    found: c,
                    allowed: "printable characters",
                });
            }
        }
        Ok(())
    }

    /// The identifier as printed: `uscc:…`, `resident:…` or `SCHEME:…`.
    pub fn display_masked(&self) -> String {
        match self {
            Self::Uscc(code) => format!("uscc:{code}"),
            Self::Resident(id) => format!("resident:{}", id.masked()),
            Self::Other { scheme, .. } => format!("{scheme}:****"),
        }
    }
}

impl fmt::Display for SubjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Uscc(code) => write!(f, "uscc:{code}"),
            Self::Resident(id) => write!(f, "resident:{id}"),
            Self::Other { scheme, value } => write!(f, "{scheme}:{value}"),
        }
    }
}

/// What a code looks like, as decided by [`classify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classified {
    Uscc(Uscc),
    Resident(ResidentId),
}

/// Decides which national scheme a bare code belongs to and validates it.
/// An 18-character code whose first 17 characters are all digits is a resident
/// id; any other 18-character code is a USCC. Both schemes have 18 characters,
/// so the error of the more likely scheme is returned.
pub fn classify(code: &str) -> Result<Classified, IdError> {
    let looks_resident = code.chars().take(17).all(|c| c.is_ascii_digit());
    if looks_resident {
        if let Ok(id) = ResidentId::parse(code) {
            return Ok(Classified::Resident(id));
        }
        // A USCC may be all digits too; prefer it if its checksum holds.
        return match Uscc::parse(code) {
            Ok(uscc) => Ok(Classified::Uscc(uscc)),
            Err(_) => ResidentId::parse(code).map(Classified::Resident),
        };
    }
    Uscc::parse(code).map(Classified::Uscc)
}

/// A short name: agency, list, measure code, MOU, rule set or case number.
/// Non-empty, at most [`NAME_BYTES_MAX`] bytes, no control characters and no
/// leading or trailing white space, so that one name has one spelling.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

impl Name {
    /// Validates a name.
    pub fn parse(text: &str) -> Result<Self, IdError> {
        const KIND: &str = "name";
        if text.is_empty() || text.len() > NAME_BYTES_MAX {
            return Err(IdError::Invalid {
                kind: KIND,
                reason: format!("{:?} must be 1..={NAME_BYTES_MAX} bytes", text),
            });
        }
        if text.trim() != text {
            return Err(IdError::Invalid {
                kind: KIND,
                reason: format!("{text:?} has leading or trailing white space"),
            });
        }
        if let Some((index, c)) = text.chars().enumerate().find(|(_, c)| c.is_control()) {
            return Err(IdError::Character {
                kind: KIND,
                position: index + 1,
                found: c,
                allowed: "printable characters",
            });
        }
        Ok(Self(text.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
string_newtype_conversions!(Name);

/// An agency (designating, responsible, intake or oversight body).
pub type AgencyId = Name;
/// An administrative list (e.g. `cn-spc-defaulters`).
pub type ListId = Name;
/// A catalogued measure (e.g. `restrict-air-travel`).
pub type MeasureCode = Name;
/// A memorandum of understanding binding agencies to measures on a list.
pub type MouId = Name;
/// A rule set (e.g. `cn-civil-aviation-2018`).
pub type RuleSetId = Name;
/// A case number as the designating agency writes it (e.g. `(2024)京0105执1234号`).
pub type CaseNumber = Name;

mod schema {
    use std::borrow::Cow;

    use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};

    use super::{Name, ResidentId, SubjectId, Uscc};
    use crate::limits::{NAME_BYTES_MAX, OTHER_ID_BYTES_MAX};

    impl JsonSchema for Uscc {
        fn schema_name() -> Cow<'static, str> {
            "Uscc".into()
        }
        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            json_schema!({
                "description": "Unified Social Credit Code (GB 32100-2015); the check character is verified",
                "type": "string",
                "pattern": "^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$"
            })
        }
    }

    impl JsonSchema for ResidentId {
        fn schema_name() -> Cow<'static, str> {
            "ResidentId".into()
        }
        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            json_schema!({
                "description": "resident identity number (GB 11643-1999); birth date and check character are verified",
                "type": "string",
                "pattern": "^[0-9]{17}[0-9X]$"
            })
        }
    }

    impl JsonSchema for Name {
        fn schema_name() -> Cow<'static, str> {
            "Name".into()
        }
        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            json_schema!({
                "description": "short name: no control characters, no leading or trailing white space",
                "type": "string",
                "minLength": 1,
                "maxLength": NAME_BYTES_MAX,
                "pattern": "^\\S(.*\\S)?$"
            })
        }
    }

    impl JsonSchema for SubjectId {
        fn schema_name() -> Cow<'static, str> {
            "SubjectId".into()
        }
        fn json_schema(generator: &mut SchemaGenerator) -> Schema {
            let uscc = generator.subschema_for::<Uscc>();
            let resident = generator.subschema_for::<ResidentId>();
            let name = generator.subschema_for::<Name>();
            json_schema!({
                "description": "the subject: exactly one of uscc, resident, other",
                "oneOf": [
                    {"type": "object", "properties": {"uscc": uscc}, "required": ["uscc"], "additionalProperties": false},
                    {"type": "object", "properties": {"resident": resident}, "required": ["resident"], "additionalProperties": false},
                    {"type": "object", "properties": {"other": {
                        "type": "object",
                        "properties": {"scheme": name, "value": {"type": "string", "minLength": 1, "maxLength": OTHER_ID_BYTES_MAX}},
                        "required": ["scheme", "value"],
                        "additionalProperties": false
                    }}, "required": ["other"], "additionalProperties": false}
                ]
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uscc_division_code_must_be_digits() {
        // A letter in each of positions 3-8, with a correct check character.
        for position in 3..=8 {
            let mut first: Vec<u8> = b"91110105MA01ABCD1".to_vec();
            first[position - 1] = b'A';
            let code = format!("{}{}", String::from_utf8_lossy(&first), Uscc::check_character(&first));
            match Uscc::parse(&code) {
                Err(IdError::Character { position: at, found: 'A', .. }) => assert_eq!(at, position),
                other => panic!("{code}: expected a character fault at {position}, got {other:?}"),
            }
        }
        assert!(Uscc::parse("91110105MA01ABCD13").is_ok());
    }

    #[test]
    fn other_scheme_faults_are_counted_in_characters() {
        let subject = SubjectId::Other { scheme: Name::parse("passport-CN").unwrap(), value: "护照\u{7}1".into() };
        match subject.validate() {
            Err(IdError::Character { position, found, .. }) => assert_eq!((position, found), (3, '\u{7}')),
            other => panic!("expected a character fault, got {other:?}"),
        }
    }
}
