//! The deterministic payload of a connection: a byte stream that depends on
//! the connection id and the offset only, so a receiver can verify every
//! byte without having seen the sender's buffer.

/// The pattern byte at `offset` of stream `id`.
fn block(id: u64, index: u64) -> [u8; 8] {
    // splitmix64 of (id, block index): cheap, and no two nearby blocks alike.
    let mut z = id.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ index.wrapping_add(0x632b_e59b_d9b4_e019);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)).to_le_bytes()
}

/// Fills `buf` with stream `id` from `offset` on.
pub fn fill(id: u64, offset: u64, buf: &mut [u8]) {
    let (head, words, tail) = split(offset, buf.len());
    let (first, rest) = buf.split_at_mut(head);
    fill_bytes(id, offset, first);
    let index = (offset + head as u64) / 8;
    let (body, last) = rest.split_at_mut(words * 8);
    for (i, word) in body.chunks_exact_mut(8).enumerate() {
        word.copy_from_slice(&block(id, index + i as u64));
    }
    fill_bytes(id, offset + (head + words * 8) as u64, &mut last[..tail]);
}

/// Checks `buf` against stream `id` from `offset`; the offset of the first
/// wrong byte on failure.
pub fn verify(id: u64, offset: u64, buf: &[u8]) -> Result<(), u64> {
    let (head, words, _) = split(offset, buf.len());
    verify_bytes(id, offset, &buf[..head])?;
    let index = (offset + head as u64) / 8;
    let body = &buf[head..head + words * 8];
    if let Some(i) = body.chunks_exact(8).zip(index..).position(|(word, at)| word != block(id, at)) {
        let at = offset + (head + i * 8) as u64;
        return verify_bytes(id, at, &body[i * 8..i * 8 + 8]);
    }
    verify_bytes(id, offset + (head + words * 8) as u64, &buf[head + words * 8..])
}

/// Splits `len` bytes from `offset` into a head up to the next 8-byte block
/// boundary, whole blocks, and a tail.
fn split(offset: u64, len: usize) -> (usize, usize, usize) {
    let head = ((8 - offset % 8) % 8).min(len as u64) as usize;
    let words = (len - head) / 8;
    (head, words, len - head - words * 8)
}

fn fill_bytes(id: u64, offset: u64, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        let at = offset + i as u64;
        *b = block(id, at / 8)[(at % 8) as usize];
    }
}

fn verify_bytes(id: u64, offset: u64, buf: &[u8]) -> Result<(), u64> {
    for (i, &b) in buf.iter().enumerate() {
        let at = offset + i as u64;
        if block(id, at / 8)[(at % 8) as usize] != b {
            return Err(at);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_verifies_in_any_split_and_detects_a_flipped_byte() {
        let mut whole = vec![0; 1000];
        fill(7, 0, &mut whole);
        let mut tail = vec![0; 500];
        fill(7, 500, &mut tail);
        assert_eq!(&whole[500..], &tail[..]);
        assert!(verify(7, 0, &whole).is_ok());
        assert_ne!(whole, {
            let mut other = vec![0; 1000];
            fill(8, 0, &mut other);
            other
        });
        whole[321] ^= 1;
        assert_eq!(verify(7, 0, &whole), Err(321));
    }

    #[test]
    fn word_wise_fill_and_verify_agree_with_byte_wise_at_every_alignment() {
        for offset in 0..17u64 {
            for len in 0..40usize {
                let mut fast = vec![0; len];
                fill(3, offset, &mut fast);
                let mut slow = vec![0; len];
                fill_bytes(3, offset, &mut slow);
                assert_eq!(fast, slow, "offset {offset} len {len}");
                for flip in 0..len {
                    let mut bad = fast.clone();
                    bad[flip] ^= 0x80;
                    assert_eq!(verify(3, offset, &bad), Err(offset + flip as u64));
                }
                assert_eq!(verify(3, offset, &fast), Ok(()));
            }
        }
    }
}
