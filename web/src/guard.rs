//! What every request must pass, and what every response carries.
//!
//! * **Host allow-list** against DNS rebinding: a page on `evil.example` whose name resolves
//!   to 127.0.0.1 sends `Host: evil.example`, which is refused with 421. Allowed: `localhost`,
//!   `127.0.0.1`, `::1`, the listen address and configured names (any port).
//! * **A token for writes** (and for everything when the endpoint listens beyond loopback):
//!   `Authorization: Bearer TOKEN` or `X-Perfagent-Token: TOKEN`. Both are non-simple headers,
//!   so no web page can send them cross-origin without a CORS preflight, and preflights
//!   (`OPTIONS`) are refused. A `text/plain` form POST from a page therefore gets 401.
//! * **Security headers** on every response: `X-Content-Type-Options: nosniff`,
//!   `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`, and a `Content-Security-Policy`
//!   of `default-src 'none'; frame-ancestors 'none'` unless the response set its own.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Who may ask what.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Host names (without port) requests may be addressed to.
    pub allowed_hosts: Vec<String>,
    /// The token writes need (none: writes are refused).
    pub token: Option<String>,
    /// Whether reads need the token too (an endpoint listening beyond loopback).
    pub token_for_reads: bool,
    /// Where the token is, for the 401 message.
    pub token_hint: String,
    /// Accept any Host (listening on every address with no names configured: the token
    /// guards every request instead).
    pub any_host: bool,
}

impl Policy {
    /// Reads open to loopback clients, writes with `token`.
    pub fn loopback(token: Option<String>) -> Self {
        Self {
            allowed_hosts: ["localhost", "127.0.0.1", "::1", "[::1]"].map(String::from).to_vec(),
            token,
            token_for_reads: false,
            token_hint: "the store's token file".into(),
            any_host: false,
        }
    }

    /// The policy for an endpoint listening on `addr`: loopback as [`Policy::loopback`];
    /// anything else needs the token for every request. `names` are more host names to
    /// accept (the machine's DNS name behind a proxy).
    pub fn for_listener(addr: SocketAddr, token: Option<String>, names: &[String], token_hint: &str) -> Self {
        let mut p = Self::loopback(token);
        p.token_hint = token_hint.to_owned();
        let ip = addr.ip();
        if !ip.is_loopback() {
            p.token_for_reads = true;
            if ip.is_unspecified() {
                p.any_host = names.is_empty();
            } else {
                p.allowed_hosts.push(host_of_ip(ip));
            }
        }
        p.allowed_hosts.extend(names.iter().map(|n| n.to_ascii_lowercase()));
        p
    }

    fn host_allowed(&self, host: &str) -> bool {
        if self.any_host {
            return true;
        }
        let name = strip_port(host).to_ascii_lowercase();
        self.allowed_hosts.iter().any(|h| h.trim_matches(['[', ']']) == name.trim_matches(['[', ']']))
    }

    fn authorized(&self, req: &Request) -> bool {
        let Some(token) = &self.token else { return false };
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .or_else(|| req.headers().get("x-perfagent-token").and_then(|v| v.to_str().ok()));
        given.is_some_and(|g| constant_time_eq(g.trim().as_bytes(), token.as_bytes()))
    }
}

fn host_of_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// `host:port` → `host` (`[::1]:9465` → `[::1]`).
fn strip_port(host: &str) -> &str {
    if let Some(end) = host.strip_prefix('[').and_then(|h| h.find(']')) {
        return &host[..end + 2];
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => h,
        _ => host,
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn refuse(status: StatusCode, text: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text + "\n").into_response()
}

async fn check(State(policy): State<Arc<Policy>>, req: Request, next: Next) -> Response {
    if let Some(host) = req.headers().get(header::HOST).and_then(|v| v.to_str().ok())
        && !policy.host_allowed(host)
    {
        let shown: String = host.chars().filter(|c| !c.is_control()).take(100).collect();
        return refuse(
            StatusCode::MISDIRECTED_REQUEST,
            format!("requests addressed to '{shown}' are refused (a DNS-rebinding guard); use localhost"),
        );
    }
    let write = !matches!(*req.method(), Method::GET | Method::HEAD);
    if req.method() == Method::OPTIONS {
        return refuse(StatusCode::METHOD_NOT_ALLOWED, "cross-origin requests are not allowed".into());
    }
    if (write || policy.token_for_reads) && !policy.authorized(&req) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            format!(
                "this request needs the agent's token: send 'Authorization: Bearer TOKEN' with the token from {}",
                policy.token_hint
            ),
        );
    }
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
    resp
}

/// `router` with the policy applied to every request.
pub fn layer(router: axum::Router, policy: Policy) -> axum::Router {
    router.layer(axum::middleware::from_fn_with_state(Arc::new(policy), check))
}

/// A plain-text response.
pub fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], Body::from(body.into())).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_matched_without_ports() {
        let p = Policy::loopback(None);
        for ok in ["localhost", "localhost:9465", "127.0.0.1:80", "[::1]:9465", "LOCALHOST"] {
            assert!(p.host_allowed(ok), "{ok}");
        }
        for bad in ["evil.example", "evil.example:9465", "127.0.0.1.evil.example", "localhost.evil"] {
            assert!(!p.host_allowed(bad), "{bad}");
        }
        let named =
            Policy::for_listener("10.0.0.5:9465".parse().unwrap(), Some("t".into()), &["perf.internal".into()], "f");
        assert!(named.token_for_reads);
        assert!(named.host_allowed("10.0.0.5:9465") && named.host_allowed("perf.internal"));
        assert!(!named.host_allowed("evil.example"));
        assert_eq!(strip_port("[::1]:9465"), "[::1]");
        let all = Policy::for_listener("0.0.0.0:9465".parse().unwrap(), Some("t".into()), &[], "f");
        assert!(all.host_allowed("anything") && all.token_for_reads);
        assert!(
            constant_time_eq(b"abc", b"abc") && !constant_time_eq(b"abc", b"abd") && !constant_time_eq(b"a", b"ab")
        );
    }
}
