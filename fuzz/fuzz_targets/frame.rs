//! Fuzzes the framed protocol of `zcopy send`/`recv` with arbitrary bytes from the
//! network: `cargo fuzz run frame` (seed corpus in `corpus/frame`). Reading a
//! greeting and then messages must never panic, and every message that decodes must
//! encode back to bytes that decode to the same message.
#![no_main]

use zcopy_wire::frame;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut reader = frame::Reader::new(data);
    let _ = reader.greeting();
    while let Ok(Some(msg)) = reader.next() {
        let mut bytes = Vec::new();
        msg.encode(&mut bytes);
        let again = frame::Reader::new(&bytes[..]).next().expect("re-encoded bytes decode");
        assert_eq!(again, Some(msg));
    }
});
