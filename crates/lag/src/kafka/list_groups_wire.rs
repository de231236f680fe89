//! ListGroups (API key 16, version 0) spoken directly to each broker over plaintext TCP.
//!
//! librdkafka's group listing (`fetch_group_list`) sends DescribeGroups right after
//! ListGroups and fails as a whole when DescribeGroups fails, losing even the group
//! names. Some brokers (Tansu 0.6.0) fail DescribeGroups by closing the connection, so
//! this fallback fetches just the names; members are then reported as unknown. It does
//! not speak TLS or SASL: on such clusters DescribeGroups works and it is not needed.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const API_KEY_LIST_GROUPS: i16 = 16;
const CLIENT_ID: &str = "orderflow-lag";
/// Upper bound of a response we accept (a few hundred thousand group names).
const MAX_RESPONSE: usize = 64 * 1024 * 1024;

/// A group as ListGroups names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupName {
    /// Group id.
    pub group: String,
    /// Protocol type ("consumer" for consumer groups; may be empty).
    pub protocol_type: String,
}

/// Sends ListGroups v0 to `host:port` and returns the groups it coordinates.
pub async fn list_groups(
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<Vec<GroupName>, String> {
    tokio::time::timeout(timeout, exchange(host, port))
        .await
        .map_err(|_| format!("ListGroups to {host}:{port} timed out after {timeout:?}"))?
}

async fn exchange(host: &str, port: u16) -> Result<Vec<GroupName>, String> {
    let mut stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("connect to {host}:{port}: {e}"))?;
    stream
        .write_all(&request(7))
        .await
        .map_err(|e| format!("send ListGroups to {host}:{port}: {e}"))?;
    let mut len = [0u8; 4];
    stream
        .read_exact(&mut len)
        .await
        .map_err(|e| format!("read ListGroups reply from {host}:{port}: {e}"))?;
    let len =
        usize::try_from(i32::from_be_bytes(len)).map_err(|_| "negative reply size".to_owned())?;
    if len > MAX_RESPONSE {
        return Err(format!("ListGroups reply of {len} bytes is implausible"));
    }
    let mut body = vec![0u8; len];
    stream
        .read_exact(&mut body)
        .await
        .map_err(|e| format!("read ListGroups reply from {host}:{port}: {e}"))?;
    parse_response(&body, 7)
}

/// Encodes a size-prefixed ListGroups v0 request.
fn request(correlation_id: i32) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&API_KEY_LIST_GROUPS.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&correlation_id.to_be_bytes());
    body.extend_from_slice(&(CLIENT_ID.len() as i16).to_be_bytes());
    body.extend_from_slice(CLIENT_ID.as_bytes());
    let mut framed = (body.len() as i32).to_be_bytes().to_vec();
    framed.extend_from_slice(&body);
    framed
}

fn parse_response(body: &[u8], correlation_id: i32) -> Result<Vec<GroupName>, String> {
    let mut r = Cursor { bytes: body, at: 0 };
    let truncated = || "truncated ListGroups reply".to_owned();
    if r.i32().ok_or_else(truncated)? != correlation_id {
        return Err("ListGroups reply with a foreign correlation id".into());
    }
    let error = r.i16().ok_or_else(truncated)?;
    if error != 0 {
        return Err(format!("ListGroups answered with Kafka error code {error}"));
    }
    let count = r.i32().ok_or_else(truncated)?;
    let mut groups = Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(100_000));
    for _ in 0..count.max(0) {
        let group = r.string().ok_or_else(truncated)?;
        let protocol_type = r.string().ok_or_else(truncated)?;
        groups.push(GroupName {
            group,
            protocol_type,
        });
    }
    Ok(groups)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let out = self.bytes.get(self.at..self.at + N)?.try_into().ok()?;
        self.at += N;
        Some(out)
    }
    fn i16(&mut self) -> Option<i16> {
        self.take::<2>().map(i16::from_be_bytes)
    }
    fn i32(&mut self) -> Option<i32> {
        self.take::<4>().map(i32::from_be_bytes)
    }
    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.i16()?).unwrap_or(0);
        let raw = self.bytes.get(self.at..self.at + len)?;
        self.at += len;
        String::from_utf8(raw.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_framed_list_groups_v0() {
        let r = request(7);
        assert_eq!(&r[..4], &((r.len() - 4) as i32).to_be_bytes());
        assert_eq!(&r[4..8], &[0, 16, 0, 0]);
        assert_eq!(&r[8..12], &7i32.to_be_bytes());
    }

    #[test]
    fn parses_groups_and_rejects_errors() {
        let mut body = vec![0, 0, 0, 7, 0, 0, 0, 0, 0, 1, 0, 2];
        body.extend_from_slice(b"g1");
        body.extend_from_slice(&[0, 8]);
        body.extend_from_slice(b"consumer");
        assert_eq!(
            parse_response(&body, 7).unwrap(),
            vec![GroupName {
                group: "g1".into(),
                protocol_type: "consumer".into()
            }]
        );
        assert!(
            parse_response(&[0, 0, 0, 7, 0, 15], 7)
                .unwrap_err()
                .contains("15")
        );
        assert!(parse_response(&body[..14], 7).is_err());
    }
}
