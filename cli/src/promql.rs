//! A PromQL client for `stats --prometheus`: instant queries against a Prometheus-compatible
//! server's HTTP API (`/api/v1/query`), over plain HTTP or TLS (rustls, Mozilla's roots), with
//! errors that name the URL and the query.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::time::Duration;

use perfanalysis::fleet::PromSample;
use perfprobe::rustls;

/// A server: `http(s)://host[:port][/prefix]`.
#[derive(Debug, Clone)]
pub struct Server {
    url: String,
    target: perfprobe::Target,
}

impl Server {
    /// Read the URL, or say what is wrong with it.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim_end_matches('/').to_owned();
        let target = perfprobe::parse_target(&url)
            .ok()
            .filter(|t| t.scheme != "tcp")
            .ok_or_else(|| format!("expected a URL like http://prometheus:9090, got '{url}'"))?;
        Ok(Self { url, target })
    }

    /// The vector `promql` gives at `time_ms`.
    pub fn query(&self, promql: &str, time_ms: i64) -> anyhow::Result<Vec<PromSample>> {
        let params = format!("&time={:.3}", time_ms as f64 / 1000.0);
        self.results("query", promql, &params)?
            .iter()
            .map(|r| {
                let value = r["value"][1]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| self.fail(promql, format!("no value in {r}")))?;
                Ok(PromSample { labels: labels(&r["metric"]), value })
            })
            .collect()
    }

    /// The matrix `promql` gives from `start_ms` to `end_ms` every `step_ms`: each series'
    /// labels and `(Unix ms, value)` points.
    pub fn query_range(
        &self,
        promql: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> anyhow::Result<Vec<perfanalysis::fleet::Matrix>> {
        let s = |ms: i64| ms as f64 / 1000.0;
        let params = format!("&start={:.3}&end={:.3}&step={:.3}", s(start_ms), s(end_ms), s(step_ms));
        self.results("query_range", promql, &params)?
            .iter()
            .map(|r| {
                let points = r["values"]
                    .as_array()
                    .ok_or_else(|| self.fail(promql, format!("no values in {r}")))?
                    .iter()
                    .filter_map(|v| {
                        let t = v[0].as_f64()?;
                        let x = v[1].as_str()?.parse::<f64>().ok()?;
                        Some(((t * 1000.0).round() as i64, x))
                    })
                    .collect();
                Ok((labels(&r["metric"]), points))
            })
            .collect()
    }

    /// The `result` array of `/api/v1/{endpoint}?query=…{params}`.
    fn results(&self, endpoint: &str, promql: &str, params: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        let base = self.target.path.trim_end_matches('/');
        let path = format!("{base}/api/v1/{endpoint}?query={}{params}", encode(promql));
        Ok(self.api(&path, promql)?["result"].as_array().cloned().unwrap_or_default())
    }

    /// An error naming the server and the query.
    fn fail(&self, promql: &str, why: String) -> anyhow::Error {
        anyhow::anyhow!("{}: query {promql}: {why}", self.url)
    }

    /// GET an API path: its `data`, or an error naming the URL and the query.
    fn api(&self, path: &str, promql: &str) -> anyhow::Result<serde_json::Value> {
        let fail = |why: String| self.fail(promql, why);
        let (status, body) = self.get(path).map_err(fail)?;
        let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| {
            fail(format!(
                "HTTP {status}, not a Prometheus API answer ({e}): {}",
                body.chars().take(200).collect::<String>()
            ))
        })?;
        if v["status"] != "success" {
            return Err(fail(format!(
                "HTTP {status}: {} {}",
                v["errorType"].as_str().unwrap_or(""),
                v["error"].as_str().unwrap_or("")
            )));
        }
        Ok(v["data"].clone())
    }

    /// GET `path`: the status and the body. HTTP/1.0, so the answer is never chunked.
    fn get(&self, path: &str) -> Result<(u16, String), String> {
        let t = &self.target;
        let addr = (t.host.as_str(), t.port)
            .to_socket_addrs()
            .map_err(|e| format!("{} does not resolve ({e})", t.host))?
            .next()
            .ok_or_else(|| format!("{} has no address", t.host))?;
        let timeout = Duration::from_secs(30);
        let mut tcp = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
        let _ = tcp.set_read_timeout(Some(timeout));
        let request = format!(
            "GET {path} HTTP/1.0\r\nHost: {}\r\nAccept: application/json\r\nUser-Agent: perfctl\r\n\r\n",
            t.host
        );
        let mut reply = Vec::new();
        if t.scheme == "https" {
            let tls = perfprobe::tls_config(None)?;
            let name = rustls::pki_types::ServerName::try_from(t.host.clone()).map_err(|e| e.to_string())?;
            let conn = rustls::ClientConnection::new(tls, name).map_err(|e| format!("TLS: {e}"))?;
            let mut s = rustls::StreamOwned::new(conn, tcp);
            s.write_all(request.as_bytes()).map_err(|e| format!("TLS: {e}"))?;
            if let Err(e) = s.read_to_end(&mut reply)
                && reply.is_empty()
            {
                return Err(format!("TLS: {e}"));
            }
        } else {
            tcp.write_all(request.as_bytes()).map_err(|e| format!("send: {e}"))?;
            tcp.read_to_end(&mut reply).map_err(|e| format!("answer: {e}"))?;
        }
        let text = String::from_utf8_lossy(&reply).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP answer")?;
        let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or("no HTTP status")?;
        Ok((status, body.to_owned()))
    }
}

fn labels(metric: &serde_json::Value) -> BTreeMap<String, String> {
    metric
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned())).collect())
        .unwrap_or_default()
}

/// Percent-encode a query-string value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
