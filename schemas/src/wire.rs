//! The Confluent wire format: magic byte 0, the schema id as 4 bytes big-endian, then the Avro
//! binary body.

use crate::error::DecodeError;

/// First byte of every framed value.
pub const MAGIC_BYTE: u8 = 0;

/// Length of the frame header (magic byte + schema id).
pub const HEADER_LEN: usize = 5;

/// Appends the 5-byte header for `schema_id` to `buf`.
pub fn write_header(schema_id: u32, buf: &mut Vec<u8>) {
    buf.push(MAGIC_BYTE);
    buf.extend_from_slice(&schema_id.to_be_bytes());
}

/// A framed value: header for `schema_id` followed by `body`.
pub fn encode_frame(schema_id: u32, body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(HEADER_LEN + body.len());
    write_header(schema_id, &mut frame);
    frame.extend_from_slice(body);
    frame
}

/// Splits a framed value into its schema id and Avro body.
///
/// Fails with [`DecodeError::NotWireFormat`] when the value is shorter than the header or does
/// not start with the magic byte.
pub fn split_frame(value: &[u8]) -> Result<(u32, &[u8]), DecodeError> {
    let Some((header, body)) = value.split_first_chunk::<HEADER_LEN>() else {
        return Err(DecodeError::NotWireFormat {
            reason: format!(
                "{} bytes, shorter than the {HEADER_LEN}-byte header",
                value.len()
            ),
        });
    };
    let [magic, id @ ..] = *header;
    if magic != MAGIC_BYTE {
        return Err(DecodeError::NotWireFormat {
            reason: format!(
                "first byte is {magic:#04x}, expected the magic byte {MAGIC_BYTE:#04x}"
            ),
        });
    }
    Ok((u32::from_be_bytes(id), body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_magic_then_big_endian_id() {
        let frame = encode_frame(0x0102_0304, b"body");
        assert_eq!(frame, [0, 1, 2, 3, 4, b'b', b'o', b'd', b'y']);
        assert_eq!(split_frame(&frame).unwrap(), (0x0102_0304, &b"body"[..]));
    }

    #[test]
    fn empty_body_is_split_not_refused() {
        assert_eq!(split_frame(&[0, 0, 0, 0, 7]).unwrap(), (7, &[][..]));
    }

    #[test]
    fn short_or_unmagical_values_are_not_wire_format() {
        for value in [&b""[..], &[0, 0, 0, 1][..], &b"{\"json\":1}"[..]] {
            let error = split_frame(value).unwrap_err();
            assert!(
                matches!(error, DecodeError::NotWireFormat { .. }),
                "{value:?}: {error}"
            );
        }
        let error = split_frame(b"\x01\0\0\0\x01x").unwrap_err();
        assert!(error.to_string().contains("0x01"), "{error}");
    }
}
