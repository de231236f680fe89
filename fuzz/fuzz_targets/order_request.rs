//! The order API's request bodies (create, pay, ship, cancel) on arbitrary bytes, through
//! the handlers' parsing, limits and the event's business rules.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| orderflow_fuzz::order_request::run(data));
