//! A small, bounded element tree over quick-xml, tolerant of what cameras send: element names
//! are matched case-insensitively (stored lower-case), mismatched end tags are accepted, text is
//! trimmed, unknown elements are kept but ignored by the typed layer, and a document cut off or
//! broken half-way yields what was read before the break.

use quick_xml::events::Event;
use quick_xml::Reader;

/// Limits that bound the memory one body can cost.
pub const MAX_DEPTH: usize = 16;
pub const MAX_ELEMENTS: usize = 200_000;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Element {
    /// Local name, lower-case.
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
    /// The trimmed text of a child, `None` when absent or empty.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim()).filter(|t| !t.is_empty())
    }
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    #[error("no root element")]
    NoRoot,
    #[error("document exceeds {0}")]
    TooLarge(&'static str),
}

fn lower_local(name: &str) -> String {
    let local = name.rsplit(':').next().unwrap_or(name);
    local.to_ascii_lowercase()
}

fn element_from(start: &quick_xml::events::BytesStart<'_>) -> Element {
    let mut el = Element { name: lower_local(start.name().as_ref()), ..Default::default() };
    for a in start.attributes().with_checks(false).flatten().take(16) {
        let v = quick_xml::escape::unescape(&a.value).map(|c| c.into_owned()).unwrap_or_else(|_| a.value.to_string());
        el.attrs.push((lower_local(a.key.as_ref()), v));
    }
    el
}

/// Parses `xml` into its root element.
pub fn parse(xml: &str) -> Result<Element, TreeError> {
    let mut reader = Reader::from_str(xml);
    {
        let cfg = reader.config_mut();
        // Untrimmed so spaces around entity references survive; `text_of` trims.
        cfg.trim_text(false);
        cfg.check_end_names = false;
        cfg.allow_unmatched_ends = true;
    }
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    // Broken markup ends the loop with what we have (cameras cut bodies and mis-escape `&`).
    while let Ok(ev) = reader.read_event() {
        match ev {
            Event::Start(s) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(TreeError::TooLarge("element count"));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(TreeError::TooLarge("depth"));
                }
                stack.push(element_from(&s));
            }
            Event::Empty(s) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(TreeError::TooLarge("element count"));
                }
                let el = element_from(&s);
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None if root.is_none() => root = Some(el),
                    None => {}
                }
            }
            Event::End(_) => {
                if let Some(el) = stack.pop() {
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(el),
                        None => {
                            if root.is_none() {
                                root = Some(el);
                            }
                        }
                    }
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                if let Some(top) = stack.last_mut() {
                    let name = r.xml10_content().into_owned();
                    let ch = match name.as_str() {
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "amp" => Some('&'),
                        "apos" => Some('\''),
                        "quot" => Some('"'),
                        n => r.resolve_char_ref().ok().flatten().or_else(|| {
                            top.text.push('&');
                            top.text.push_str(n);
                            top.text.push(';');
                            None
                        }),
                    };
                    if let Some(c) = ch {
                        top.text.push(c);
                    }
                }
            }
            Event::CData(c) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&c.xml10_content());
                }
            }
            Event::Eof => break,
            _ => {}
        }
        if root.is_some() && stack.is_empty() {
            break;
        }
    }
    // Close whatever a truncated document left open.
    while let Some(el) = stack.pop() {
        match stack.last_mut() {
            Some(parent) => parent.children.push(el),
            None => {
                if root.is_none() {
                    root = Some(el);
                }
            }
        }
    }
    root.ok_or(TreeError::NoRoot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_whitespace_and_unknown_elements() {
        let x = "<?xml version=\"1.0\"?>\r\n<Notify>\n <cmdtype> Keepalive </cmdtype><SN>5</sn><Extra><A/></Extra></Notify>";
        let root = parse(x).unwrap();
        assert_eq!(root.name, "notify");
        assert_eq!(root.text_of("cmdtype"), Some("Keepalive"));
        assert_eq!(root.text_of("sn"), Some("5"));
    }

    #[test]
    fn entities_and_truncation() {
        let root = parse("<R><Name>A &amp; B &#x5927;</Name><List Num=\"2\"><Item><Id>1</Id>").unwrap();
        assert_eq!(root.text_of("name"), Some("A & B 大"));
        let list = root.child("list").unwrap();
        assert_eq!(list.attr("num"), Some("2"));
        assert_eq!(list.child("item").unwrap().text_of("id"), Some("1"));
    }

    #[test]
    fn depth_is_bounded() {
        let x = "<a>".repeat(100);
        assert_eq!(parse(&x), Err(TreeError::TooLarge("depth")));
        assert_eq!(parse("no xml here"), Err(TreeError::NoRoot));
    }
}
