//! The public base URL (`JIFEN_PUBLIC_URL`): the address people reach the gateway at, which the
//! invitation slips print and encode in their QR codes (`<public url>/m/e#<code>`).
//!
//! It is configured, never taken from a request's `Host` header: a slip is printed once and
//! handed to dozens of people, so it must not depend on how the secretary's request happened to
//! reach the gateway (an ingress may rewrite `Host` to an internal name, and a forged `Host`
//! would print slips that send codes to another site). docs/decisions/0012-evaluation-page.md.
//!
//! Invariant of [`PublicUrl`]: an absolute `http` or `https` URL with a host, an optional port
//! and an optional path, without user information, query or fragment, and without a trailing
//! slash — so `format!("{url}/m/e")` is always well formed.

use std::fmt;
use std::net::SocketAddr;

/// Why a text is not a public base URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PublicUrlError(&'static str);

/// A validated public base URL (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

impl PublicUrl {
    /// Parses an operator's setting: surrounding spaces and trailing slashes are dropped, the
    /// scheme and host are lower-cased.
    pub fn parse(text: &str) -> Result<Self, PublicUrlError> {
        let text = text.trim().trim_end_matches('/');
        let lower = text.to_ascii_lowercase();
        let (scheme, rest) = if lower.starts_with("https://") {
            ("https", &text["https://".len()..])
        } else if lower.starts_with("http://") {
            ("http", &text["http://".len()..])
        } else {
            return Err(PublicUrlError(
                "must be an absolute http:// or https:// URL",
            ));
        };
        if rest.contains(['?', '#']) {
            return Err(PublicUrlError("must not have a query or a fragment"));
        }
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.contains('@') {
            return Err(PublicUrlError("must not carry a user name or password"));
        }
        let (host, port) = split_port(authority)?;
        let host_ok = !host.is_empty()
            && (host.starts_with('[') && host.ends_with(']') && host.len() > 2
                || host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'));
        if !host_ok {
            return Err(PublicUrlError("must name a host"));
        }
        if let Some(port) = port
            && port.parse::<u16>().map_or(true, |p| p == 0)
        {
            return Err(PublicUrlError("has a bad port"));
        }
        let path_ok = path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~/%".contains(&b));
        if !path_ok || path.contains("//") {
            return Err(PublicUrlError(
                "has a path with characters that need escaping",
            ));
        }
        let authority = match port {
            Some(port) => format!("{}:{port}", host.to_ascii_lowercase()),
            None => host.to_ascii_lowercase(),
        };
        Ok(Self(format!("{scheme}://{authority}{path}")))
    }

    /// `http://<addr>`: the default when the gateway listens on a loopback address.
    pub fn local(addr: SocketAddr) -> Self {
        Self(format!("http://{addr}"))
    }

    /// The base URL without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The evaluation page (`<base>/m/e`).
    pub fn evaluation_page(&self) -> String {
        format!("{}/m/e", self.0)
    }

    /// What a slip's QR code opens: the evaluation page with the code in the fragment, which a
    /// browser never sends to a server (nor in a Referer header).
    pub fn evaluation_link(&self, code: &str) -> String {
        format!("{}#{code}", self.evaluation_page())
    }

    /// The evaluation page as a person types it: without `https://` (browsers add it), or with
    /// `http://` kept since a browser would otherwise try https first.
    pub fn evaluation_page_short(&self) -> String {
        let page = self.evaluation_page();
        match page.strip_prefix("https://") {
            Some(short) => short.to_owned(),
            None => page,
        }
    }
}

impl fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `host[:port]` (an IPv6 host in brackets) → host and port.
fn split_port(authority: &str) -> Result<(&str, Option<&str>), PublicUrlError> {
    if authority.starts_with('[') {
        let end = authority
            .find(']')
            .ok_or(PublicUrlError("must name a host"))?;
        let (host, rest) = authority.split_at(end + 1);
        return match rest.strip_prefix(':') {
            Some(port) => Ok((host, Some(port))),
            None if rest.is_empty() => Ok((host, None)),
            None => Err(PublicUrlError("must name a host")),
        };
    }
    Ok(match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

/// Whether the listen address `JIFEN_GATEWAY_ADDR` is a loopback one (only this machine can
/// reach it, so its own address is a fine default for the slips).
pub fn is_loopback(listen: &str) -> bool {
    match listen.parse::<SocketAddr>() {
        Ok(addr) => addr.ip().is_loopback(),
        Err(_) => listen.to_ascii_lowercase().starts_with("localhost:"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_good_url_is_normalized() {
        for (given, stored) in [
            ("https://jifen.example.org", "https://jifen.example.org"),
            ("https://jifen.example.org/", "https://jifen.example.org"),
            (" HTTPS://Jifen.Example.org// ", "https://jifen.example.org"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://[::1]:8080/", "http://[::1]:8080"),
            (
                "https://gov.example.cn/jifen/",
                "https://gov.example.cn/jifen",
            ),
        ] {
            assert_eq!(PublicUrl::parse(given).unwrap().as_str(), stored, "{given}");
        }
        let url = PublicUrl::parse("https://jifen.example.org/").unwrap();
        assert_eq!(
            url.evaluation_link("ABCD-EFGH-JKMN"),
            "https://jifen.example.org/m/e#ABCD-EFGH-JKMN"
        );
        assert_eq!(url.evaluation_page_short(), "jifen.example.org/m/e");
        let local = PublicUrl::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(local.evaluation_page_short(), "http://127.0.0.1:8080/m/e");
    }

    #[test]
    fn a_bad_url_is_refused() {
        for bad in [
            "",
            "jifen.example.org",
            "ftp://jifen.example.org",
            "https://",
            "https:///m",
            "https://jifen.example.org?x=1",
            "https://jifen.example.org/#top",
            "https://user:pw@jifen.example.org",
            "https://jifen example.org",
            "https://jifen.example.org:http",
            "https://jifen.example.org:0",
            "https://jifen.example.org:70000",
            "https://jifen.example.org/a b",
            "https://jifen.example.org/<x>",
            "javascript:alert(1)",
        ] {
            assert!(PublicUrl::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn loopback_listen_addresses() {
        assert!(is_loopback("127.0.0.1:8080"));
        assert!(is_loopback("[::1]:0"));
        assert!(is_loopback("localhost:8080"));
        assert!(!is_loopback("0.0.0.0:8080"));
        assert!(!is_loopback("10.0.0.5:8080"));
        assert!(!is_loopback("jifen-gateway:8080"));
        assert_eq!(
            PublicUrl::local("127.0.0.1:8080".parse().unwrap()).as_str(),
            "http://127.0.0.1:8080"
        );
    }
}
