//! The sandbox's limits: defaults and maxima from the service's configuration, and what one
//! plugin's manifest asks for within them.

use std::time::Duration;

use tributary_kit::config::WasmConfig;
use tributary_proto::manifest::WasmLimits;

const MIB: u64 = 1024 * 1024;

/// The limits one instance runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory of one instance, in bytes.
    pub memory_bytes: u64,
    /// CPU time of one call into the guest.
    pub call_cpu: Duration,
    /// CPU time of a whole sync, across its calls.
    pub sync_cpu: Duration,
    /// Size of one item's data and raw payload, in bytes of JSON.
    pub item_bytes: usize,
    /// Length of one log line, in bytes; longer lines are cut.
    pub log_line_bytes: usize,
    /// Log lines per second kept; the rest are dropped and counted.
    pub log_lines_per_second: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 128 * MIB,
            call_cpu: Duration::from_secs(5),
            sync_cpu: Duration::from_secs(300),
            item_bytes: 1024 * 1024,
            log_line_bytes: 4096,
            log_lines_per_second: 50,
        }
    }
}

impl Limits {
    /// The largest limits the service allows any plugin.
    pub fn maxima() -> Self {
        Limits {
            memory_bytes: 512 * MIB,
            call_cpu: Duration::from_secs(60),
            sync_cpu: Duration::from_secs(3600),
            item_bytes: 8 * 1024 * 1024,
            log_line_bytes: 64 * 1024,
            log_lines_per_second: 1000,
        }
    }

    /// These defaults with what `asked` (a manifest's `limits`) sets instead, each bounded by
    /// `maxima`.
    pub fn for_manifest(&self, asked: &WasmLimits, maxima: &Limits) -> Limits {
        let pick = |asked: Option<u32>, default: u64, max: u64| {
            asked.map_or(default, |a| u64::from(a).min(max)).min(max)
        };
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Limits {
            memory_bytes: pick(
                asked.memory_mib,
                self.memory_bytes / MIB,
                maxima.memory_bytes / MIB,
            ) * MIB,
            call_cpu: Duration::from_millis(pick(
                asked.call_cpu_ms,
                ms(self.call_cpu),
                ms(maxima.call_cpu),
            )),
            sync_cpu: Duration::from_millis(pick(
                asked.sync_cpu_ms,
                ms(self.sync_cpu),
                ms(maxima.sync_cpu),
            )),
            item_bytes: to_usize(pick(
                asked.item_bytes,
                self.item_bytes as u64,
                maxima.item_bytes as u64,
            )),
            log_line_bytes: to_usize(pick(
                asked.log_line_bytes,
                self.log_line_bytes as u64,
                maxima.log_line_bytes as u64,
            )),
            log_lines_per_second: u32::try_from(pick(
                asked.log_lines_per_second,
                u64::from(self.log_lines_per_second),
                u64::from(maxima.log_lines_per_second),
            ))
            .unwrap_or(u32::MAX),
        }
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// A limit a guest ran into; its text names the limit and its value, as the instance's last
/// error shows it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    /// It asked for more linear memory than the instance may have.
    #[error("memory limit {} MiB exceeded", .limit_bytes / MIB)]
    Memory {
        /// The limit, in bytes.
        limit_bytes: u64,
    },
    /// One call ran longer than its CPU time.
    #[error("call exceeded {} of CPU", describe(*.limit))]
    CallCpu {
        /// The limit.
        limit: Duration,
    },
    /// A sync's calls together ran longer than its CPU time.
    #[error("sync exceeded {} of CPU", describe(*.limit))]
    SyncCpu {
        /// The limit.
        limit: Duration,
    },
    /// The host asked the guest to stop (`connector.cancel`, a shutdown).
    #[error("cancelled")]
    Cancelled,
}

/// `5 s`, `250 ms`.
fn describe(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// The defaults and the maxima `[wasm]` gives.
pub fn from_config(config: &WasmConfig) -> (Limits, Limits) {
    let ms = |ms: u32| Duration::from_millis(u64::from(ms));
    let maxima = Limits {
        memory_bytes: u64::from(config.max_memory_mib) * MIB,
        call_cpu: ms(config.max_call_cpu_ms),
        sync_cpu: ms(config.max_sync_cpu_ms),
        ..Limits::maxima()
    };
    let defaults = Limits {
        memory_bytes: u64::from(config.memory_mib) * MIB,
        call_cpu: ms(config.call_cpu_ms),
        sync_cpu: ms(config.sync_cpu_ms),
        item_bytes: config.item_bytes as usize,
        log_line_bytes: config.log_line_bytes as usize,
        log_lines_per_second: config.log_lines_per_second,
    };
    (defaults, maxima)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_gets_what_it_asks_for_up_to_the_maxima() {
        let defaults = Limits::default();
        let maxima = Limits::maxima();
        let asked = WasmLimits {
            memory_mib: Some(32),
            call_cpu_ms: Some(10_000_000),
            ..WasmLimits::default()
        };
        let limits = defaults.for_manifest(&asked, &maxima);
        assert_eq!(limits.memory_bytes, 32 * MIB);
        assert_eq!(limits.call_cpu, maxima.call_cpu);
        assert_eq!(limits.sync_cpu, defaults.sync_cpu);
        assert_eq!(limits.item_bytes, defaults.item_bytes);
    }

    #[test]
    fn a_default_above_its_maximum_is_lowered_to_it() {
        let defaults = Limits {
            memory_bytes: 1024 * MIB,
            ..Limits::default()
        };
        let limits = defaults.for_manifest(&WasmLimits::default(), &Limits::maxima());
        assert_eq!(limits.memory_bytes, Limits::maxima().memory_bytes);
    }

    #[test]
    fn limits_name_themselves() {
        assert_eq!(
            LimitExceeded::Memory {
                limit_bytes: 64 * MIB
            }
            .to_string(),
            "memory limit 64 MiB exceeded"
        );
        assert_eq!(
            LimitExceeded::CallCpu {
                limit: Duration::from_secs(5)
            }
            .to_string(),
            "call exceeded 5 s of CPU"
        );
        assert_eq!(
            LimitExceeded::SyncCpu {
                limit: Duration::from_millis(250)
            }
            .to_string(),
            "sync exceeded 250 ms of CPU"
        );
    }

    #[test]
    fn a_manifest_that_asks_nothing_gets_the_defaults() {
        let defaults = Limits::default();
        assert_eq!(
            defaults.for_manifest(&WasmLimits::default(), &Limits::maxima()),
            defaults
        );
    }

    #[test]
    fn the_maxima_are_above_the_defaults() {
        let (defaults, maxima) = (Limits::default(), Limits::maxima());
        assert_eq!(maxima.memory_bytes, 512 * MIB);
        assert_eq!(maxima.item_bytes, 8 * 1024 * 1024);
        assert!(maxima.memory_bytes > defaults.memory_bytes);
        assert!(maxima.call_cpu > defaults.call_cpu && maxima.sync_cpu > defaults.sync_cpu);
        assert!(maxima.log_line_bytes > defaults.log_line_bytes);
    }

    #[test]
    fn each_wasm_setting_is_the_limit_it_names() {
        let config = WasmConfig {
            cache_dir: Default::default(),
            memory_mib: 3,
            max_memory_mib: 7,
            call_cpu_ms: 11,
            max_call_cpu_ms: 13,
            sync_cpu_ms: 17,
            max_sync_cpu_ms: 19,
            item_bytes: 23,
            log_line_bytes: 29,
            log_lines_per_second: 31,
            pooling: false,
        };
        let (defaults, maxima) = from_config(&config);
        assert_eq!(
            defaults,
            Limits {
                memory_bytes: 3 * MIB,
                call_cpu: Duration::from_millis(11),
                sync_cpu: Duration::from_millis(17),
                item_bytes: 23,
                log_line_bytes: 29,
                log_lines_per_second: 31,
            }
        );
        assert_eq!(maxima.memory_bytes, 7 * MIB);
        assert_eq!(maxima.call_cpu, Duration::from_millis(13));
        assert_eq!(maxima.sync_cpu, Duration::from_millis(19));
    }
}
