//! Salesforce record ids: 15-character (case-sensitive) and 18-character (case-safe) forms.
//!
//! The 18-character id appends three characters that encode which of the first 15 are
//! upper-case letters, five per block. orgsync stores the 18-character form.

/// The alphabet the three suffix characters are drawn from (index = 5-bit case mask).
const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// A value that is not a usable Salesforce id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SfIdError {
    /// Not 15 or 18 ASCII letters and digits.
    #[error("{0:?} is not a Salesforce id (15 or 18 letters and digits)")]
    Shape(String),
    /// An 18-character id whose suffix marks a digit as upper-case, or is not from the
    /// suffix alphabet.
    #[error("{0:?} has an 18-character suffix that does not fit its first 15 characters")]
    Suffix(String),
}

/// Whether `value` has the shape of a Salesforce id: 15 or 18 ASCII letters and digits.
pub fn looks_like_id(value: &str) -> bool {
    matches!(value.len(), 15 | 18) && value.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The three suffix characters for a 15-character id (which must be ASCII).
fn suffix(first15: &[u8]) -> [u8; 3] {
    let mut out = [0u8; 3];
    for (block, chunk) in first15.chunks(5).take(3).enumerate() {
        let mask = chunk
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_ascii_uppercase())
            .fold(0usize, |mask, (j, _)| mask | (1 << j));
        out[block] = ALPHABET[mask];
    }
    out
}

/// The 18-character form of a 15- or 18-character id. An 18-character id whose case was
/// lost (e.g. lower-cased by a case-insensitive system) has the case of its first 15
/// characters restored from its suffix.
pub fn to_18(id: &str) -> Result<String, SfIdError> {
    if !looks_like_id(id) {
        return Err(SfIdError::Shape(id.to_owned()));
    }
    let bytes = id.as_bytes();
    if bytes.len() == 15 {
        let mut out = id.to_owned();
        out.extend(suffix(bytes).iter().map(|&b| char::from(b)));
        return Ok(out);
    }
    repair_18(id, bytes)
}

/// Restores the case of an 18-character id from its (case-insensitive) suffix.
fn repair_18(id: &str, bytes: &[u8]) -> Result<String, SfIdError> {
    let mut out: Vec<u8> = bytes[..15].to_vec();
    for block in 0..3 {
        let code = bytes[15 + block].to_ascii_uppercase();
        let mask = ALPHABET
            .iter()
            .position(|&c| c == code)
            .ok_or_else(|| SfIdError::Suffix(id.to_owned()))?;
        for j in 0..5 {
            let c = &mut out[block * 5 + j];
            let upper = mask & (1 << j) != 0;
            if upper && c.is_ascii_digit() {
                return Err(SfIdError::Suffix(id.to_owned()));
            }
            *c = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
        }
    }
    out.extend_from_slice(&bytes[15..].to_ascii_uppercase());
    // Only ASCII letters and digits were written, so this cannot fail.
    String::from_utf8(out).map_err(|_| SfIdError::Shape(id.to_owned()))
}

/// The first 15 characters, the case-sensitive part that identifies the record.
pub fn prefix15(id: &str) -> &str {
    id.get(..15).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_vectors() {
        assert_eq!(to_18("003G000001SUbc4").unwrap(), "003G000001SUbc4IAD");
        assert_eq!(to_18("0031I0000081tbP").unwrap(), "0031I0000081tbPQAQ");
        assert_eq!(to_18("a0D30000001n7Pi").unwrap(), "a0D30000001n7PiEAI");
        assert_eq!(to_18("00D5g000004XkQm").unwrap(), "00D5g000004XkQmEAK");
    }

    #[test]
    fn eighteen_character_ids_are_kept_or_have_their_case_repaired() {
        assert_eq!(to_18("0031I0000081tbPQAQ").unwrap(), "0031I0000081tbPQAQ");
        assert_eq!(to_18("0031i0000081TBPqaq").unwrap(), "0031I0000081tbPQAQ");
        assert_eq!(to_18("a0d30000001N7pIeai").unwrap(), "a0D30000001n7PiEAI");
        assert_eq!(to_18("0015g00000XyZabAAF").unwrap(), "0015g00000XyZabAAF");
    }

    #[test]
    fn bad_ids_are_refused() {
        assert!(matches!(to_18("003G000001SUbc"), Err(SfIdError::Shape(_))));
        assert!(matches!(
            to_18("003G000001SUbc4-"),
            Err(SfIdError::Shape(_))
        ));
        assert!(matches!(to_18("003G000001SUbé4"), Err(SfIdError::Shape(_))));
        // `B` (mask 1) marks the first character of the first block, a digit.
        assert!(matches!(
            to_18("003G000001SUbc4BAD"),
            Err(SfIdError::Suffix(_))
        ));
        assert!(!looks_like_id("cus_QXg1o8vcGmoR32"));
        assert_eq!(prefix15("00D5g000004XkQmEAK"), "00D5g000004XkQm");
    }
}
