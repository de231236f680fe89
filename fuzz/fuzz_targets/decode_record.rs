//! The consumer's decoding path on arbitrary record bytes: wire format, Avro body,
//! schema resolution (writer schemas v1 and v2 from memory) and validation.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| orderflow_fuzz::decode_record::run(data));
