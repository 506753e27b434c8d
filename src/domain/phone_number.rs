//! A phone number in E.164 form, as the `messages` table's CHECK wants it.

/// `+` then 7 to 15 digits, the first not 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Accepts exactly what the database's CHECK accepts, explaining a refusal.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let Some(digits) = raw.strip_prefix('+') else {
            return Err(
                "phone_number must start with + and the country code, as in +905551234567".into(),
            );
        };
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err("phone_number must hold only digits after the +".into());
        }
        if !(7..=15).contains(&digits.len()) {
            return Err(format!(
                "phone_number must have 7 to 15 digits after the +, not {}",
                digits.len()
            ));
        }
        if digits.starts_with('0') {
            return Err(
                "phone_number must not start with +0: a country code never starts with 0".into(),
            );
        }
        Ok(PhoneNumber(raw.to_owned()))
    }
}

impl AsRef<str> for PhoneNumber {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::PhoneNumber;

    #[test]
    fn e164_numbers_are_accepted() {
        for ok in ["+905551234567", "+1234567", "+123456789012345"] {
            assert_eq!(PhoneNumber::parse(ok).unwrap().as_ref(), ok);
        }
    }

    #[test]
    fn anything_else_is_refused_with_a_reason() {
        for bad in [
            "905551234567",
            "+",
            "+123456",
            "+1234567890123456",
            "+0555123456",
            "+90 555 123",
            "+9055512345a",
            "",
            "+٣٣٣٣٣٣٣٣",
        ] {
            let error = PhoneNumber::parse(bad).unwrap_err();
            assert!(error.starts_with("phone_number"), "{bad:?}: {error}");
        }
    }
}
