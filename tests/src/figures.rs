//! What the benches print: rates, percentiles and milliseconds.

use std::time::Duration;

/// `n` things in `time`, a second.
pub fn per_second(n: usize, time: Duration) -> f64 {
    n as f64 / time.as_secs_f64()
}

/// The `p`th percentile (0–100, nearest rank) of `sorted`; zero when it is empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `d` as milliseconds with one decimal: `12.3 ms`.
pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// p50, p99 and max of `latencies` (sorted here), as `p50 1.0 ms, p99 2.0 ms, max 3.0 ms`.
pub fn spread(latencies: &mut [Duration]) -> String {
    latencies.sort();
    format!(
        "p50 {}, p99 {}, max {}",
        ms(percentile(latencies, 50.0)),
        ms(percentile(latencies, 99.0)),
        ms(percentile(latencies, 100.0))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&sorted, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&sorted, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&sorted, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&sorted[..1], 99.0), Duration::from_millis(1));
        assert_eq!(percentile(&[], 99.0), Duration::ZERO);
    }
}
