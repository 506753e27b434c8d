//! The text of one SMS.

/// 1 to 160 characters, counted as Unicode characters, not bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content(String);

impl Content {
    /// The most characters one message may hold.
    pub const MAX_CHARS: usize = 160;

    /// Accepts exactly what the database's CHECK accepts, explaining a refusal.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.contains('\0') {
            return Err("content must not contain the NUL character".into());
        }
        let chars = raw.chars().count();
        if chars == 0 {
            return Err("content must not be empty".into());
        }
        if chars > Self::MAX_CHARS {
            return Err(format!(
                "content must be at most {} characters, not {chars}",
                Self::MAX_CHARS
            ));
        }
        Ok(Content(raw.to_owned()))
    }
}

impl AsRef<str> for Content {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::Content;

    #[test]
    fn the_limit_counts_characters_not_bytes() {
        let turkish = "ş".repeat(160);
        assert_eq!(turkish.len(), 320);
        assert!(Content::parse(&turkish).is_ok());
        assert!(Content::parse(&"a".repeat(160)).is_ok());
    }

    #[test]
    fn empty_and_too_long_are_refused() {
        assert_eq!(Content::parse("").unwrap_err(), "content must not be empty");
        assert!(Content::parse("a\0b").unwrap_err().contains("NUL"));
        let error = Content::parse(&"ş".repeat(161)).unwrap_err();
        assert!(error.contains("161"), "{error}");
    }
}
