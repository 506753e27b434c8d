//! Text from outside (a provider's answer, a receipt, a receiver's error)
//! made fit to store and to log.

/// At most `max_chars` characters of `text`, control characters (NUL among
/// them, which PostgreSQL refuses in text) turned into spaces.
pub fn printable(text: &str, max_chars: usize) -> String {
    text.chars()
        .take(max_chars)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_spaces_and_the_text_is_cut() {
        assert_eq!(printable("a\0b\nc", 10), "a b c");
        assert_eq!(printable("çok uzun", 3), "çok");
    }
}
