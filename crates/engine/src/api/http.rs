//! The real transport: HTTP/1.1 over reqwest (rustls, no system OpenSSL).
//!
//! HTTP/1.1 on purpose: every request in flight gets its own keep-alive connection, so
//! `--concurrency 5000` means 5000 requests on the wire. Over HTTP/2 all requests to a host share
//! one connection and wait for the server's stream limit (often 100), which would cap concurrency
//! silently. The connection pool has no size limit; idle connections are kept for reuse.
//!
//! Every request carries the job's headers: the key when one is set, as `Authorization: Bearer
//! <key>`, for Azure `api-key: <key>`, for Anthropic `x-api-key: <key>` (marked sensitive in
//! every case, so it never appears in debug output), `Content-Type: application/json`, a `User-Agent`, and the user's `--header`s.
//!
//! A completion request's `--timeout` is applied here around the whole exchange, not by reqwest,
//! so that a stall of our own process does not spend it (`deadline`).
//!
//! Every body a server sends (answers, error bodies, Files and Batches objects) is read through
//! [`read_capped`]: at most `--max-response-size` bytes are held, whatever the server's
//! `Content-Length` says; a longer body is refused as soon as it is known to be longer.
//!
//! Redirects are never followed, by the live transport or the Batch API client alike: reqwest
//! would re-send the user's `--header`s (and, for Azure, the `api-key`) to wherever the
//! `Location` points, and turn a POST into a GET on a 301/302. A 3xx comes back as it is, with its
//! `Location`, and the caller decides (see `api::classify` and `pipeline::first_answers`).

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};

use super::{deadline, parse_retry_after, ConnectFailure, Reply, SendError, Transport};
use promptmill_core::family::ApiFamily;
use promptmill_core::provider::KeyHeader;
use promptmill_core::secret::ApiKey;
use promptmill_core::stall::Stalls;

/// The default `--max-response-size`: far above any real completion (16 MiB).
pub const DEFAULT_MAX_RESPONSE_SIZE: u64 = 16 << 20;

/// Where and how to send. Its `Debug` shows neither the key nor credential headers.
#[derive(Clone)]
pub struct HttpSettings {
    /// The full URL of the endpoint, e.g. `https://api.openai.com/v1/chat/completions`.
    pub url: reqwest::Url,
    pub key: Option<ApiKey>,
    /// Which header carries `key`.
    pub key_header: KeyHeader,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    /// `--max-response-size`: the most bytes of one body held in memory.
    pub max_response: u64,
}

/// Why a body was not read whole.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the response is larger than --max-response-size {}", describe_cap(*.0))]
    TooLarge(u64),
    #[error(transparent)]
    Http(#[from] reqwest::Error),
}

/// Reads `response`'s body, holding at most `cap` bytes: a declared `Content-Length` above it is
/// refused before reading, and the body is read chunk by chunk and dropped the moment it passes
/// the cap (a server may send more than it declared). The buffer grows with what arrives, never
/// with what a header announces.
pub async fn read_capped(mut response: reqwest::Response, cap: u64) -> Result<Bytes, ReadError> {
    if response.content_length().is_some_and(|n| n > cap) {
        return Err(ReadError::TooLarge(cap));
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = response.chunk().await? {
        if (body.len() + chunk.len()) as u64 > cap {
            return Err(ReadError::TooLarge(cap));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// A size cap as people give it: `16 MiB`, `100 MB`, else in bytes.
pub fn describe_cap(bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    const MB: u64 = 1_000_000;
    match bytes {
        b if b >= MIB && b.is_multiple_of(MIB) => format!("{} MiB", b / MIB),
        b if b >= MB && b.is_multiple_of(MB) => format!("{} MB", b / MB),
        b => format!("{b} bytes"),
    }
}

impl std::fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSettings")
            .field("url", &self.url.as_str())
            .field("key", &self.key)
            .field(
                "headers",
                &promptmill_core::secret::RedactedHeaders(&self.headers),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

pub struct HttpTransport {
    client: reqwest::Client,
    url: reqwest::Url,
    timeout: Duration,
    /// The process's stall watch: a timeout that passes while we stood still is not one.
    stalls: Stalls,
    max_response: u64,
    /// Reads the rate-limit headers of the job's API family.
    family: &'static dyn ApiFamily,
}

/// A client that sends the job's headers (the key, marked sensitive) with every request, each
/// under `settings.timeout` in all; used by the Batch API client.
pub fn client(settings: &HttpSettings) -> anyhow::Result<reqwest::Client> {
    builder(settings)?
        .timeout(settings.timeout)
        .build()
        .map_err(|e| anyhow::anyhow!("cannot set up the HTTP client: {e}"))
}

/// The client's settings, without a total timeout: the live transport applies its own.
fn builder(settings: &HttpSettings) -> anyhow::Result<reqwest::ClientBuilder> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("promptmill/", env!("CARGO_PKG_VERSION"))),
    );
    if let Some(key) = &settings.key {
        let (name, text) = match settings.key_header {
            KeyHeader::Bearer => (AUTHORIZATION, format!("Bearer {}", key.expose())),
            KeyHeader::ApiKey => (HeaderName::from_static("api-key"), key.expose().to_string()),
            KeyHeader::XApiKey => (HeaderName::from_static("x-api-key"), key.expose().to_string()),
        };
        let mut value = HeaderValue::from_str(&text).map_err(|_| {
            anyhow::anyhow!("the API key contains characters that cannot go in an HTTP header")
        })?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    for (name, value) in &settings.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| anyhow::anyhow!("--header: `{name}` is not a valid header name"))?;
        if settings.key.is_some() && name.as_str() == settings.key_header.name() {
            anyhow::bail!(
                "--header: `{name}` is built from the API key in the environment (see --api-key-env)"
            );
        }
        let mut value = HeaderValue::from_str(value)
            .map_err(|_| anyhow::anyhow!("--header: the value of `{name}` is not a valid header value"))?;
        if promptmill_core::secret::is_secret_header(name.as_str()) {
            value.set_sensitive(true);
        }
        headers.insert(name, value);
    }
    Ok(reqwest::Client::builder()
        .default_headers(headers)
        .connect_timeout(settings.timeout.min(Duration::from_secs(30)))
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90)))
}

impl HttpTransport {
    /// A transport to `settings.url`, reading answers as `family` does.
    pub fn new(settings: &HttpSettings, family: &'static dyn ApiFamily) -> anyhow::Result<HttpTransport> {
        let client = builder(settings)?
            .build()
            .map_err(|e| anyhow::anyhow!("cannot set up the HTTP client: {e}"))?;
        Ok(HttpTransport {
            client,
            url: settings.url.clone(),
            timeout: settings.timeout,
            stalls: Stalls::watch(),
            max_response: settings.max_response,
            family,
        })
    }
}

impl Transport for HttpTransport {
    async fn send(&self, body: Bytes) -> Result<Reply, SendError> {
        deadline::within(self.timeout, &self.stalls, self.exchange(body))
            .await
            .unwrap_or(Err(SendError::Timeout(self.timeout)))
    }
}

impl HttpTransport {
    /// One request and its whole answer, with no timeout of its own.
    async fn exchange(&self, body: Bytes) -> Result<Reply, SendError> {
        let response = self
            .client
            .post(self.url.clone())
            .body(body)
            .send()
            .await
            .map_err(|e| self.error(e))?;
        let status = response.status().as_u16();
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
        let retry_after =
            parse_retry_after(header("retry-after-ms"), header("retry-after"), SystemTime::now());
        let rate = self.family.rate_headers(&header);
        let location = header("location").map(promptmill_core::base_url::redact);
        let body = match read_capped(response, self.max_response).await {
            Ok(body) => body,
            Err(ReadError::TooLarge(limit)) => return Err(SendError::TooLarge { status, limit }),
            Err(ReadError::Http(e)) => return Err(self.error(e)),
        };
        Ok(Reply {
            status,
            retry_after,
            rate,
            location,
            body,
        })
    }
}

impl HttpTransport {
    fn error(&self, e: reqwest::Error) -> SendError {
        if e.is_timeout() {
            return SendError::Timeout(self.timeout);
        }
        let text = describe(&e);
        if e.is_connect() {
            SendError::Connect {
                failure: connect_failure(&e),
                detail: text,
            }
        } else {
            SendError::Other(text)
        }
    }
}

/// What kind of connection failure `e` is, from its chain of causes: an `io::Error` of kind
/// `ConnectionRefused`, or the resolver's "dns error".
fn connect_failure(e: &reqwest::Error) -> ConnectFailure {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return ConnectFailure::Refused;
            }
        }
        if s.to_string().starts_with("dns error") {
            return ConnectFailure::Dns;
        }
        source = s.source();
    }
    ConnectFailure::Other
}

/// A reqwest error with its chain of causes, which hold the useful part ("connection reset by
/// peer"). The URL it names is shown with credential-like query values redacted.
pub fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    match e.url() {
        Some(url) => text.replace(url.as_str(), &promptmill_core::base_url::redact(url.as_str())),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat() -> &'static dyn ApiFamily {
        promptmill_core::family::Endpoint::Chat.family()
    }

    const KEY: &str = "sk-http-test-4b9e-secret";

    fn settings(url: &str) -> HttpSettings {
        std::env::set_var("PROMPTMILL_HTTP_TEST_KEY", KEY);
        HttpSettings {
            url: reqwest::Url::parse(url).unwrap(),
            key: ApiKey::from_env("PROMPTMILL_HTTP_TEST_KEY"),
            headers: vec![
                ("X-Api-Token".into(), "tok-also-secret".into()),
                ("X-Team".into(), "blue".into()),
            ],
            timeout: Duration::from_secs(5),
            max_response: DEFAULT_MAX_RESPONSE_SIZE,
            key_header: promptmill_core::provider::KeyHeader::Bearer,
        }
    }

    #[test]
    fn debug_output_of_the_client_redacts_authorization_and_secret_headers() {
        let settings = settings("http://127.0.0.1:9/v1/chat/completions");
        let transport = HttpTransport::new(&settings, chat()).unwrap();
        let client = format!("{:?} {settings:?}", transport.client);
        assert!(!client.contains(KEY), "{client}");
        assert!(!client.contains("tok-also-secret"), "{client}");
        assert!(client.contains("\"authorization\": Sensitive"), "{client}");
        assert!(
            client.contains("\"blue\""),
            "ordinary headers stay visible: {client}"
        );
    }

    #[tokio::test]
    async fn an_error_that_quotes_the_request_names_the_url_and_not_the_key() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/chat/completions", closed.local_addr().unwrap());
        drop(closed);
        let transport = HttpTransport::new(&settings(&url), chat()).unwrap();
        let err = transport.send(Bytes::from_static(b"{}")).await.unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(text.contains(&url), "{text}");
        assert!(!text.contains(KEY), "{text}");
        assert!(
            matches!(
                err,
                SendError::Connect {
                    failure: ConnectFailure::Refused,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn an_error_shows_the_url_without_a_credential_in_its_query() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/v1/chat/completions?tenant=t&api_key=qs-secret-1",
            closed.local_addr().unwrap()
        );
        drop(closed);
        let transport = HttpTransport::new(&settings(&url), chat()).unwrap();
        let err = transport.send(Bytes::from_static(b"{}")).await.unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(text.contains("tenant=t&api_key=[redacted]"), "{text}");
        assert!(!text.contains("qs-secret-1"), "{text}");
    }

    /// A server on 127.0.0.1 that answers one request with a chunked 200 of `total` bytes (no
    /// Content-Length, so only counting can stop it); the task ends with whether all was sent.
    async fn chunked_server(total: usize) -> (String, tokio::task::JoinHandle<bool>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1/chat/completions", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let head =
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
            if socket.write_all(head.as_bytes()).await.is_err() {
                return false;
            }
            let chunk = vec![b'x'; 64 * 1024];
            let mut sent = 0;
            while sent < total {
                let n = chunk.len().min(total - sent);
                let frame = [format!("{n:x}\r\n").as_bytes(), &chunk[..n], b"\r\n"].concat();
                if socket.write_all(&frame).await.is_err() {
                    return false;
                }
                sent += n;
            }
            socket.write_all(b"0\r\n\r\n").await.is_ok()
        });
        (url, task)
    }

    #[tokio::test]
    async fn a_body_past_the_cap_is_refused_without_being_read_to_the_end() {
        let (url, server) = chunked_server(256 << 20).await;
        let transport = HttpTransport::new(
            &HttpSettings {
                max_response: 1 << 20,
                ..settings(&url)
            },
            chat(),
        )
        .unwrap();
        let err = transport.send(Bytes::from_static(b"{}")).await.unwrap_err();
        assert!(
            matches!(err, SendError::TooLarge { status: 200, limit } if limit == 1 << 20),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "the response is larger than --max-response-size 1 MiB"
        );
        drop(transport);
        let sent_all = tokio::time::timeout(Duration::from_secs(30), server)
            .await
            .expect("the server notices the client left")
            .unwrap();
        assert!(
            !sent_all,
            "the client stopped reading: 256 MiB were not all taken"
        );
    }

    #[tokio::test]
    async fn a_body_within_the_cap_is_read_whole() {
        let (url, server) = chunked_server(300_000).await;
        let transport = HttpTransport::new(
            &HttpSettings {
                max_response: 300_000,
                ..settings(&url)
            },
            chat(),
        )
        .unwrap();
        let reply = transport.send(Bytes::from_static(b"{}")).await.unwrap();
        assert_eq!(reply.body.len(), 300_000);
        assert!(server.await.unwrap());
    }

    #[test]
    fn caps_are_described_as_people_give_them() {
        assert_eq!(describe_cap(16 << 20), "16 MiB");
        assert_eq!(describe_cap(100_000_000), "100 MB");
        assert_eq!(describe_cap(1500), "1500 bytes");
    }
}
