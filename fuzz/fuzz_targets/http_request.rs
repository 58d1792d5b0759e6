//! Fuzzes `zcopy serve`'s request and Range parsing with arbitrary bytes from the
//! network: `cargo fuzz run http_request` (seed corpus in `corpus/http_request`).
//! Neither may panic, and what they return must be consistent with the input.
#![no_main]

use zcopy_http::request;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let request::Parsed::Complete(req, used) = request::parse(data) {
        assert!(used <= data.len() && used <= request::MAX_HEAD);
        check_span(req.range.as_deref(), used as u64);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        for size in [0, 1, 4096, u64::MAX / 2] {
            check_span(Some(text), size);
        }
    }
});

fn check_span(header: Option<&str>, size: u64) {
    if let request::Span::Part { start, end } = request::span(header, size) {
        assert!(start <= end && end < size);
    }
}
