//! A small, bounded, namespace-aware XML reader for SOAP messages; the SOAP answer
//! documents (acknowledgement and fault) are in [`answer`].
//!
//! Elements are matched by (namespace URI, local name), never by prefix. There is no DTD
//! support: a DOCTYPE is refused, and only the five predefined entities and character
//! references are decoded, so no entity is ever expanded. Size, depth and element count are
//! bounded.

use std::borrow::Cow;

use quick_xml::XmlVersion;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::{Namespace, QName, ResolveResult};
use quick_xml::reader::NsReader;

use super::SourceError;

mod answer;

pub use answer::{ACK_DOCUMENT, FaultCode, ack, fault};

/// The SOAP 1.1 envelope namespace.
pub const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// The XML Schema instance namespace (`xsi:nil`, `xsi:type`).
pub const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
/// The largest document accepted, in bytes.
pub const MAX_BYTES: usize = 4 * 1024 * 1024;
/// The deepest element nesting accepted.
pub const MAX_DEPTH: usize = 16;
/// The most elements accepted in one document.
pub const MAX_ELEMENTS: usize = 50_000;
/// The most attributes (namespace declarations included) accepted on one element. An
/// Outbound Message uses at most a handful; the cap keeps attribute and namespace lookups
/// (linear per attribute) from adding up to quadratic work.
pub const MAX_ATTRIBUTES: usize = 32;
/// The most namespace declarations in scope at once (an Outbound Message has about five),
/// so every name lookup, which scans the declarations in scope, stays short.
pub const MAX_NAMESPACE_DECLARATIONS: usize = 64;
/// `Content-Type` of SOAP answers.
pub const CONTENT_TYPE: &str = "text/xml; charset=utf-8";
/// The longest reason a `MalformedXml` error quotes, in characters.
const MAX_REASON_CHARS: usize = 200;

/// One element: its resolved name, the attributes orgsync reads, its text and children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Namespace URI (empty when unbound).
    pub ns: String,
    /// Local name.
    pub name: String,
    /// `xsi:nil="true"` (or `1`) was present.
    pub nil: bool,
    /// `xsi:type`, resolved to (namespace URI, local name).
    pub xsi_type: Option<(String, String)>,
    /// Character data directly inside the element, entities decoded.
    pub text: String,
    /// Child elements in document order.
    pub children: Vec<Element>,
}

impl Element {
    /// Whether this element is `{ns}name`.
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    /// The first child `{ns}name`.
    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    /// Every child `{ns}name`.
    pub fn children_named<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.is(ns, name))
    }
}

/// A `MalformedXml` error. The reason may quote the body (a name, an end tag), and it goes
/// back to the sender and into the log: it is cut after [`MAX_REASON_CHARS`] characters.
fn malformed(reason: impl Into<String>) -> SourceError {
    let mut reason = reason.into();
    if let Some((cut, _)) = reason.char_indices().nth(MAX_REASON_CHARS) {
        reason.truncate(cut);
        reason.push('…');
    }
    SourceError::MalformedXml { reason }
}

/// The body as UTF-8 text without a byte-order mark, within the size bound.
fn text_of(body: &[u8]) -> Result<&str, SourceError> {
    if body.len() > MAX_BYTES {
        return Err(SourceError::BodyTooLarge {
            size: body.len(),
            limit: MAX_BYTES,
        });
    }
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    std::str::from_utf8(body).map_err(|_| malformed("it is not UTF-8"))
}

/// Parses a whole document into its root element.
pub fn parse(body: &[u8]) -> Result<Element, SourceError> {
    let mut reader = NsReader::from_str(text_of(body)?);
    let mut tree = Tree::default();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| malformed(format!("{e} at byte {}", reader.error_position())))?;
        let text = match event {
            Event::Start(e) => {
                let (el, declarations) = element(&reader, &e)?;
                tree.open(el, declarations, false)?;
                continue;
            }
            Event::Empty(e) => {
                let (el, declarations) = element(&reader, &e)?;
                tree.open(el, declarations, true)?;
                continue;
            }
            Event::End(_) => {
                tree.close()?;
                continue;
            }
            Event::Text(t) => t.xml10_content(),
            Event::CData(t) => t.xml10_content(),
            Event::GeneralRef(r) => Cow::Owned(entity(&r)?),
            Event::DocType(_) => return Err(SourceError::DoctypeNotAllowed),
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => continue,
            Event::Eof => return tree.finish(),
        };
        tree.text(&text)?;
    }
}

/// The element tree under construction, with its bounds.
#[derive(Default)]
struct Tree {
    /// The open elements, outermost first.
    stack: Vec<Element>,
    /// The root, once closed.
    root: Option<Element>,
    /// Elements seen so far.
    count: usize,
    /// Namespace declarations of each open element, outermost first.
    declarations: Vec<usize>,
    /// Their sum: the declarations in scope.
    in_scope: usize,
}

impl Tree {
    /// Opens an element that declares `declarations` namespaces (and closes it at once when
    /// it is empty).
    fn open(&mut self, el: Element, declarations: usize, empty: bool) -> Result<(), SourceError> {
        if self.root.is_some() {
            return Err(malformed(format!("<{}> after the root element", el.name)));
        }
        self.count += 1;
        if self.stack.len() >= MAX_DEPTH || self.count > MAX_ELEMENTS {
            return Err(malformed(
                "it is nested too deeply or has too many elements",
            ));
        }
        if self.in_scope + declarations > MAX_NAMESPACE_DECLARATIONS {
            return Err(SourceError::TooManyNamespaces {
                limit: MAX_NAMESPACE_DECLARATIONS,
            });
        }
        self.in_scope += declarations;
        self.declarations.push(declarations);
        self.stack.push(el);
        if empty { self.close() } else { Ok(()) }
    }

    /// Closes the innermost open element.
    fn close(&mut self) -> Result<(), SourceError> {
        let el = self
            .stack
            .pop()
            .ok_or_else(|| malformed("unbalanced end tag"))?;
        self.in_scope -= self.declarations.pop().unwrap_or(0);
        match self.stack.last_mut() {
            Some(parent) => parent.children.push(el),
            None => self.root = Some(el),
        }
        Ok(())
    }

    /// Adds character data to the innermost open element.
    fn text(&mut self, text: &str) -> Result<(), SourceError> {
        match self.stack.last_mut() {
            Some(open) => open.text.push_str(text),
            None if text.trim().is_empty() => {}
            None => return Err(malformed("text outside the root element")),
        }
        Ok(())
    }

    /// The root, once the document ended.
    fn finish(self) -> Result<Element, SourceError> {
        if !self.stack.is_empty() {
            return Err(malformed("the document ends inside an element"));
        }
        self.root.ok_or_else(|| malformed("the document is empty"))
    }
}

/// The namespace URI a resolution gave, or an error for an undeclared prefix.
fn namespace(result: ResolveResult<'_>, what: &str) -> Result<String, SourceError> {
    match result {
        ResolveResult::Bound(Namespace(uri)) => Ok(uri.to_owned()),
        ResolveResult::Unbound => Ok(String::new()),
        ResolveResult::Unknown(prefix) => Err(malformed(format!(
            "{what} uses the undeclared prefix {prefix:?}"
        ))),
    }
}

/// Refuses a start tag with more than [`MAX_ATTRIBUTES`] attributes; counting them once,
/// without the duplicate check, is linear.
fn check_attribute_count(e: &BytesStart<'_>) -> Result<(), SourceError> {
    if e.attributes()
        .with_checks(false)
        .nth(MAX_ATTRIBUTES)
        .is_some()
    {
        return Err(SourceError::TooManyAttributes {
            limit: MAX_ATTRIBUTES,
        });
    }
    Ok(())
}

/// Builds an element from a start tag, resolving its name, `xsi:nil` and `xsi:type`.
/// Also returns how many namespaces it declares.
fn element(reader: &NsReader<&[u8]>, e: &BytesStart<'_>) -> Result<(Element, usize), SourceError> {
    let mut declarations = 0;
    check_attribute_count(e)?;
    let resolver = reader.resolver();
    let (ns, local) = resolver.resolve_element(e.name());
    let mut el = Element {
        ns: namespace(ns, "an element")?,
        name: local.as_ref().to_owned(),
        ..Element::default()
    };
    for attr in e.attributes() {
        let attr = attr.map_err(|err| malformed(err.to_string()))?;
        if attr.key.as_namespace_binding().is_some() {
            declarations += 1;
        }
        if !matches!(attr.key.local_name().as_ref(), "nil" | "type") {
            continue;
        }
        let (ns, local) = resolver.resolve_attribute(attr.key);
        if !matches!(ns, ResolveResult::Bound(Namespace(uri)) if uri == XSI) {
            continue;
        }
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|err| malformed(err.to_string()))?;
        match local.as_ref() {
            "nil" => el.nil = matches!(value.trim(), "true" | "1"),
            "type" => {
                let qname = QName(value.trim());
                let (ns, local) = resolver.resolve_element(qname);
                let ns = namespace(ns, "xsi:type")?;
                el.xsi_type = Some((ns, local.as_ref().to_owned()));
            }
            _ => {}
        }
    }
    Ok((el, declarations))
}

/// Decodes a character reference or one of the five predefined entities.
fn entity(r: &BytesRef<'_>) -> Result<String, SourceError> {
    if let Some(ch) = r.resolve_char_ref().map_err(|e| malformed(e.to_string()))? {
        return Ok(ch.to_string());
    }
    let name: &str = r.as_ref();
    quick_xml::escape::resolve_xml_entity(name)
        .map(str::to_owned)
        .ok_or_else(|| malformed(format!("it uses the undeclared entity &{name};")))
}

/// Byte ranges of the content of every `{ns}name` element (for redaction).
pub fn content_spans(
    body: &[u8],
    ns: &str,
    name: &str,
) -> Result<Vec<(usize, usize)>, SourceError> {
    let text = text_of(body)?;
    let offset = body.len() - text.len();
    let mut reader = NsReader::from_str(text);
    let mut spans = Vec::new();
    let mut open: Option<(usize, usize)> = None;
    loop {
        let before = reader.buffer_position();
        let event = reader.read_event().map_err(|e| malformed(e.to_string()))?;
        let pos = |p: u64| {
            usize::try_from(p)
                .unwrap_or(usize::MAX)
                .saturating_add(offset)
        };
        if let Event::Start(e) | Event::Empty(e) = &event {
            check_attribute_count(e)?;
        }
        match event {
            Event::Start(e) => match open.as_mut() {
                Some((_, depth)) => *depth += 1,
                None => {
                    let (rns, local) = reader.resolver().resolve_element(e.name());
                    if matches_name(rns, local.as_ref(), ns, name) {
                        open = Some((pos(reader.buffer_position()), 0));
                    }
                }
            },
            Event::End(_) => match open {
                Some((start, 0)) => {
                    spans.push((start, pos(before)));
                    open = None;
                }
                Some((start, d)) => open = Some((start, d - 1)),
                None => {}
            },
            Event::Eof if open.is_some() => {
                return Err(malformed("the document ends inside the element"));
            }
            Event::Eof => return Ok(spans),
            _ => {}
        }
    }
}

/// Whether a resolved name is `{ns}name`.
fn matches_name(result: ResolveResult<'_>, local: &str, ns: &str, name: &str) -> bool {
    matches!(result, ResolveResult::Bound(Namespace(uri)) if uri == ns) && local == name
}
