//! The SOAP answer documents: the Outbound Message acknowledgement and a SOAP 1.1 fault.

use super::CONTENT_TYPE;
use crate::sources::WebhookReply;

/// The Outbound Message acknowledgement, byte for byte the document Salesforce documents.
pub const ACK_DOCUMENT: &str = concat!(
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
    "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" ",
    "xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" ",
    "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n",
    " <soapenv:Body>\n",
    "  <notificationsResponse xmlns=\"http://soap.sforce.com/2005/09/outbound\">\n",
    "   <Ack>true</Ack>\n",
    "  </notificationsResponse>\n",
    " </soapenv:Body>\n",
    "</soapenv:Envelope>\n",
);

/// Who a SOAP fault blames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultCode {
    /// The request was wrong (`soapenv:Client`).
    Client,
    /// The receiver failed (`soapenv:Server`).
    Server,
}

/// The acknowledgement answer (`notificationsResponse/Ack = true`).
pub fn ack() -> WebhookReply {
    WebhookReply {
        content_type: CONTENT_TYPE,
        body: ACK_DOCUMENT.to_owned(),
    }
}

/// A SOAP 1.1 fault with `message` as the (escaped) `faultstring`.
pub fn fault(code: FaultCode, message: &str) -> WebhookReply {
    let code = match code {
        FaultCode::Client => "soapenv:Client",
        FaultCode::Server => "soapenv:Server",
    };
    // Characters XML 1.0 cannot carry at all are replaced, then the rest is escaped.
    let clean: String = message
        .chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect();
    let body = format!(
        concat!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
            "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" ",
            "xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" ",
            "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n",
            " <soapenv:Body>\n",
            "  <soapenv:Fault>\n",
            "   <faultcode>{code}</faultcode>\n",
            "   <faultstring>{message}</faultstring>\n",
            "   <detail />\n",
            "  </soapenv:Fault>\n",
            " </soapenv:Body>\n",
            "</soapenv:Envelope>\n",
        ),
        code = code,
        message = quick_xml::escape::escape(clean.as_str()),
    );
    WebhookReply {
        content_type: CONTENT_TYPE,
        body,
    }
}
