//! Collision-free ids sortable by creation time: `<prefix>-<millis>-<16 base32>`.
//!
//! Within one millisecond the 80-bit suffix is incremented (monotonic, as in
//! ULID), so ids made by one process sort in creation order; across processes
//! the random start makes a collision as unlikely as guessing 80 random bits.

use std::sync::Mutex;

const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const SUFFIX_BITS: u32 = 80;

struct Last {
    millis: u64,
    suffix: u128,
}

static LAST: Mutex<Last> = Mutex::new(Last {
    millis: 0,
    suffix: 0,
});

fn random_suffix() -> u128 {
    let mut bytes = [0u8; 16];
    // The OS random source failing is not recoverable; ids would collide.
    getrandom::fill(&mut bytes).expect("the OS random number generator failed");
    // Leave headroom so incrementing within one millisecond cannot overflow.
    u128::from_le_bytes(bytes) & ((1u128 << (SUFFIX_BITS - 1)) - 1)
}

fn now_millis() -> u64 {
    let now = chrono::Utc::now().timestamp_millis();
    u64::try_from(now).unwrap_or(0)
}

/// Makes the next id for `prefix`.
pub(crate) fn generate(prefix: &str) -> String {
    let (millis, suffix) = {
        let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
        let now = now_millis();
        if now > last.millis {
            last.millis = now;
            last.suffix = random_suffix();
        } else {
            // Same millisecond, or the clock went back: keep ordering.
            last.suffix += 1;
        }
        (last.millis, last.suffix)
    };
    let mut text = String::with_capacity(prefix.len() + 32);
    text.push_str(prefix);
    text.push('-');
    text.push_str(&format!("{millis:013}"));
    text.push('-');
    for i in (0..16).rev() {
        let digit = (suffix >> (i * 5)) & 31;
        text.push(CROCKFORD[digit as usize] as char);
    }
    text
}
