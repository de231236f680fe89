//! Decodes a member's assignment from DescribeGroups (Kafka's ConsumerProtocol
//! Assignment: version i16, [topic string, [partition i32]], user data bytes).

/// Topic partitions in an assignment blob; an empty list when the blob is not a
/// consumer-protocol assignment (other protocol types use other formats).
pub fn decode_assignment(bytes: &[u8]) -> Vec<(String, i32)> {
    decode(bytes).unwrap_or_default()
}

fn decode(bytes: &[u8]) -> Option<Vec<(String, i32)>> {
    let mut r = Reader { bytes, at: 0 };
    let _version = r.i16()?;
    let topics = r.i32()?;
    let mut out = Vec::new();
    for _ in 0..topics.max(0) {
        let len = r.i16()?;
        let name = String::from_utf8(r.take(usize::try_from(len).ok()?)?.to_vec()).ok()?;
        let partitions = r.i32()?;
        for _ in 0..partitions.max(0) {
            out.push((name.clone(), r.i32()?));
        }
    }
    Some(out)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let slice = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(slice)
    }
    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_topics_and_partitions() {
        let mut blob = vec![0, 1, 0, 0, 0, 1, 0, 6];
        blob.extend_from_slice(b"orders");
        blob.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(
            decode_assignment(&blob),
            vec![("orders".to_owned(), 0), ("orders".to_owned(), 3)]
        );
    }

    #[test]
    fn truncated_blob_gives_empty_list() {
        assert!(decode_assignment(&[0, 1, 0, 0, 0, 1, 0, 6, b'o']).is_empty());
    }
}
