//! QR codes of invitation codes (SVG) and the printable sheet of a batch (HTML), for branches
//! that hand out paper slips. Presentation only: the codes come from the evaluations service.
//!
//! A slip's QR code encodes the evaluation page's address with the code in the fragment,
//! `<JIFEN_PUBLIC_URL>/m/e#ABCD-EFGH-JKMN`: a phone's camera opens the page, which reads the code
//! from the fragment (never sent to a server) and sends it to `POST /api/v1/auth/evaluator`. The
//! slip also prints the code in large type and the page's short address, for typing by hand.

use crate::public_url::PublicUrl;
use qrcodegen::{QrCode, QrCodeEcc};

/// Modules of quiet zone around the symbol (ISO/IEC 18004 asks for 4).
const QUIET: i32 = 4;

/// The QR code of `text` as a standalone SVG document (black modules on white, scalable).
pub fn svg(text: &str) -> String {
    // A link of a few dozen bytes fits easily (version 40 holds 2331 bytes at level M); a
    // failure would only come from a text thousands of characters long.
    let Ok(qr) = QrCode::encode_text(text, QrCodeEcc::Medium) else {
        return String::new();
    };
    let size = qr.size() + 2 * QUIET;
    let mut path = String::new();
    for y in 0..qr.size() {
        for x in 0..qr.size() {
            if qr.get_module(x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + QUIET, y + QUIET));
            }
        }
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" shape-rendering=\"crispEdges\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#fff\"/><path d=\"{path}\" fill=\"#000\"/></svg>"
    )
}

fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// `2026-Q4` as people read it, `2026年第四季度` (anything else as given).
fn quarter_label(quarter: &str) -> String {
    let named = quarter.split_once("-Q").and_then(|(year, n)| {
        let name = match n {
            "1" => "一",
            "2" => "二",
            "3" => "三",
            "4" => "四",
            _ => return None,
        };
        (year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit()))
            .then(|| format!("{year}年第{name}季度"))
    });
    named.unwrap_or_else(|| quarter.to_owned())
}

/// A printable A4 page of slips, one per code, each with the QR code of the code's link to the
/// evaluation page, the code in large type, the page's short address and how to use them.
pub fn sheet(
    public_url: &PublicUrl,
    quarter: &str,
    evaluator_kind: &str,
    codes: &[String],
) -> String {
    let who = if evaluator_kind == "member" {
        "党员评议"
    } else {
        "群众评议"
    };
    let page = escape(&public_url.evaluation_page_short());
    let mut slips = String::new();
    for code in codes {
        slips.push_str(&format!(
            "<div class=\"slip\"><div class=\"qr\">{qr}</div><div class=\"text\">\
             <div class=\"title\">{who}邀请码 · {quarter}</div>\
             <div class=\"code\">{code}</div>\
             <div class=\"how\">用微信或手机相机扫描二维码；或打开 <span class=\"url\">{page}</span> 输入邀请码。</div>\
             <div class=\"hint\">每个邀请码只能投票一次，评议不记名。</div>\
             </div></div>",
            qr = svg(&public_url.evaluation_link(code)),
            who = who,
            quarter = escape(&quarter_label(quarter)),
            code = escape(code),
            page = page,
        ));
    }
    format!(
        "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <title>{who}邀请码 {quarter}</title><style>\
         @page {{ size: A4; margin: 10mm; }}\
         body {{ font-family: sans-serif; margin: 0; }}\
         .sheet {{ display: grid; grid-template-columns: 1fr 1fr; gap: 0; }}\
         .slip {{ display: flex; gap: 4mm; align-items: center; padding: 5mm; border: 1px dashed #999; break-inside: avoid; }}\
         .qr svg {{ width: 32mm; height: 32mm; display: block; }}\
         .title {{ font-size: 11pt; font-weight: bold; }}\
         .code {{ font-family: monospace; font-size: 18pt; font-weight: bold; letter-spacing: 1pt; margin: 2mm 0; white-space: nowrap; }}\
         .how {{ font-size: 8.5pt; color: #000; }}\
         .url {{ font-family: monospace; font-weight: bold; word-break: break-all; }}\
         .hint {{ font-size: 8pt; color: #333; margin-top: 1mm; }}\
         </style></head><body><div class=\"sheet\">{slips}</div></body></html>",
        who = who,
        quarter = escape(&quarter_label(quarter)),
        slips = slips,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn svg_is_a_square_symbol_with_quiet_zone() {
        let s = svg("ABCD-EFGH-JKMN");
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        // Version 1 (21 modules) plus 4 on each side.
        assert!(s.contains("viewBox=\"0 0 29 29\""), "{s}");
        assert!(
            s.contains("M4,4h1v1h-1z"),
            "the finder pattern's corner module"
        );
    }

    fn modules(svg: &str) -> Vec<(usize, usize)> {
        let path = svg.split("d=\"").nth(1).unwrap().split('"').next().unwrap();
        path.split('M')
            .filter(|m| !m.is_empty())
            .map(|m| {
                let (x, rest) = m.split_once(',').unwrap();
                let y = rest.split('h').next().unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect()
    }

    /// Reads the SVG back as a QR code (as a phone's camera would).
    fn decode(svg: &str) -> String {
        let size: usize = svg
            .split("viewBox=\"0 0 ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let scale = 4;
        let dark: std::collections::HashSet<_> = modules(svg).into_iter().collect();
        let mut img =
            rqrr::PreparedImage::prepare_from_greyscale(size * scale, size * scale, |x, y| {
                if dark.contains(&(x / scale, y / scale)) {
                    0
                } else {
                    255
                }
            });
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1);
        grids[0].decode().unwrap().1
    }

    #[test]
    fn the_svg_decodes_to_its_text() {
        let link = "https://jifen.example.org/m/e#ABCD-EFGH-JKMN";
        assert_eq!(decode(&svg(link)), link);
    }

    #[test]
    fn the_sheet_has_one_slip_per_code_whose_qr_opens_the_page() {
        let url = PublicUrl::parse("https://jifen.example.org/").unwrap();
        let codes = vec!["ABCD-EFGH-JKMN".to_owned(), "2345-6789-ABCD".to_owned()];
        let html = sheet(&url, "2026-Q3", "masses", &codes);
        assert_eq!(html.matches("class=\"slip\"").count(), 2);
        assert!(html.contains("群众评议邀请码 · 2026年第三季度"));
        assert!(html.contains("<div class=\"code\">2345-6789-ABCD</div>"));
        assert!(html.contains("<span class=\"url\">jifen.example.org/m/e</span>"));
        let svgs: Vec<&str> = html
            .split("<svg")
            .skip(1)
            .map(|s| s.split("</svg>").next().unwrap())
            .collect();
        let links: Vec<String> = svgs
            .iter()
            .map(|s| decode(&format!("<svg{s}</svg>")))
            .collect();
        assert_eq!(
            links,
            [
                "https://jifen.example.org/m/e#ABCD-EFGH-JKMN",
                "https://jifen.example.org/m/e#2345-6789-ABCD"
            ]
        );
        assert!(sheet(&url, "<x>", "member", &[]).contains("&lt;x&gt;"));
        assert_eq!(quarter_label("2026-Q4"), "2026年第四季度");
        assert_eq!(quarter_label("2026-Q5"), "2026-Q5");
        assert!(sheet(&url, "2026-Q3", "member", &[]).contains("党员评议邀请码"));
    }
}
