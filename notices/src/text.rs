//! The embedded font: glyph coverage, text measurement and line wrapping.
//!
//! Measurement shapes the text with rustybuzz exactly as krilla's `draw_text`
//! does (same face, same default features, `guess_segment_properties`), so a
//! width measured here is the width drawn in the PDF.

use std::sync::LazyLock;

/// Noto Sans JP Regular (SIL OFL 1.1, see `fonts/OFL.txt`).
pub(crate) static FONT_BYTES: &[u8] = include_bytes!("../fonts/NotoSansJP-Regular.ttf");

static FACE: LazyLock<rustybuzz::Face<'static>> =
    LazyLock::new(|| rustybuzz::Face::from_slice(FONT_BYTES, 0).expect("the embedded font parses"));

/// The krilla font, built once: `Font::new` hashes the whole 5 MB file, which
/// is too slow to repeat for every notice.
pub(crate) static PDF_FONT: LazyLock<krilla::text::Font> = LazyLock::new(|| {
    krilla::text::Font::new(krilla::Data::from(FONT_BYTES), 0).expect("the embedded font loads")
});

/// Whether the embedded font has a glyph for `ch`. Spaces always count as
/// drawable; control characters never do (every field is drawn on one line).
pub(crate) fn drawable(ch: char) -> bool {
    if ch == ' ' || ch == '\u{3000}' {
        return true;
    }
    if ch.is_control() {
        return false;
    }
    matches!(FACE.glyph_index(ch), Some(g) if g.0 != 0)
}

/// Width in points of `text` drawn at `size`.
pub(crate) fn width(text: &str, size: f32) -> f32 {
    if text.is_empty() {
        return 0.0;
    }
    let mut buffer = rustybuzz::UnicodeBuffer::new();
    buffer.push_str(text);
    buffer.guess_segment_properties();
    let output = rustybuzz::shape(&FACE, &[], buffer);
    let upem = FACE.units_per_em() as f32;
    let advance: i64 = output
        .glyph_positions()
        .iter()
        .map(|p| p.x_advance as i64)
        .sum();
    advance as f32 / upem * size
}

/// Characters that must not begin a line (a light kinsoku rule).
fn no_line_start(ch: char) -> bool {
    matches!(
        ch,
        '、' | '。'
            | '，'
            | '．'
            | '）'
            | '」'
            | '』'
            | '】'
            | '・'
            | '：'
            | '；'
            | '！'
            | '？'
            | 'ー'
            | 'ぁ'
            | 'ぃ'
            | 'ぅ'
            | 'ぇ'
            | 'ぉ'
            | 'っ'
            | 'ゃ'
            | 'ゅ'
            | 'ょ'
            | 'ァ'
            | 'ィ'
            | 'ゥ'
            | 'ェ'
            | 'ォ'
            | 'ッ'
            | 'ャ'
            | 'ュ'
            | 'ョ'
            | ')'
            | ']'
            | ','
            | '.'
            | ':'
            | ';'
            | '!'
            | '?'
            | '様'
    )
}

/// Splits `text` into lines no wider than `max_width` at `size`. Japanese text
/// breaks between any two characters (with a light kinsoku rule); a run of
/// Latin letters or digits breaks at a space when there is one. A single
/// character wider than the line still gets a line of its own, so nothing is
/// ever dropped.
pub(crate) fn wrap(text: &str, size: f32, max_width: f32) -> Vec<String> {
    if width(text, size) <= max_width {
        return vec![text.to_string()];
    }
    let chars: Vec<char> = text.chars().collect();
    let mut lines = Vec::new();
    let mut start = 0;
    while start < chars.len() {
        // Largest end such that chars[start..end] fits (at least one char).
        let mut end = start + 1;
        while end < chars.len() {
            let candidate: String = chars[start..=end].iter().collect();
            if width(&candidate, size) > max_width {
                break;
            }
            end += 1;
        }
        if end < chars.len() {
            // Prefer a break at a space inside an alphanumeric run.
            let is_word = |c: char| c.is_ascii_alphanumeric();
            if is_word(chars[end]) && is_word(chars[end - 1]) {
                if let Some(sp) = (start + 1..end).rev().find(|&i| chars[i] == ' ') {
                    end = sp + 1;
                }
            }
            // Do not start the next line with a closing mark: pull one char back.
            if no_line_start(chars[end]) && end - start > 1 {
                end -= 1;
            }
        }
        let line: String = chars[start..end].iter().collect();
        let trimmed = line.trim_end_matches(' ').to_string();
        lines.push(if trimmed.is_empty() { line } else { trimmed });
        start = end;
        while start < chars.len() && chars[start] == ' ' {
            start += 1;
        }
    }
    lines
}

/// The largest size in `min..=size` at which `text` fits on one line of
/// `max_width`, or `None` when even `min` is too wide.
pub(crate) fn fit_size(text: &str, size: f32, min: f32, max_width: f32) -> Option<f32> {
    let w = width(text, size);
    if w <= max_width {
        return Some(size);
    }
    // Width is linear in size.
    let s = (size * max_width / w * 100.0).floor() / 100.0;
    if s >= min && width(text, s) <= max_width {
        Some(s)
    } else {
        None
    }
}

/// Shrinks `text` down to `min` to fit one line; below that, wraps at `min`.
pub(crate) fn fit_or_wrap(text: &str, size: f32, min: f32, max_width: f32) -> (f32, Vec<String>) {
    match fit_size(text, size, min, max_width) {
        Some(s) => (s, vec![text.to_string()]),
        None => (min, wrap(text, min, max_width)),
    }
}
