//! How a text travels as SMS: its encoding (GSM 03.38 or UCS-2) and the
//! number of segments the provider bills (SPEC Part 2, "Encoding and
//! segments").

/// The GSM 03.38 default alphabet, in code order (0x1B, the escape to the
/// extension table, left out: it is not a character of a text).
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                         ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// The extension table: each costs two septets (the escape, then itself).
const GSM_EXTENSION: &str = "\u{c}^{}\\[~]|€";

/// How a text is encoded for the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Every character in the GSM default alphabet or its extension table.
    Gsm7,
    /// Anything else: UTF-16.
    Ucs2,
}

/// A text's encoding and its number of segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segments {
    pub encoding: Encoding,
    pub count: u32,
}

impl Segments {
    /// GSM-7: one segment up to 160 septets, else 153 per segment (an
    /// extension character counts two). UCS-2: one up to 70 UTF-16 code
    /// units, else 67 per segment.
    pub fn of(text: &str) -> Self {
        match gsm_septets(text) {
            Some(septets) => Segments {
                encoding: Encoding::Gsm7,
                count: split(septets, 160, 153),
            },
            None => Segments {
                encoding: Encoding::Ucs2,
                count: split(text.encode_utf16().count(), 70, 67),
            },
        }
    }
}

/// The septets of `text` in GSM-7; `None` if a character has no place in it.
fn gsm_septets(text: &str) -> Option<usize> {
    text.chars().try_fold(0, |septets, c| {
        if GSM_BASIC.contains(c) {
            Some(septets + 1)
        } else if GSM_EXTENSION.contains(c) {
            Some(septets + 2)
        } else {
            None
        }
    })
}

/// Segments for `units`: one up to `single`, else `per_part` in each.
fn split(units: usize, single: usize, per_part: usize) -> u32 {
    let count = if units <= single {
        1
    } else {
        units.div_ceil(per_part)
    };
    u32::try_from(count).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Encoding::{Gsm7, Ucs2};

    fn of(text: &str) -> (Encoding, u32) {
        let segments = Segments::of(text);
        (segments.encoding, segments.count)
    }

    #[test]
    fn the_default_alphabet_is_127_characters_of_one_septet_each() {
        assert_eq!(GSM_BASIC.chars().count(), 127);
        assert_eq!(gsm_septets(GSM_BASIC), Some(127));
        assert_eq!(of(GSM_BASIC), (Gsm7, 1));
    }

    #[test]
    fn the_extension_table_costs_two_septets_a_character() {
        assert_eq!(GSM_EXTENSION.chars().count(), 10);
        assert_eq!(gsm_septets(GSM_EXTENSION), Some(20));
        assert_eq!(of(&"€".repeat(80)), (Gsm7, 1), "160 septets");
        assert_eq!(of(&"€".repeat(81)), (Gsm7, 2), "162 septets");
        assert_eq!(
            of(&format!("{}[", "a".repeat(159))),
            (Gsm7, 2),
            "161 septets"
        );
    }

    #[test]
    fn gsm_7_is_one_segment_to_160_then_153_each() {
        assert_eq!(of("Hello"), (Gsm7, 1));
        assert_eq!(of(&"a".repeat(160)), (Gsm7, 1));
        assert_eq!(of(&"a".repeat(161)), (Gsm7, 2));
        assert_eq!(split(306, 160, 153), 2);
        assert_eq!(split(307, 160, 153), 3);
    }

    #[test]
    fn turkish_letters_outside_the_alphabet_make_it_ucs_2() {
        // ü, Ç and Ö are in the default alphabet; ş, ğ, ı and ç are not.
        assert_eq!(of("Merhaba dünya, Çok güzel, Öğle"), (Ucs2, 1));
        assert_eq!(of("Merhaba dünya, Çok güzel"), (Gsm7, 1));
        assert_eq!(of("Şifreniz 4721"), (Ucs2, 1));
        assert_eq!(of(&"ş".repeat(70)), (Ucs2, 1));
        assert_eq!(of(&"ş".repeat(71)), (Ucs2, 2));
        assert_eq!(of(&"ş".repeat(160)), (Ucs2, 3), "ceil(160 / 67)");
    }

    #[test]
    fn an_emoji_is_two_utf_16_units() {
        assert_eq!(of("😀"), (Ucs2, 1));
        assert_eq!(of(&"😀".repeat(35)), (Ucs2, 1), "70 units");
        assert_eq!(of(&"😀".repeat(36)), (Ucs2, 2), "72 units");
        assert_eq!(of(&format!("{}😀", "a".repeat(68))), (Ucs2, 1), "70 units");
        assert_eq!(of(&format!("{}😀", "a".repeat(69))), (Ucs2, 2), "71 units");
    }
}
