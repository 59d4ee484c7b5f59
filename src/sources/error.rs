//! Why a delivery was refused. Messages go back to the sender, so they name what was
//! wrong but never a secret, a token or an expected signature.

/// The most characters of a value from the body that an error quotes: enough to recognise
/// an id or a type, while every refusal (answered and logged) stays short.
pub(crate) const MAX_QUOTED_CHARS: usize = 100;

/// `text` as an error quotes it: cut after [`MAX_QUOTED_CHARS`] characters, marked `…`.
pub(crate) fn quoted(text: &str) -> String {
    match text.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The broad reason a delivery was refused; the http layer maps it to a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCategory {
    /// The request is not a well-formed delivery of this kind.
    Malformed,
    /// The request could not be shown to come from the configured sender.
    Unauthenticated,
    /// The request is authentic but of a kind orgsync does not handle.
    Unsupported,
}

/// A delivery that was refused, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The request had no body.
    #[error("the request has no body")]
    EmptyBody,
    /// The body is larger than this kind accepts.
    #[error("the body is {size} bytes; at most {limit} are accepted")]
    BodyTooLarge {
        /// The body size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A required header is absent or empty.
    #[error("the {header} header is missing or empty")]
    MissingHeader {
        /// The header's name.
        header: String,
    },
    /// A header could not be parsed.
    #[error("the {header} header is malformed: {reason}")]
    MalformedHeader {
        /// The header's name.
        header: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The signature header has no signature of the supported scheme.
    #[error("the {header} header has no v1 signature")]
    NoV1Signature {
        /// The header's name.
        header: &'static str,
    },
    /// No signature matches any configured secret.
    #[error("no signature in the {header} header matches the body and a configured secret")]
    NoMatchingSignature {
        /// The header's name.
        header: String,
    },
    /// The signed timestamp is older than the tolerance (a stale or replayed delivery).
    #[error(
        "the signed timestamp is {age_seconds} s old; at most {tolerance_seconds} s are accepted"
    )]
    TimestampTooOld {
        /// How old it is.
        age_seconds: i64,
        /// The configured tolerance.
        tolerance_seconds: u64,
    },
    /// The signed timestamp is further in the future than the allowed clock skew.
    #[error(
        "the signed timestamp is {ahead_seconds} s in the future; at most {skew_seconds} s are accepted"
    )]
    TimestampInFuture {
        /// How far ahead it is.
        ahead_seconds: i64,
        /// The configured skew.
        skew_seconds: u64,
    },
    /// A Stripe thin (v2) event notification: verified, but carries no snapshot.
    #[error(
        "thin (v2) event notifications are not supported; configure a snapshot destination \
         (event {event_type} {event_id})"
    )]
    ThinEvent {
        /// The event id.
        event_id: String,
        /// The event type.
        event_type: String,
    },
    /// The body is not the JSON document expected.
    #[error("the body is not a valid event: {reason}")]
    MalformedJson {
        /// What is wrong.
        reason: String,
    },
    /// A value the source needs is missing from the payload.
    #[error("the event has no {what}")]
    MissingField {
        /// What is missing, with where it was looked for.
        what: String,
    },
    /// The body is not well-formed XML or not the expected SOAP message.
    #[error("the body is not a valid Outbound Message: {reason}")]
    MalformedXml {
        /// What is wrong.
        reason: String,
    },
    /// The XML carries a document type declaration (never sent by Salesforce; refused so
    /// no entity is ever expanded).
    #[error("the XML has a DOCTYPE declaration, which is not accepted")]
    DoctypeNotAllowed,
    /// An element carries more attributes (namespace declarations included) than any
    /// Outbound Message needs.
    #[error("an element has more than {limit} attributes")]
    TooManyAttributes {
        /// The limit.
        limit: usize,
    },
    /// The document declares more namespaces than any Outbound Message needs.
    #[error("the document has more than {limit} namespace declarations")]
    TooManyNamespaces {
        /// The limit.
        limit: usize,
    },
    /// More notifications than Salesforce ever sends in one message.
    #[error("the message has more than {limit} notifications")]
    TooManyNotifications {
        /// The limit.
        limit: usize,
    },
    /// A Salesforce message without the parts that make it a notification.
    #[error("the Outbound Message has no {missing}")]
    IncompleteMessage {
        /// The missing parts.
        missing: String,
    },
    /// The message's OrganizationId is not the configured organization.
    #[error("the OrganizationId value did not match the expected value")]
    OrganizationMismatch,
    /// A token is configured but the request carried none.
    #[error("the request has no token query parameter")]
    MissingToken,
    /// The request's token is not the configured one.
    #[error("the token query parameter is not valid")]
    WrongToken,
}

impl SourceError {
    /// A stable name for logs, metrics and the answer body, e.g. `NoMatchingSignature`.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceError::EmptyBody => "EmptyBody",
            SourceError::BodyTooLarge { .. } => "BodyTooLarge",
            SourceError::MissingHeader { .. } => "MissingHeader",
            SourceError::MalformedHeader { .. } => "MalformedHeader",
            SourceError::NoV1Signature { .. } => "NoV1Signature",
            SourceError::NoMatchingSignature { .. } => "NoMatchingSignature",
            SourceError::TimestampTooOld { .. } => "TimestampTooOld",
            SourceError::TimestampInFuture { .. } => "TimestampInFuture",
            SourceError::ThinEvent { .. } => "ThinEvent",
            SourceError::MalformedJson { .. } => "MalformedJson",
            SourceError::MissingField { .. } => "MissingField",
            SourceError::MalformedXml { .. } => "MalformedXml",
            SourceError::DoctypeNotAllowed => "DoctypeNotAllowed",
            SourceError::TooManyAttributes { .. } => "TooManyAttributes",
            SourceError::TooManyNamespaces { .. } => "TooManyNamespaces",
            SourceError::TooManyNotifications { .. } => "TooManyNotifications",
            SourceError::IncompleteMessage { .. } => "IncompleteMessage",
            SourceError::OrganizationMismatch => "OrganizationMismatch",
            SourceError::MissingToken => "MissingToken",
            SourceError::WrongToken => "WrongToken",
        }
    }

    /// The broad reason, for the http layer to choose a status code.
    pub fn category(&self) -> ErrorCategory {
        match self {
            SourceError::MissingHeader { .. }
            | SourceError::MalformedHeader { .. }
            | SourceError::NoV1Signature { .. }
            | SourceError::NoMatchingSignature { .. }
            | SourceError::TimestampTooOld { .. }
            | SourceError::TimestampInFuture { .. }
            | SourceError::OrganizationMismatch
            | SourceError::MissingToken
            | SourceError::WrongToken => ErrorCategory::Unauthenticated,
            SourceError::ThinEvent { .. } => ErrorCategory::Unsupported,
            SourceError::EmptyBody
            | SourceError::BodyTooLarge { .. }
            | SourceError::MalformedJson { .. }
            | SourceError::MissingField { .. }
            | SourceError::MalformedXml { .. }
            | SourceError::DoctypeNotAllowed
            | SourceError::TooManyAttributes { .. }
            | SourceError::TooManyNamespaces { .. }
            | SourceError::TooManyNotifications { .. }
            | SourceError::IncompleteMessage { .. } => ErrorCategory::Malformed,
        }
    }
}

/// Why a body could not be parsed offline (`orgsync explain`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnverifiedError {
    /// The source's configuration is unusable.
    #[error(transparent)]
    Config(#[from] super::SourceConfigError),
    /// The body is not an event of this source's kind.
    #[error("{kind}: {0}", kind = .0.kind())]
    Body(#[from] SourceError),
}
