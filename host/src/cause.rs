//! Causes: why a record did not make it, as text a guest may have written.
//!
//! Much of what the host repeats comes from guests: a module's error message, its reasons
//! for rejecting records, its `init` and `restore` refusals. A hostile or buggy guest can
//! make those megabytes long or fill them with line ends that forge log lines. So every
//! such text becomes a [`Cause`] before the host keeps it: cut to a byte budget (with a
//! marker saying how long it was), control characters escaped (so it is one line wherever
//! it goes), and shared: the cause of a failed batch is one allocation however many dead
//! letters of the batch carry it.

use std::fmt;
use std::sync::Arc;

/// A capped, single-line, shared reason text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    text: Arc<str>,
    cut: bool,
}

impl Cause {
    /// `text` cut to at most `limit` bytes of its own (on a character boundary), with
    /// control characters escaped (`\n` → `\\n`, `ESC` → `\\u{1b}`); a cut text ends in
    /// `… (N bytes, cut)`.
    pub fn capped(text: &str, limit: usize) -> Self {
        let mut end = text.len().min(limit);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let kept = &text[..end];
        let mut out = String::with_capacity(end + 32);
        escape_controls(kept, &mut out);
        let cut = end < text.len();
        if cut {
            out.push_str(&format!("… ({} bytes, cut)", text.len()));
        }
        Cause {
            text: out.into(),
            cut,
        }
    }

    /// A cause the host wrote itself (already short and on one line).
    pub fn host(text: impl Into<Arc<str>>) -> Self {
        Cause {
            text: text.into(),
            cut: false,
        }
    }

    /// Whether the text was cut to its budget.
    pub fn was_cut(&self) -> bool {
        self.cut
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl std::ops::Deref for Cause {
    type Target = str;

    fn deref(&self) -> &str {
        &self.text
    }
}

impl PartialEq<&str> for Cause {
    fn eq(&self, other: &&str) -> bool {
        &*self.text == *other
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl serde::Serialize for Cause {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

/// Appends `text` to `out` with every control character escaped, so that it stays on one
/// line in a log or a terminal.
pub fn escape_controls(text: &str, out: &mut String) {
    if !text.chars().any(char::is_control) {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_cut_on_a_character_boundary_and_say_so() {
        let cause = Cause::capped(&"é".repeat(10), 5);
        assert_eq!(cause.as_str(), "éé… (20 bytes, cut)");
        assert!(cause.was_cut());
        let short = Cause::capped("fine", 5);
        assert_eq!(short.as_str(), "fine");
        assert!(!short.was_cut());
    }

    #[test]
    fn control_characters_are_escaped_onto_one_line() {
        let cause = Cause::capped("a\nERROR forged\r\n\t\u{1b}[31m", 100);
        assert_eq!(cause.as_str(), "a\\nERROR forged\\r\\n\\t\\u{1b}[31m");
        assert!(!cause.as_str().chars().any(char::is_control));
    }

    #[test]
    fn clones_share_one_allocation() {
        let cause = Cause::capped(&"x".repeat(100), 4096);
        let copy = cause.clone();
        assert!(Arc::ptr_eq(&cause.text, &copy.text));
    }
}
