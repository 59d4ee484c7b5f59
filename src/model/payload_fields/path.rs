//! The leading steps of a JSONPath: the member names and element indexes it starts with.

use super::Step;

/// The steps a JSONPath starts with, or `None` when it may read the whole document (it
/// does not start at `$`, or names `$` again, as a filter may).
pub(super) fn leading_steps(path: &str) -> Option<Vec<Step<'_>>> {
    let mut rest = path.strip_prefix('$')?;
    if rest.contains('$') {
        return None;
    }
    let mut steps = Vec::new();
    loop {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after
                .char_indices()
                .find(|&(_, c)| !is_name_char(c))
                .map_or(after.len(), |(at, _)| at);
            let name = &after[..end];
            if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
                break;
            }
            steps.push(Step::Member(name));
            rest = &after[end..];
        } else if let Some((step, after)) = bracketed_step(rest) {
            steps.push(step);
            rest = after;
        } else {
            break;
        }
    }
    Some(steps)
}

/// A character of a member-name shorthand (`.name`), RFC 9535 `name-char`.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii()
}

/// `['name']`, `["name"]` (without escapes) or `[N]` (N ≥ 0, without leading zeros) at
/// the start of `text`, and what follows.
fn bracketed_step(text: &str) -> Option<(Step<'_>, &str)> {
    let inner = text.strip_prefix('[')?;
    let (step, after) = match inner.chars().next()? {
        quote @ ('\'' | '"') => {
            let inner = &inner[1..];
            let end = inner.find(quote)?;
            let name = &inner[..end];
            if name.contains('\\') {
                return None;
            }
            (Step::Member(name), &inner[end + 1..])
        }
        '0'..='9' => {
            let end = inner
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(inner.len());
            let digits = &inner[..end];
            if digits.len() > 1 && digits.starts_with('0') {
                return None;
            }
            (Step::Element(digits.parse().ok()?), &inner[end..])
        }
        _ => return None,
    };
    Some((step, after.strip_prefix(']')?))
}
