//! Fuzzes the frame decoder: any byte string must decode, or fail with a `CodecError`,
//! without panicking; whatever decodes must re-encode to the same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netwatch_protocol::{decode, encode};

fuzz_target!(|data: &[u8]| {
    if let Ok((msg, used)) = decode(data) {
        let again = encode(&msg).expect("a decoded message re-encodes");
        let (back, _) = decode(&again).expect("a re-encoded message decodes");
        assert_eq!(back, msg);
        assert!(used <= data.len());
    }
});
