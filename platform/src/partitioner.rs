//! Key → partition placement, byte-for-byte compatible with Kafka's Java
//! `DefaultPartitioner` / `BuiltInPartitioner` for keyed records:
//! `toPositive(murmur2(key)) % numPartitions`.
//!
//! Why our own copy instead of trusting librdkafka's `murmur2_random`: the
//! embedded log must place keys exactly where Kafka does (so a topic exported
//! from one replays identically on the other), and both adapters computing
//! the partition from one function makes that true by construction.

/// Kafka's murmur2 (as in `org.apache.kafka.common.utils.Utils.murmur2`).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    let length = data.len();
    // Java computes with signed ints; wrapping u32 arithmetic is bit-identical.
    let mut h: u32 = SEED ^ (length as u32);
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for chunk in chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    // Java sign-extends each tail byte (`data[i] & 0xff` is applied, so no).
    match tail.len() {
        3 => {
            h ^= u32::from(tail[2]) << 16;
            h ^= u32::from(tail[1]) << 8;
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        2 => {
            h ^= u32::from(tail[1]) << 8;
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        1 => {
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        _ => {}
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's Java producer picks for `key` in a topic of
/// `partitions` partitions. `partitions` must be positive.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    debug_assert!(partitions > 0);
    let positive = murmur2(key) & 0x7fff_ffff;
    positive % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors from Kafka's own `UtilsTest.testMurmur2`.
    #[test]
    fn matches_kafka_java_test_vectors() {
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (key, expected) in cases {
            assert_eq!(
                murmur2(key),
                *expected,
                "key {:?}",
                String::from_utf8_lossy(key)
            );
        }
    }

    /// Vectors produced by the real Java client and cross-checked against a
    /// real broker's placement (see the file's header).
    #[test]
    fn matches_java_client_placement() {
        let vectors = include_str!("../../deploy/kafka/murmur2-vectors.txt");
        let mut checked = 0;
        for line in vectors
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 5, "malformed vector line {line:?}");
            let key = fields[0].as_bytes();
            let parse = |s: &str| s.parse::<i32>().unwrap_or(i32::MIN);
            assert_eq!(murmur2(key), parse(fields[1]), "murmur2 of {:?}", fields[0]);
            for (n, expected) in [(3, fields[2]), (6, fields[3]), (12, fields[4])] {
                assert_eq!(
                    partition_for_key(key, n),
                    parse(expected),
                    "{:?} in {n}",
                    fields[0]
                );
            }
            checked += 1;
        }
        assert!(checked >= 10, "only {checked} vectors read");
    }

    #[test]
    fn partition_is_in_range_and_stable() {
        for n in 1..20 {
            for k in 0..200 {
                let key = format!("order-{k}");
                let p = partition_for_key(key.as_bytes(), n);
                assert!((0..n).contains(&p));
                assert_eq!(p, partition_for_key(key.as_bytes(), n));
            }
        }
    }
}
