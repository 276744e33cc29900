//! QR codes of invitation codes (SVG) and the printable sheet of a batch (HTML), for branches
//! that hand out paper slips. Presentation only: the codes come from the evaluations service.
//!
//! A QR code encodes the invitation code itself (`ABCD-EFGH-JKMN`), which the evaluation H5 page
//! scans and sends to `POST /api/v1/auth/evaluator`.

use qrcodegen::{QrCode, QrCodeEcc};

/// Modules of quiet zone around the symbol (ISO/IEC 18004 asks for 4).
const QUIET: i32 = 4;

/// The QR code of `text` as a standalone SVG document (black modules on white, scalable).
pub fn svg(text: &str) -> String {
    // A 14-character code always fits (version 1 holds 20 alphanumerics at level M); a failure
    // would only come from a text thousands of characters long.
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

/// A printable A4 page of slips, one per code, each with the code, its QR code and how to use it.
pub fn sheet(quarter: &str, evaluator_kind: &str, codes: &[String]) -> String {
    let who = if evaluator_kind == "member" {
        "党员评议"
    } else {
        "群众评议"
    };
    let mut slips = String::new();
    for code in codes {
        slips.push_str(&format!(
            "<div class=\"slip\"><div class=\"qr\">{qr}</div><div class=\"text\">\
             <div class=\"title\">{who}邀请码 · {quarter}</div>\
             <div class=\"code\">{code}</div>\
             <div class=\"hint\">扫描二维码或在评议页面输入邀请码。每个邀请码只能投票一次,评议不记名。</div>\
             </div></div>",
            qr = svg(code),
            who = who,
            quarter = escape(quarter),
            code = escape(code),
        ));
    }
    format!(
        "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <title>{who}邀请码 {quarter}</title><style>\
         @page {{ size: A4; margin: 10mm; }}\
         body {{ font-family: sans-serif; margin: 0; }}\
         .sheet {{ display: grid; grid-template-columns: 1fr 1fr; gap: 0; }}\
         .slip {{ display: flex; gap: 4mm; align-items: center; padding: 5mm; border: 1px dashed #999; break-inside: avoid; }}\
         .qr svg {{ width: 30mm; height: 30mm; }}\
         .title {{ font-size: 11pt; font-weight: bold; }}\
         .code {{ font-family: monospace; font-size: 18pt; letter-spacing: 1pt; margin: 2mm 0; }}\
         .hint {{ font-size: 8pt; color: #333; }}\
         </style></head><body><div class=\"sheet\">{slips}</div></body></html>",
        who = who,
        quarter = escape(quarter),
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

    #[test]
    fn the_sheet_has_one_slip_per_code() {
        let codes = vec!["ABCD-EFGH-JKMN".to_owned(), "23456-789AB".to_owned()];
        let html = sheet("2026-Q3", "masses", &codes);
        assert_eq!(html.matches("class=\"slip\"").count(), 2);
        assert!(html.contains("群众评议邀请码 · 2026-Q3"));
        assert!(html.contains("23456-789AB"));
        assert!(sheet("<x>", "member", &[]).contains("&lt;x&gt;"));
    }
}
