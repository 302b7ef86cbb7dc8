//! Redis Cluster's hash slots: which part of a key is hashed, and the slot it lands in.

/// The part of a key that Redis Cluster hashes: the first `{…}` with at least one character
/// inside, else the whole key.
pub fn slot_string(key: &str) -> &str {
    // the braces are ASCII: the hashed part starts and ends on character boundaries
    std::str::from_utf8(slot_bytes(key.as_bytes())).unwrap_or(key)
}

/// [`slot_string`] of a key given as bytes.
fn slot_bytes(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        if let Some(len) = key[open + 1..].iter().position(|&b| b == b'}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

/// True when Redis Cluster puts both keys in the same slot (same hashed string).
pub fn same_slot(a: &str, b: &str) -> bool {
    slot_string(a) == slot_string(b)
}

/// Redis Cluster's slot of a key: CRC16/XMODEM of its slot string, mod 16384.
pub fn key_slot(key: impl AsRef<[u8]>) -> u16 {
    let mut crc: u16 = 0;
    for &b in slot_bytes(key.as_ref()) {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}
