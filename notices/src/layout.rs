//! Page layout: the notice is laid out into pages of drawing operations first
//! (so the page count is known before anything is drawn), then drawn with
//! krilla. Every piece of text is measured; nothing is clipped: long values
//! shrink a little, then wrap, and content that does not fit continues on the
//! next page.

use crate::text::{fit_or_wrap, width, wrap};
use crate::{format_date_ja, format_period, format_yen, group_thousands, NoticeDocument};

pub(crate) const PAGE_W: f32 = 595.276; // A4, 210 mm
pub(crate) const PAGE_H: f32 = 841.89; // A4, 297 mm
const LEFT: f32 = 45.0;
const RIGHT: f32 = PAGE_W - 45.0;
const CONTENT_W: f32 = RIGHT - LEFT;
const TOP: f32 = 42.0;
const BOTTOM: f32 = PAGE_H - 48.0;
const LINE_GAP: f32 = 1.45; // line height = size × LINE_GAP
const CELL_PAD_X: f32 = 4.0;
const CELL_PAD_Y: f32 = 4.0;

const GRAY_HEADER: u8 = 225;
const GRAY_LABEL: u8 = 240;
const GRAY_TOTAL: u8 = 232;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Align {
    Left,
    Center,
    Right,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    /// `y` is the baseline.
    Text {
        x: f32,
        y: f32,
        size: f32,
        text: String,
    },
    #[allow(dead_code)]
    Line {
        x1: f32,
        y1: f32,
        x2: f32,
        y2: f32,
        width: f32,
    },
    Rect {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        fill: Option<u8>,
        stroke: Option<f32>,
    },
}

pub(crate) struct Layout {
    pub pages: Vec<Vec<Op>>,
    y: f32,
    /// y below the running header of the current page: a page holding nothing
    /// below it is never abandoned for a new one.
    page_top: f32,
    continuation: String,
}

fn line_h(size: f32) -> f32 {
    size * LINE_GAP
}

/// Baseline of one line of `size` in a band starting at `top` of height `h`:
/// CJK glyphs sit in roughly [-0.12, 0.88] em, so centre that box.
fn baseline(top: f32, h: f32, size: f32) -> f32 {
    top + h / 2.0 + size * 0.38
}

/// A table cell: lines of text at one size.
#[derive(Debug, Clone)]
pub(crate) struct Cell {
    lines: Vec<String>,
    size: f32,
    align: Align,
    fill: Option<u8>,
}

/// A column: left x and width.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Col {
    x: f32,
    w: f32,
}

impl Layout {
    pub(crate) fn new(notice_no: &str) -> Layout {
        let mut l = Layout {
            pages: Vec::new(),
            y: TOP,
            page_top: TOP,
            continuation: format!("お支払通知書（続き）　通知書No： {notice_no}"),
        };
        l.new_page();
        l
    }

    fn ops(&mut self) -> &mut Vec<Op> {
        self.pages.last_mut().expect("a page")
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = TOP;
        if self.pages.len() > 1 {
            let size = 9.0;
            let text = self.continuation.clone();
            let y = self.y;
            self.text_line(&text, size, LEFT, CONTENT_W, Align::Left, y);
            self.y += line_h(size) + 8.0;
        }
        self.page_top = self.y;
    }

    /// Makes room for `h` points, starting a new page when the current one is
    /// too full. Returns whether a new page was started.
    fn ensure(&mut self, h: f32) -> bool {
        if self.y + h > BOTTOM && self.y > self.page_top + 0.01 {
            self.new_page();
            true
        } else {
            false
        }
    }

    fn space(&mut self, h: f32) {
        self.y += h;
    }

    /// One line of text in the band `[x, x+w]`, baseline `y`.
    fn text_line(&mut self, text: &str, size: f32, x: f32, w: f32, align: Align, y: f32) {
        if text.is_empty() {
            return;
        }
        let tw = width(text, size);
        let tx = match align {
            Align::Left => x,
            Align::Center => x + (w - tw) / 2.0,
            Align::Right => x + w - tw,
        };
        self.ops().push(Op::Text {
            x: tx,
            y,
            size,
            text: text.to_string(),
        });
    }

    /// A paragraph in the band `[x, x+w]`, wrapped, each line its own flow item.
    fn paragraph(&mut self, text: &str, size: f32, x: f32, w: f32, align: Align) {
        for line in wrap(text, size, w) {
            let h = line_h(size);
            self.ensure(h);
            let y = baseline(self.y, h, size);
            self.text_line(&line, size, x, w, align, y);
            self.y += h;
        }
    }

    /// Two independent columns of lines side by side, flowed row by row.
    fn two_columns(&mut self, left: Vec<(String, f32)>, right: Vec<(String, f32)>, split: f32) {
        let rows = left.len().max(right.len());
        for i in 0..rows {
            let ls = left.get(i).map(|l| l.1).unwrap_or(0.0);
            let rs = right.get(i).map(|r| r.1).unwrap_or(0.0);
            let h = line_h(ls.max(rs));
            self.ensure(h);
            let top = self.y;
            if let Some((t, s)) = left.get(i) {
                let y = baseline(top, h, *s);
                self.text_line(t, *s, LEFT, split - LEFT, Align::Left, y);
            }
            if let Some((t, s)) = right.get(i) {
                let y = baseline(top, h, *s);
                self.text_line(t, *s, split, RIGHT - split, Align::Right, y);
            }
            self.y += h;
        }
    }

    /// A row of a ruled table. A row taller than the room left starts a new
    /// page (after which `header` is drawn again); a row taller than a whole
    /// page is split between pages line by line.
    fn table_row(
        &mut self,
        cols: &[Col],
        mut cells: Vec<Cell>,
        min_h: f32,
        border: f32,
        header: &dyn Fn(&mut Layout),
    ) {
        let needed = |cells: &[Cell]| -> f32 {
            let content = cells
                .iter()
                .map(|c| c.lines.len() as f32 * line_h(c.size))
                .fold(0.0, f32::max);
            (content + 2.0 * CELL_PAD_Y).max(min_h)
        };
        let full_page = BOTTOM - TOP - 40.0;
        let h = needed(&cells);
        if h <= full_page && self.ensure(h) {
            header(self);
        }
        loop {
            // Not even one line of every cell fits: continue on a new page.
            let one_line =
                cells.iter().map(|c| line_h(c.size)).fold(0.0, f32::max) + 2.0 * CELL_PAD_Y;
            if self.y + one_line.max(min_h) > BOTTOM && self.y > self.page_top + 0.01 {
                self.new_page();
                header(self);
            }
            let avail = BOTTOM - self.y;
            // Take as many lines of each cell as fit in the room left.
            let mut slice: Vec<Cell> = Vec::with_capacity(cells.len());
            let mut rest: Vec<Cell> = Vec::with_capacity(cells.len());
            let mut more = false;
            for c in &cells {
                let fit = (((avail - 2.0 * CELL_PAD_Y) / line_h(c.size))
                    .floor()
                    .max(1.0)) as usize;
                let n = c.lines.len().min(fit);
                let mut a = c.clone();
                a.lines.truncate(n);
                let mut b = c.clone();
                b.lines = c.lines[n..].to_vec();
                more |= !b.lines.is_empty();
                slice.push(a);
                rest.push(b);
            }
            let h = needed(&slice);
            self.draw_row(cols, &slice, h, border);
            if !more {
                break;
            }
            self.new_page();
            header(self);
            cells = rest;
        }
    }

    fn draw_row(&mut self, cols: &[Col], cells: &[Cell], h: f32, border: f32) {
        let top = self.y;
        for (col, cell) in cols.iter().zip(cells) {
            self.ops().push(Op::Rect {
                x: col.x,
                y: top,
                w: col.w,
                h,
                fill: cell.fill,
                stroke: Some(0.5),
            });
            let lh = line_h(cell.size);
            let block = cell.lines.len() as f32 * lh;
            let mut t = top + (h - block) / 2.0;
            for line in &cell.lines {
                let y = baseline(t, lh, cell.size);
                self.text_line(
                    line,
                    cell.size,
                    col.x + CELL_PAD_X,
                    col.w - 2.0 * CELL_PAD_X,
                    cell.align,
                    y,
                );
                t += lh;
            }
        }
        if border > 0.5 {
            let x = cols.first().map(|c| c.x).unwrap_or(LEFT);
            let w: f32 = cols.iter().map(|c| c.w).sum();
            self.ops().push(Op::Rect {
                x,
                y: top,
                w,
                h,
                fill: None,
                stroke: Some(border),
            });
        }
        self.y += h;
    }
}

/// Text that wraps (names): shrinks to 85 % at most, then wraps.
fn wrap_cell(text: &str, size: f32, w: f32, align: Align, fill: Option<u8>) -> Cell {
    let (size, lines) = fit_or_wrap(text, size, (size * 0.85).max(6.0), w - 2.0 * CELL_PAD_X);
    Cell {
        lines,
        size,
        align,
        fill,
    }
}

/// A figure: shrinks as far as needed (figures are never wrapped unless even
/// 4 pt is too wide).
fn figure_cell(text: &str, size: f32, w: f32, align: Align, fill: Option<u8>) -> Cell {
    let (size, lines) = fit_or_wrap(text, size, 4.0, w - 2.0 * CELL_PAD_X);
    Cell {
        lines,
        size,
        align,
        fill,
    }
}

fn cols_from(widths: &[f32], x0: f32) -> Vec<Col> {
    let mut x = x0;
    widths
        .iter()
        .map(|&w| {
            let c = Col { x, w };
            x += w;
            c
        })
        .collect()
}

/// Column widths of the amounts table (sum = CONTENT_W).
const TABLE_W: [f32; 7] = [92.0, 62.0, 52.0, 82.0, 50.0, 76.0, 0.0];

fn table_cols() -> Vec<Col> {
    let mut w = TABLE_W;
    w[6] = CONTENT_W - TABLE_W[..6].iter().sum::<f32>();
    cols_from(&w, LEFT)
}

/// Fixed wording (checked by a test to be drawable by the font).
pub(crate) const HEADERS: [&str; 7] = [
    "カード種類",
    "取扱期間",
    "取引件数",
    "売上金額",
    "料率",
    "決済手数料",
    "金額",
];
pub(crate) const FOOTNOTES: [&str; 3] = [
    "*1：過去のお支払済みの取引に対して取り消し、または変更により発生した赤伝処理分となります。",
    "カード会社との直接契約分のお取引は本通知書には含まれません。直接契約先のカード会社にお問い合わせください。",
    "その他：American Express/Diners Club/Discover",
];
pub(crate) const CLOSING: [&str; 2] = [
    "※ご入金の時間帯は各金融機関により異なり、当社から指定することはできません。お振込み予定日にご入金を確認できない場合は、ご指定の金融機関へ直接お問い合わせください。",
    "※本通知書のZIPファイルを展開する際のパスワードは、ご契約時にお渡ししている書面に記載の数字9桁です。",
];

pub(crate) fn greeting(issuer_name: &str) -> [String; 2] {
    [
        format!(
            "平素より{issuer_name}の決済サービスをご利用いただきまして誠にありがとうございます。"
        ),
        "下記の通り、お支払予定金額をご案内いたします。".to_string(),
    ]
}

/// Lays out the whole notice.
pub(crate) fn layout(doc: &NoticeDocument) -> Layout {
    let mut l = Layout::new(&doc.notice_no);

    // 1. Addressee (left) and issue date / notice number (right).
    let split = LEFT + 310.0;
    let left_w = split - LEFT - 10.0;
    let mut left: Vec<(String, f32)> = Vec::new();
    let (ms, mlines) = fit_or_wrap(&format!("{} 様", doc.merchant_name), 14.0, 11.0, left_w);
    left.extend(mlines.into_iter().map(|t| (t, ms)));
    let (cs, clines) = fit_or_wrap(
        &format!("ご担当者： {} 様", doc.contact_name),
        10.0,
        8.5,
        left_w,
    );
    left.push((String::new(), 4.0));
    left.extend(clines.into_iter().map(|t| (t, cs)));
    let right_w = RIGHT - split;
    let mut right: Vec<(String, f32)> = Vec::new();
    for t in [
        format!("発行日： {}", format_date_ja(doc.issue_date)),
        format!("通知書No： {}", doc.notice_no),
    ] {
        let (s, lines) = fit_or_wrap(&t, 9.0, 7.0, right_w);
        right.extend(lines.into_iter().map(|t| (t, s)));
    }
    // Dates sit on the first rows; the addressee starts one row lower, as in
    // the manual's sample.
    left.insert(0, (String::new(), 9.0));
    left.insert(0, (String::new(), 9.0));
    l.two_columns(left, right, split);

    // 2. Title.
    l.space(14.0);
    l.paragraph("お支払通知書", 20.0, LEFT, CONTENT_W, Align::Center);
    l.space(6.0);

    // 3. Issuer block (right column).
    let ix = RIGHT - 210.0;
    let iw = 210.0;
    l.paragraph(&doc.issuer.name, 10.5, ix, iw, Align::Left);
    l.paragraph(
        &format!("〒{}", doc.issuer.postal_code),
        9.0,
        ix,
        iw,
        Align::Left,
    );
    l.paragraph(&doc.issuer.address, 9.0, ix, iw, Align::Left);
    l.paragraph(
        &format!("TEL {}", doc.issuer.phone),
        9.0,
        ix,
        iw,
        Align::Left,
    );
    l.space(10.0);

    // 4. Greeting.
    for g in greeting(&doc.issuer.name) {
        l.paragraph(&g, 9.5, LEFT, CONTENT_W, Align::Left);
    }
    l.space(8.0);

    // 5. The amounts table.
    let cols = table_cols();
    let header = {
        let cols = cols.clone();
        move |l: &mut Layout| {
            let cells = HEADERS
                .iter()
                .zip(&cols)
                .map(|(h, c)| figure_cell(h, 8.5, c.w, Align::Center, Some(GRAY_HEADER)))
                .collect();
            l.table_row(&cols, cells, 20.0, 0.5, &|_| {});
        }
    };
    l.ensure(line_h(8.0) + 20.0 + 22.0);
    l.paragraph("単位：円", 8.0, LEFT, CONTENT_W, Align::Right);
    header(&mut l);
    for line in &doc.lines {
        let v = [
            (line.group.clone(), Align::Left),
            (
                format_period(doc.period_start, doc.period_end),
                Align::Center,
            ),
            (group_thousands(line.count as i128), Align::Right),
            (format_yen(line.sales_yen), Align::Right),
            (format!("{}%", line.rate_percent), Align::Right),
            (format_yen(line.fee_yen), Align::Right),
            (format_yen(line.net_yen), Align::Right),
        ];
        let cells = v
            .iter()
            .zip(&cols)
            .enumerate()
            .map(|(i, ((t, a), c))| {
                if i == 0 {
                    wrap_cell(t, 9.5, c.w, *a, None)
                } else {
                    figure_cell(t, 9.5, c.w, *a, None)
                }
            })
            .collect();
        l.table_row(&cols, cells, 22.0, 0.5, &header);
    }
    // Summary rows: the label spans the first six columns, the amount sits in
    // the 金額 column, so the 金額 column reads as the running calculation.
    let label_col = Col {
        x: cols[0].x,
        w: cols[..6].iter().map(|c| c.w).sum(),
    };
    let amount_col = cols[6];
    let sum_cols = [label_col, amount_col];
    let mut summary: Vec<(&str, i64)> = vec![
        ("決済手数料にかかる消費税", doc.fee_tax_yen),
        ("前未精算金額 (*1)", doc.previous_unsettled_yen),
    ];
    if let Some(cb) = doc.chargebacks_yen {
        summary.push(("チャージバック", cb));
    }
    summary.push(("振込手数料", doc.transfer_fee_yen));
    summary.push(("振込手数料にかかる消費税", doc.transfer_fee_tax_yen));
    for (label, amount) in summary {
        let cells = vec![
            figure_cell(label, 9.5, label_col.w, Align::Left, Some(GRAY_LABEL)),
            figure_cell(&format_yen(amount), 9.5, amount_col.w, Align::Right, None),
        ];
        l.table_row(&sum_cols, cells, 22.0, 0.5, &header);
    }
    let cells = vec![
        figure_cell(
            "差引お振込金額",
            12.0,
            label_col.w,
            Align::Left,
            Some(GRAY_TOTAL),
        ),
        figure_cell(
            &format_yen(doc.payout_yen),
            14.0,
            amount_col.w,
            Align::Right,
            Some(GRAY_TOTAL),
        ),
    ];
    l.table_row(&sum_cols, cells, 30.0, 1.8, &header);
    l.space(8.0);

    // 6. Footnotes.
    for f in FOOTNOTES {
        l.paragraph(f, 8.0, LEFT, CONTENT_W, Align::Left);
    }
    l.space(14.0);

    // 7. Payee bank.
    let bank_cols = cols_from(&[120.0, 240.0], LEFT);
    l.ensure(line_h(9.5) + 20.0 * 2.0);
    l.paragraph("お振込先", 9.5, LEFT, CONTENT_W, Align::Left);
    l.space(2.0);
    let rows = [
        ("指定金融機関", doc.bank_name.clone()),
        ("金融機関支店名", doc.branch_name.clone()),
        ("口座種類", doc.account_type.clone()),
        ("口座番号", doc.account_number_masked.clone()),
        ("口座名義", doc.account_holder.clone()),
        ("お振込み予定日", format_date_ja(doc.payout_date)),
    ];
    for (label, value) in rows {
        let cells = vec![
            figure_cell(label, 9.0, bank_cols[0].w, Align::Left, Some(GRAY_LABEL)),
            wrap_cell(&value, 10.0, bank_cols[1].w, Align::Left, None),
        ];
        l.table_row(&bank_cols, cells, 20.0, 0.5, &|_| {});
    }
    l.space(14.0);

    // 8. Closing notes and support.
    for c in CLOSING {
        l.paragraph(c, 8.0, LEFT, CONTENT_W, Align::Left);
    }
    l.space(6.0);
    l.paragraph(
        &format!("お問い合わせ先：{}", doc.issuer.support),
        9.0,
        LEFT,
        CONTENT_W,
        Align::Left,
    );

    // Page numbers only when the notice runs over one page.
    let n = l.pages.len();
    if n > 1 {
        for (i, page) in l.pages.iter_mut().enumerate() {
            let t = format!("{}/{}", i + 1, n);
            let size = 8.0;
            let tw = width(&t, size);
            page.push(Op::Text {
                x: (PAGE_W - tw) / 2.0,
                y: PAGE_H - 26.0,
                size,
                text: t,
            });
        }
    }
    l
}
