//! Random bytes from the system's CSPRNG (ring's), for UIDs, generated names, allocation start
//! points, IVs and nonces.

/// `N` random bytes; panics if the system generator fails, which leaves nothing to go on with.
pub fn bytes<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut b = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("system random generator");
    b
}
