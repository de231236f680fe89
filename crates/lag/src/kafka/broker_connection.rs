//! One plaintext connection to a Kafka broker speaking the wire protocol itself
//! (kafka-protocol encodes and decodes the messages), for the requests rdkafka 0.39
//! does not expose: batched FindCoordinator and OffsetFetch. Requests on a connection
//! go one at a time; any failure drops the connection (the caller reconnects).

use std::collections::HashMap;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{LagError, Result, protocol};

/// Client id the broker sees (as for the engine's librdkafka clients).
const CLIENT_ID: &str = "orderflow-lag";

/// Largest answer accepted: a guard against reading a garbled length as a size.
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// A connection to one broker, with the API versions it supports.
pub struct BrokerConnection {
    address: String,
    stream: TcpStream,
    next_correlation_id: i32,
    /// Highest version the broker supports, per API key.
    max_versions: HashMap<i16, i16>,
}

impl BrokerConnection {
    /// Connects to `address` (host:port) and asks which API versions it supports.
    pub async fn connect(address: &str, timeout: Duration) -> Result<Self> {
        let what = || format!("connecting to {address}");
        let stream = tokio::time::timeout(timeout, TcpStream::connect(address))
            .await
            .map_err(|_| protocol(what(), "timed out"))?
            .map_err(|e| protocol(what(), e))?;
        stream.set_nodelay(true).map_err(|e| protocol(what(), e))?;
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
        Ok(connection)
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
