//! The one HTTP exchange an OAuth2 client needs: POST a form, read a JSON answer.
//!
//! Hand-written HTTP/1.1 (one request per connection, `Connection: close`) over the
//! tokio socket and the rustls configuration the IMAP and SMTP clients already use
//! (ring only, [`crate::tls::client_config`]). A general HTTP client (reqwest, hyper)
//! would add some forty crates and a second TLS setup for three small POSTs; token
//! endpoints answer small JSON bodies with `Content-Length` or chunked encoding, which
//! is all this reads. Plain `http://` is accepted for loopback hosts only (tests).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::tls;
use crate::tls::is_loopback_host;

/// Token endpoints answer a few KiB; anything far larger is not a token response.
const MAX_RESPONSE: usize = 1024 * 1024;

#[derive(Debug, Clone, thiserror::Error)]
pub enum HttpError {
    #[error("{url} is not an http(s) URL: {detail}")]
    BadUrl { url: String, detail: String },
    #[error("{url}: plain http is only allowed to a loopback host; use https")]
    Plaintext { url: String },
    #[error("{0}")]
    Tls(String),
    #[error("cannot connect to {addr}: {detail}")]
    Connect { addr: String, detail: String },
    #[error("no answer from {url} within {}s", after.as_secs())]
    Timeout { url: String, after: Duration },
    #[error("connection to {url} failed: {detail}")]
    Io { url: String, detail: String },
    #[error("{url} sent a malformed HTTP response: {detail}")]
    Malformed { url: String, detail: String },
}

/// An HTTP answer: status code and body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// POST `body` (form-encoded) to `url`, with HTTP Basic `basic` credentials when given.
pub async fn post_form(
    url: &str,
    body: &str,
    basic: Option<&str>,
    ca_file: Option<&std::path::Path>,
    timeout: Duration,
) -> Result<Response, HttpError> {
    let parsed = url::Url::parse(url).map_err(|e| HttpError::BadUrl {
        url: url.to_string(),
        detail: e.to_string(),
    })?;
    let host = parsed
        .host_str()
        .ok_or_else(|| HttpError::BadUrl {
            url: url.to_string(),
            detail: "no host".into(),
        })?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let secure = match parsed.scheme() {
        "https" => true,
        "http" if is_loopback_host(&host) => false,
        "http" => return Err(HttpError::Plaintext { url: url.into() }),
        other => {
            return Err(HttpError::BadUrl {
                url: url.into(),
                detail: format!("scheme {other:?}"),
            });
        }
    };
    let port = parsed.port_or_known_default().unwrap_or(443);
    let mut target = parsed.path().to_string();
    if let Some(q) = parsed.query() {
        target.push('?');
        target.push_str(q);
    }
    let host_header = match parsed.port() {
        Some(p) => format!("{}:{p}", parsed.host_str().unwrap_or_default()),
        None => parsed.host_str().unwrap_or_default().to_string(),
    };
    let mut request = format!(
        "POST {target} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: casegate\r\n\
         Accept: application/json\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(b) = basic {
        request.push_str(&format!("Authorization: Basic {b}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);

    let exchange = async {
        let addr = format!("{host}:{port}");
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| HttpError::Connect {
                addr,
                detail: e.to_string(),
            })?;
        let _ = tcp.set_nodelay(true);
        if secure {
            let config = tls::client_config(ca_file).map_err(|e| HttpError::Tls(e.to_string()))?;
            let name = tls::server_name(&host).map_err(|e| HttpError::Tls(e.to_string()))?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| HttpError::Tls(format!("TLS handshake with {host}: {e}")))?;
            exchange_on(stream, url, request.as_bytes()).await
        } else {
            exchange_on(tcp, url, request.as_bytes()).await
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| HttpError::Timeout {
            url: url.to_string(),
            after: timeout,
        })?
}

async fn exchange_on<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    url: &str,
    request: &[u8],
) -> Result<Response, HttpError> {
    let io = |e: std::io::Error| HttpError::Io {
        url: url.to_string(),
        detail: e.to_string(),
    };
    stream.write_all(request).await.map_err(io)?;
    stream.flush().await.map_err(io)?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            // Servers that close without TLS close_notify: what arrived is complete
            // when its length says so, which `parse` checks.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(io(e)),
        }
        if raw.len() > MAX_RESPONSE {
            return Err(malformed(url, "response too large"));
        }
    }
    parse(&raw).map_err(|d| malformed(url, d))
}

fn malformed(url: &str, detail: &str) -> HttpError {
    HttpError::Malformed {
        url: url.to_string(),
        detail: detail.to_string(),
    }
}

/// Status line, headers, then a body framed by Content-Length, chunked, or the close.
fn parse(raw: &[u8]) -> Result<Response, &'static str> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "headers are not UTF-8")?;
    let rest = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or("no status line")?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err("not HTTP/1.x");
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or("bad status code")?;
    let (mut length, mut chunked) = (None, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().map_err(|_| "bad Content-Length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(n) = length {
        rest.get(..n)
            .ok_or("body shorter than Content-Length")?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response { status, body })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size")?;
        let size_text = std::str::from_utf8(&data[..eol]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| "bad chunk size")?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = data.get(..size).ok_or("truncated chunk")?;
        out.extend_from_slice(chunk);
        data = data.get(size + 2..).ok_or("truncated chunk")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_and_chunked_bodies_are_read() {
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}junk").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"{}"[..]));
        let r = parse(
            b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4;x=1\r\n\":1}\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (400, &b"{\"a\":1}"[..]));
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}").is_err());
        assert!(parse(b"garbage").is_err());
    }
}
