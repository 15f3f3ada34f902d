//! The bank transfer alphabet (SPEC §6) and its single-byte encoding.
//!
//! Names in a Zengin transfer file (payee, bank, branch, remitter) are written in
//! JIS X 0201 8-bit: ASCII digits, upper-case letters, a few symbols and half-width
//! katakana. This module
//!
//! 1. validates a name against the §6 alphabet and converts it to the *transfer
//!    form*: a string of ASCII and half-width katakana (U+FF61..U+FF9F) in which
//!    voiced kana are written as a kana followed by ﾞ / ﾟ, small kana are large and
//!    the long-vowel mark is `-` ([`to_transfer_kana`]);
//! 2. encodes the transfer form into bytes ([`encode_jis_x0201`]);
//! 3. cuts the bytes to a field's width without leaving a voiced mark separated
//!    from its kana, and pads with spaces ([`fit_field`]).
//!
//! Conversion rules and the decisions behind them are documented in
//! `docs/zengin.md`. Nothing outside the documented folding is silently changed:
//! a character that cannot be expressed is an error, never a garbled transfer.

/// A name that cannot be written in the bank transfer alphabet.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KanaError {
    /// The character is outside the alphabet (kanji, hiragana, lower-case letters,
    /// ヰ ヱ ヮ, symbols other than `( ) . - /`, …).
    #[error("character '{0}' is not in the bank transfer alphabet (katakana, A-Z, 0-9, space, ( ) . - /)")]
    NotAllowed(char),
    /// A voiced (゛ ﾞ) or semi-voiced (゜ ﾟ) mark that does not follow a kana able to
    /// take it (e.g. at the start, after a letter, after ア, or after a kana that
    /// already carries a mark).
    #[error("voiced mark '{0}' does not follow a kana that can take it")]
    MisplacedMark(char),
}

/// The half-width voiced sound mark ﾞ (dakuten).
pub const HW_DAKUTEN: char = '\u{FF9E}';
/// The half-width semi-voiced sound mark ﾟ (handakuten).
pub const HW_HANDAKUTEN: char = '\u{FF9F}';
/// The byte of ﾞ in JIS X 0201.
pub const BYTE_DAKUTEN: u8 = 0xDE;
/// The byte of ﾟ in JIS X 0201.
pub const BYTE_HANDAKUTEN: u8 = 0xDF;
/// The byte a field is padded with.
pub const BYTE_SPACE: u8 = b' ';

/// First and last code point of the Halfwidth Katakana block encoded by JIS X 0201.
const HW_KANA_FIRST: u32 = 0xFF61;
const HW_KANA_LAST: u32 = 0xFF9F;
/// JIS X 0201 byte of U+FF61 (｡); the block maps linearly onto 0xA1..=0xDF.
const JIS_KANA_FIRST_BYTE: u32 = 0xA1;

/// First code point of [`FULL_WIDTH_KATAKANA`] (ァ).
const FW_KATAKANA_FIRST: u32 = 0x30A1;

/// Full-width katakana U+30A1 (ァ) ..= U+30F6 (ヶ) in code point order, each with
/// its transfer form; `""` marks a kana that is refused (ヮ ヰ ヱ).
/// Small kana are written large; voiced kana as kana + ﾞ, semi-voiced as kana + ﾟ.
#[rustfmt::skip]
const FULL_WIDTH_KATAKANA: [&str; 86] = [
    "ｱ", "ｱ", "ｲ", "ｲ", "ｳ", "ｳ", "ｴ", "ｴ", "ｵ", "ｵ", // ァアィイゥウェエォオ
    "ｶ", "ｶﾞ", "ｷ", "ｷﾞ", "ｸ", "ｸﾞ", "ｹ", "ｹﾞ", "ｺ", "ｺﾞ", // カガキギクグケゲコゴ
    "ｻ", "ｻﾞ", "ｼ", "ｼﾞ", "ｽ", "ｽﾞ", "ｾ", "ｾﾞ", "ｿ", "ｿﾞ", // サザシジスズセゼソゾ
    "ﾀ", "ﾀﾞ", "ﾁ", "ﾁﾞ", "ﾂ", "ﾂ", "ﾂﾞ", "ﾃ", "ﾃﾞ", "ﾄ", "ﾄﾞ", // タダチヂッツヅテデトド
    "ﾅ", "ﾆ", "ﾇ", "ﾈ", "ﾉ", // ナニヌネノ
    "ﾊ", "ﾊﾞ", "ﾊﾟ", "ﾋ", "ﾋﾞ", "ﾋﾟ", "ﾌ", "ﾌﾞ", "ﾌﾟ", // ハバパヒビピフブプ
    "ﾍ", "ﾍﾞ", "ﾍﾟ", "ﾎ", "ﾎﾞ", "ﾎﾟ", // ヘベペホボポ
    "ﾏ", "ﾐ", "ﾑ", "ﾒ", "ﾓ", // マミムメモ
    "ﾔ", "ﾔ", "ﾕ", "ﾕ", "ﾖ", "ﾖ", // ャヤュユョヨ
    "ﾗ", "ﾘ", "ﾙ", "ﾚ", "ﾛ", // ラリルレロ
    "", "ﾜ", "", "", "ｦ", "ﾝ", // ヮワヰヱヲン
    "ｳﾞ", "ｶ", "ｹ", // ヴヵヶ
];

/// Half-width small kana U+FF67 (ｧ) ..= U+FF6F (ｯ) written large.
const HALF_WIDTH_SMALL: [char; 9] = ['ｱ', 'ｲ', 'ｳ', 'ｴ', 'ｵ', 'ﾔ', 'ﾕ', 'ﾖ', 'ﾂ'];

/// Half-width kana that take ﾞ.
const TAKES_DAKUTEN: &str = "ｳｶｷｸｹｺｻｼｽｾｿﾀﾁﾂﾃﾄﾊﾋﾌﾍﾎ";
/// Half-width kana that take ﾟ.
const TAKES_HANDAKUTEN: &str = "ﾊﾋﾌﾍﾎ";

/// ASCII symbols of the alphabet besides letters, digits and space.
const ASCII_SYMBOLS: &str = "().-/";

/// The transfer form of one input character.
enum Unit {
    /// A plain (unmarked, large) kana: a following separate mark may attach to it.
    Kana(char),
    /// Anything else that is written as is: ASCII, or a kana already carrying its mark.
    Text(&'static str),
    /// One character written as is that no separate mark may follow: ASCII (folded
    /// from full width or given), or a small half-width kana written large.
    Plain(char),
    /// A separate voiced (`false`) or semi-voiced (`true`) mark.
    Mark { semi: bool },
}

fn is_allowed_ascii(c: char) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit() || c == ' ' || ASCII_SYMBOLS.contains(c)
}

/// Classifies one input character, or refuses it.
fn unit_of(c: char) -> Result<Unit, KanaError> {
    let cp = c as u32;
    // ASCII of the alphabet, as is.
    if c.is_ascii() {
        return if is_allowed_ascii(c) {
            Ok(Unit::Plain(c))
        } else {
            Err(KanaError::NotAllowed(c))
        };
    }
    // Full-width forms of the allowed ASCII (Ａ, ０, （, －, …) fold to ASCII.
    if (0xFF01..=0xFF5E).contains(&cp) {
        let ascii = char::from_u32(cp - 0xFF01 + 0x21).expect("ASCII");
        return if is_allowed_ascii(ascii) {
            Ok(Unit::Plain(ascii))
        } else {
            Err(KanaError::NotAllowed(c))
        };
    }
    match c {
        '\u{3000}' => return Ok(Unit::Plain(' ')), // ideographic space
        'ー' | 'ｰ' => return Ok(Unit::Plain('-')), // long-vowel mark
        // Separate voiced marks: full-width, combining (decomposed input), half-width.
        '゛' | '\u{3099}' | 'ﾞ' => return Ok(Unit::Mark { semi: false }),
        '゜' | '\u{309A}' | 'ﾟ' => return Ok(Unit::Mark { semi: true }),
        _ => {}
    }
    // Full-width katakana.
    if (FW_KATAKANA_FIRST..FW_KATAKANA_FIRST + FULL_WIDTH_KATAKANA.len() as u32).contains(&cp) {
        let form = FULL_WIDTH_KATAKANA[(cp - FW_KATAKANA_FIRST) as usize];
        let is_small = "ァィゥェォッャュョヵヶ".contains(c);
        return match form.chars().count() {
            0 => Err(KanaError::NotAllowed(c)),
            1 if !is_small => Ok(Unit::Kana(form.chars().next().expect("one char"))),
            _ => Ok(Unit::Text(form)),
        };
    }
    // Half-width katakana.
    match cp {
        0xFF66 => Ok(Unit::Kana(c)), // ｦ
        0xFF67..=0xFF6F => Ok(Unit::Plain(HALF_WIDTH_SMALL[(cp - 0xFF67) as usize])), // small → large; no mark may follow
        0xFF71..=0xFF9D => Ok(Unit::Kana(c)),                                         // ｱ..ﾝ
        _ => Err(KanaError::NotAllowed(c)), // ｡ ｢ ｣ ､ ･, kanji, hiragana, …
    }
}

/// Validates `s` against the §6 alphabet and converts it to the half-width transfer
/// form (a `String` of ASCII and U+FF61..U+FF9F characters).
///
/// Accepted: katakana, full- or half-width, small kana (written large), voiced
/// and semi-voiced kana (written as kana + ﾞ / ﾟ, also when the mark is a separate
/// ゛ ゜ ﾞ ﾟ or a combining U+3099 / U+309A), ー and ｰ (written `-`), `A–Z`, `0–9`, space
/// and `( ) . - /` in ASCII or full width (folded to ASCII), and the ideographic
/// space (folded to a space). Everything else is refused. An empty string gives an
/// empty string (whether a name may be empty is the caller's rule).
pub fn to_transfer_kana(s: &str) -> Result<String, KanaError> {
    let mut out = String::with_capacity(s.len());
    // The last plain kana written, while a separate mark may still attach to it.
    let mut mark_base: Option<char> = None;
    for c in s.chars() {
        match unit_of(c)? {
            Unit::Kana(k) => {
                out.push(k);
                mark_base = Some(k);
            }
            Unit::Text(t) => {
                out.push_str(t);
                mark_base = None;
            }
            Unit::Plain(a) => {
                out.push(a);
                mark_base = None;
            }
            Unit::Mark { semi } => {
                let takes = if semi {
                    TAKES_HANDAKUTEN
                } else {
                    TAKES_DAKUTEN
                };
                match mark_base {
                    Some(base) if takes.contains(base) => {
                        out.push(if semi { HW_HANDAKUTEN } else { HW_DAKUTEN });
                        mark_base = None;
                    }
                    _ => return Err(KanaError::MisplacedMark(c)),
                }
            }
        }
    }
    Ok(out)
}

/// Checks that `s` can be written in the bank transfer alphabet (what the merchant
/// ingest calls for `account_holder`, `bank_name_kana` and `branch_name_kana`).
pub fn validate_transfer_kana(s: &str) -> Result<(), KanaError> {
    to_transfer_kana(s).map(|_| ())
}

/// Encodes a string already in transfer form into JIS X 0201 bytes: ASCII maps to
/// itself, U+FF61..=U+FF9F to 0xA1..=0xDF.
///
/// # Panics
/// On any other character: a bug, since [`to_transfer_kana`] comes first.
pub fn encode_jis_x0201(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| {
            let cp = c as u32;
            if c.is_ascii() {
                cp as u8
            } else if (HW_KANA_FIRST..=HW_KANA_LAST).contains(&cp) {
                (cp - HW_KANA_FIRST + JIS_KANA_FIRST_BYTE) as u8
            } else {
                panic!("encode_jis_x0201: {c:?} (U+{cp:04X}) is not in transfer form; call to_transfer_kana first")
            }
        })
        .collect()
}

/// Cuts encoded bytes to at most `width` bytes without leaving a dakuten (0xDE) or
/// handakuten (0xDF) separated from its kana — when the cut would fall between a
/// kana and its mark, both are dropped — then pads with spaces to exactly `width`.
pub fn fit_field(bytes: &[u8], width: usize) -> Vec<u8> {
    let mut keep = bytes.len().min(width);
    if keep < bytes.len() && is_mark(bytes[keep]) && keep > 0 {
        // The first byte cut off is the mark of the last byte kept: drop that kana too.
        keep -= 1;
    }
    let mut field = Vec::with_capacity(width);
    field.extend_from_slice(&bytes[..keep]);
    field.resize(width, BYTE_SPACE);
    field
}

fn is_mark(b: u8) -> bool {
    b == BYTE_DAKUTEN || b == BYTE_HANDAKUTEN
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> String {
        to_transfer_kana(s).unwrap()
    }

    #[test]
    fn voiced_and_semi_voiced_kana_become_kana_plus_mark() {
        assert_eq!(t("ガ"), "ｶﾞ");
        assert_eq!(t("パ"), "ﾊﾟ");
        assert_eq!(t("ヴ"), "ｳﾞ");
        assert_eq!(t("ペイジノ"), "ﾍﾟｲｼﾞﾉ");
        assert_eq!(encode_jis_x0201(&t("ガ")), vec![0xB6, 0xDE]);
        assert_eq!(encode_jis_x0201(&t("パ")), vec![0xCA, 0xDF]);
        assert_eq!(encode_jis_x0201(&t("ヴ")), vec![0xB3, 0xDE]);
    }

    #[test]
    fn small_kana_become_large() {
        assert_eq!(t("ァィゥェォッャュョヵヶ"), "ｱｲｳｴｵﾂﾔﾕﾖｶｹ");
        assert_eq!(t("ｧｨｩｪｫｯｬｭｮ"), "ｱｲｳｴｵﾂﾔﾕﾖ");
        assert_eq!(t("ショウケンシンタクギョウム"), "ｼﾖｳｹﾝｼﾝﾀｸｷﾞﾖｳﾑ");
    }

    #[test]
    fn long_vowel_mark_is_a_hyphen() {
        assert_eq!(t("カード"), "ｶ-ﾄﾞ");
        assert_eq!(t("ｶｰﾄﾞ"), "ｶ-ﾄﾞ");
    }

    #[test]
    fn full_width_and_half_width_input_give_the_same_output() {
        let pairs = [
            ("カ）サンプルペイメント", "ｶ)ｻﾝﾌﾟﾙﾍﾟｲﾒﾝﾄ"),
            ("ヤマダ　タロウ", "ﾔﾏﾀﾞ ﾀﾛｳ"),
            ("ＡＢＣ－１２３（．／）", "ABC-123(./)"),
            ("キャッシュ", "ｷｬｯｼｭ"),
            ("ヲ", "ｦ"),
        ];
        for (full, half) in pairs {
            assert_eq!(t(full), t(half), "{full} vs {half}");
        }
        assert_eq!(t("ＡＢＣ－１２３（．／）"), "ABC-123(./)");
        assert_eq!(t("ヤマダ　タロウ"), "ﾔﾏﾀﾞ ﾀﾛｳ");
    }

    #[test]
    fn separate_and_combining_marks_attach_to_their_kana() {
        assert_eq!(t("カ゛"), "ｶﾞ");
        assert_eq!(t("ハ゜"), "ﾊﾟ");
        assert_eq!(t("カ\u{3099}"), "ｶﾞ"); // decomposed (NFD) input
        assert_eq!(t("ハ\u{309A}"), "ﾊﾟ");
        assert_eq!(t("ｳﾞ"), "ｳﾞ");
    }

    #[test]
    fn misplaced_marks_are_refused() {
        assert_eq!(to_transfer_kana("ﾞｱ"), Err(KanaError::MisplacedMark('ﾞ')));
        assert_eq!(to_transfer_kana("ｱﾞ"), Err(KanaError::MisplacedMark('ﾞ')));
        assert_eq!(to_transfer_kana("ｶﾟ"), Err(KanaError::MisplacedMark('ﾟ')));
        assert_eq!(
            to_transfer_kana("ガ゛"),
            Err(KanaError::MisplacedMark('゛'))
        );
        assert_eq!(to_transfer_kana("ｯﾞ"), Err(KanaError::MisplacedMark('ﾞ')));
        assert_eq!(to_transfer_kana("Aﾞ"), Err(KanaError::MisplacedMark('ﾞ')));
    }

    #[test]
    fn characters_outside_the_alphabet_are_refused() {
        for c in [
            '漢', 'ひ', 'が', 'a', 'ａ', 'ヰ', 'ヱ', 'ヮ', 'ヷ', '・', '･', '｢', ',', '&', '\\',
            '¥', '_', '\t', '−', 'ヽ',
        ] {
            assert_eq!(
                to_transfer_kana(&format!("ｱ{c}")),
                Err(KanaError::NotAllowed(c)),
                "{c:?}"
            );
        }
        assert_eq!(to_transfer_kana("山田"), Err(KanaError::NotAllowed('山')));
        assert_eq!(to_transfer_kana("やまだ"), Err(KanaError::NotAllowed('や')));
    }

    #[test]
    fn empty_is_empty() {
        assert_eq!(t(""), "");
        assert_eq!(validate_transfer_kana(""), Ok(()));
    }

    #[test]
    fn conversion_is_idempotent() {
        for s in ["ガッコウ", "ｶ)ｻﾝﾌﾟﾙﾍﾟｲﾒﾝﾄ", "ＡＢＣ　ヴィー", "リソナ"]
        {
            let once = t(s);
            assert_eq!(t(&once), once);
        }
    }

    #[test]
    fn encoding_maps_ascii_and_the_half_width_block() {
        assert_eq!(encode_jis_x0201("A0 ()-./"), b"A0 ()-./".to_vec());
        assert_eq!(encode_jis_x0201("｡ｱﾝﾟ"), vec![0xA1, 0xB1, 0xDD, 0xDF]);
    }

    #[test]
    #[should_panic(expected = "not in transfer form")]
    fn encoding_a_full_width_character_is_a_bug() {
        encode_jis_x0201("ア");
    }

    #[test]
    fn fit_field_pads_short_values() {
        assert_eq!(fit_field(b"AB", 5), b"AB   ".to_vec());
        assert_eq!(fit_field(b"", 3), b"   ".to_vec());
        assert_eq!(fit_field(b"ABC", 3), b"ABC".to_vec());
    }

    #[test]
    fn cutting_never_separates_a_mark_from_its_kana() {
        // ｱﾊﾞ = B1 CA DE: a cut at 2 would split ﾊﾞ, so both go and a space pads.
        let bytes = encode_jis_x0201(&t("アバ"));
        assert_eq!(bytes, vec![0xB1, 0xCA, 0xDE]);
        assert_eq!(fit_field(&bytes, 2), vec![0xB1, b' ']);
        assert_eq!(fit_field(&bytes, 3), bytes);
        // Same for a semi-voiced mark.
        let bytes = encode_jis_x0201(&t("アパイ"));
        assert_eq!(fit_field(&bytes, 2), vec![0xB1, b' ']);
        assert_eq!(fit_field(&bytes, 3), vec![0xB1, 0xCA, 0xDF]);
        // A cut right after the mark keeps the pair.
        assert_eq!(
            fit_field(&encode_jis_x0201(&t("バイ")), 2),
            vec![0xCA, 0xDE]
        );
        // A cut at 1 before the first pair's mark leaves only spaces.
        assert_eq!(fit_field(&encode_jis_x0201(&t("バ")), 1), vec![b' ']);
        // Plain cut.
        assert_eq!(fit_field(b"ABCDEF", 4), b"ABCD".to_vec());
    }
}
