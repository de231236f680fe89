//! One connection to a Kafka broker speaking the wire protocol itself (kafka-protocol
//! encodes and decodes the messages), for the requests rdkafka 0.39 does not expose:
//! batched FindCoordinator and OffsetFetch, ConsumerGroupDescribe, IncrementalAlterConfigs.
//! It speaks TLS and SASL (PLAIN, SCRAM) from the same client properties as librdkafka
//! ([`WireSecurity`]). Requests on a connection go one at a time; any failure drops the
//! connection (the caller reconnects).

use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_native_tls::TlsStream;

use super::sasl::{ScramClient, plain_message};
pub use super::wire_security::WireSecurity;
use super::wire_security::{SaslCredentials, SaslMechanism, TlsSettings};
use crate::error::{LagError, Result, protocol};

/// Client id the broker sees (as for the engine's librdkafka clients).
const CLIENT_ID: &str = "orderflow-lag";

/// Largest answer accepted: a guard against reading a garbled length as a size.
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// The byte stream under a connection: plain TCP or TLS over it.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// SaslHandshake v1: the mechanism, then SaslAuthenticate requests carry the messages.
const SASL_HANDSHAKE_VERSION: i16 = 1;
const SASL_AUTHENTICATE_VERSION: i16 = 1;

/// A connection to one broker, with the API versions it supports.
pub struct BrokerConnection {
    address: String,
    stream: Stream,
    next_correlation_id: i32,
    /// Highest version the broker supports, per API key.
    max_versions: HashMap<i16, i16>,
}

impl BrokerConnection {
    /// Connects to `address` (host:port) as `security` says (TLS handshake, then SASL
    /// after ApiVersions) and learns which API versions the broker supports.
    pub async fn connect(
        address: &str,
        security: &WireSecurity,
        timeout: Duration,
    ) -> Result<Self> {
        if let Some(what) = &security.unsupported {
            return Err(LagError::Unsupported {
                broker: address.to_owned(),
                what: format!("{what} on the engine's own connections"),
            });
        }
        let what = || format!("connecting to {address}");
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(address))
            .await
            .map_err(|_| protocol(what(), "timed out"))?
            .map_err(|e| protocol(what(), e))?;
        tcp.set_nodelay(true).map_err(|e| protocol(what(), e))?;
        let stream = match &security.tls {
            None => Stream::Plain(tcp),
            Some(tls) => {
                let handshake = tls_handshake(address, tls, tcp);
                let tls = tokio::time::timeout(timeout, handshake)
                    .await
                    .map_err(|_| protocol(what(), "TLS handshake timed out"))?
                    .map_err(|e| protocol(what(), format!("TLS handshake failed: {e}")))?;
                Stream::Tls(Box::new(tls))
            }
        };
        let mut connection = Self {
            address: address.to_owned(),
            stream,
            next_correlation_id: 0,
            max_versions: HashMap::new(),
        };
        let versions: ApiVersionsResponse = connection
            .call(
                ApiKey::ApiVersions,
                ApiVersionsRequest::default()
                    .with_client_software_name(StrBytes::from_static_str(CLIENT_ID))
                    .with_client_software_version(StrBytes::from_static_str(env!(
                        "CARGO_PKG_VERSION"
                    ))),
                3,
                timeout,
            )
            .await?;
        if versions.error_code != 0 {
            return Err(protocol(
                format!("ApiVersions at {address}"),
                error_name(versions.error_code),
            ));
        }
        connection.max_versions = versions
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.max_version))
            .collect();
        if let Some(sasl) = &security.sasl {
            connection.authenticate(sasl, timeout).await?;
        }
        Ok(connection)
    }

    /// SaslHandshake, then the mechanism's messages in SaslAuthenticate requests.
    async fn authenticate(&mut self, sasl: &SaslCredentials, timeout: Duration) -> Result<()> {
        let mechanism = sasl.mechanism.name();
        let address = self.address.clone();
        let refused = |reason: String| {
            protocol(
                format!("SASL {mechanism} at {address}"),
                format!(
                    "the broker refused the credentials (check sasl.mechanism, sasl.username, sasl.password): {reason}"
                ),
            )
        };
        self.require(ApiKey::SaslHandshake, SASL_HANDSHAKE_VERSION)?;
        self.require(ApiKey::SaslAuthenticate, SASL_AUTHENTICATE_VERSION)?;
        let handshake: SaslHandshakeResponse = self
            .call(
                ApiKey::SaslHandshake,
                SaslHandshakeRequest::default()
                    .with_mechanism(StrBytes::from_static_str(mechanism)),
                SASL_HANDSHAKE_VERSION,
                timeout,
            )
            .await?;
        if handshake.error_code != 0 {
            let offered: Vec<&str> = handshake.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(refused(format!(
                "{} (the broker offers {})",
                error_name(handshake.error_code),
                offered.join(", ")
            )));
        }
        match sasl.mechanism {
            SaslMechanism::Plain => {
                self.sasl_step(plain_message(&sasl.username, &sasl.password), timeout)
                    .await
                    .map_err(refused)?;
            }
            SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
                let mut scram = ScramClient::new(sasl.mechanism, &sasl.username, &sasl.password);
                let server_first = self
                    .sasl_step(scram.client_first(), timeout)
                    .await
                    .map_err(refused)?;
                let last = scram.client_final(&server_first).map_err(refused)?;
                let server_final = self.sasl_step(last, timeout).await.map_err(refused)?;
                scram.verify_server_final(&server_final).map_err(refused)?;
            }
        }
        Ok(())
    }

    /// One SaslAuthenticate round trip: our message out, the broker's answer back.
    async fn sasl_step(
        &mut self,
        message: Vec<u8>,
        timeout: Duration,
    ) -> std::result::Result<Vec<u8>, String> {
        let answer: SaslAuthenticateResponse = self
            .call(
                ApiKey::SaslAuthenticate,
                SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(message)),
                SASL_AUTHENTICATE_VERSION,
                timeout,
            )
            .await
            .map_err(|e| e.to_string())?;
        if answer.error_code != 0 {
            return Err(format!(
                "{}{}",
                error_name(answer.error_code),
                answer
                    .error_message
                    .map(|m| format!(": {}", m.as_str()))
                    .unwrap_or_default()
            ));
        }
        Ok(answer.auth_bytes.to_vec())
    }

    /// Highest version of `key` the broker supports, if any.
    pub fn max_version(&self, key: ApiKey) -> Option<i16> {
        self.max_versions.get(&(key as i16)).copied()
    }

    /// The broker's address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Fails unless the broker supports `version` of `key`.
    pub fn require(&self, key: ApiKey, version: i16) -> Result<()> {
        match self.max_versions.get(&(key as i16)) {
            Some(max) if *max >= version => Ok(()),
            _ => Err(LagError::Unsupported {
                broker: self.address.clone(),
                what: format!("{key:?} v{version}"),
            }),
        }
    }

    /// Sends `request` (of API `key`) as `version` and reads its answer, within
    /// `timeout`.
    pub async fn call<Req, Resp>(
        &mut self,
        key: ApiKey,
        request: Req,
        version: i16,
        timeout: Duration,
    ) -> Result<Resp>
    where
        Req: Encodable + HeaderVersion,
        Resp: Decodable + HeaderVersion,
    {
        let what = format!("{key:?} at {}", self.address);
        tokio::time::timeout(timeout, self.exchange(key, request, version))
            .await
            .map_err(|_| protocol(&what, "timed out"))?
            .map_err(|reason| protocol(&what, reason))
    }

    async fn exchange<Req, Resp>(
        &mut self,
        key: ApiKey,
        request: Req,
        version: i16,
    ) -> std::result::Result<Resp, String>
    where
        Req: Encodable + HeaderVersion,
        Resp: Decodable + HeaderVersion,
    {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, Req::header_version(version))
            .and_then(|()| request.encode(&mut body, version))
            .map_err(|e| format!("encoding the request: {e}"))?;
        let mut frame = BytesMut::with_capacity(4 + body.len());
        frame.put_i32(body.len() as i32);
        frame.extend_from_slice(&body);
        self.stream
            .write_all(&frame)
            .await
            .map_err(|e| e.to_string())?;

        let len = self.stream.read_i32().await.map_err(|e| e.to_string())?;
        let len = usize::try_from(len)
            .ok()
            .filter(|n| *n <= MAX_RESPONSE_BYTES)
            .ok_or_else(|| format!("answer of impossible size {len}"))?;
        let mut answer = vec![0; len];
        self.stream
            .read_exact(&mut answer)
            .await
            .map_err(|e| e.to_string())?;
        let mut answer = Bytes::from(answer);
        let header = ResponseHeader::decode(&mut answer, Resp::header_version(version))
            .map_err(|e| format!("decoding the answer's header: {e}"))?;
        if header.correlation_id != correlation_id {
            return Err(format!(
                "answer to request {} arrived for request {correlation_id}",
                header.correlation_id
            ));
        }
        Resp::decode(&mut answer, version).map_err(|e| format!("decoding the answer: {e}"))
    }
}

/// Kafka's name of an error code, e.g. `NotCoordinator`.
pub fn error_name(code: i16) -> String {
    match kafka_protocol::error::ResponseError::try_from_code(code) {
        Some(err) => format!("{err:?}"),
        None => format!("error code {code}"),
    }
}

/// The TLS handshake with `address`'s host, as `tls` says.
async fn tls_handshake(
    address: &str,
    tls: &TlsSettings,
    tcp: TcpStream,
) -> std::result::Result<TlsStream<TcpStream>, String> {
    let mut builder = native_tls::TlsConnector::builder();
    if let Some(pem) = &tls.ca_pem {
        // A CA file may hold a chain: trust every certificate in it.
        let certificates = native_tls::Certificate::stack_from_pem(pem.as_bytes())
            .map_err(|e| format!("ssl.ca.location: {e}"))?;
        for certificate in certificates {
            builder.add_root_certificate(certificate);
        }
    }
    if let Some((certificate, key)) = &tls.identity {
        let identity = native_tls::Identity::from_pkcs8(certificate.as_bytes(), key.as_bytes())
            .map_err(|e| format!("ssl.certificate.location / ssl.key.location: {e}"))?;
        builder.identity(identity);
    }
    builder
        .danger_accept_invalid_hostnames(!tls.verify_hostname)
        .danger_accept_invalid_certs(!tls.verify_certificate);
    let connector = builder.build().map_err(|e| e.to_string())?;
    let host = address
        .rsplit_once(':')
        .map_or(address, |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']');
    tokio_native_tls::TlsConnector::from(connector)
        .connect(host, tcp)
        .await
        .map_err(|e| e.to_string())
}
