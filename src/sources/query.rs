//! The URL token of a delivery: read from the query string, written for `orgsync send`.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Every byte but RFC 3986's unreserved characters is percent-encoded.
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The first value of `name` in a query string, percent- and `+`-decoded
/// (`application/x-www-form-urlencoded`; invalid escapes stay as they are).
pub(crate) fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// Encodes every byte but the RFC 3986 unreserved characters.
pub(crate) fn percent_encode(text: &str) -> String {
    utf8_percent_encode(text, NOT_UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_tokens_are_decoded() {
        assert_eq!(
            query_param("a=1&token=x%2By+z", "token").as_deref(),
            Some("x+y z")
        );
        assert_eq!(query_param("token", "token").as_deref(), Some(""));
        assert_eq!(query_param("tokens=1", "token"), None);
        assert_eq!(query_param("t=%zz%4", "t").as_deref(), Some("%zz%4"));
    }

    #[test]
    fn encoding_round_trips() {
        let token = "a b+c/d%é~";
        assert_eq!(percent_encode(token), "a%20b%2Bc%2Fd%25%C3%A9~");
        let query = format!("token={}", percent_encode(token));
        assert_eq!(query_param(&query, "token").as_deref(), Some(token));
    }
}
