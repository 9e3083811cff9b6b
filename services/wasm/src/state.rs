//! What one guest instance's store holds: the restricted WASI and `wasi:http` contexts, the
//! instance's [`PluginContext`], and the meters of its limits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tributary_plugin_sdk::{PermissionDenied, PluginContext};
use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::http::HttpHooks;
use crate::limits::{LimitExceeded, Limits};

/// How often the engine's epoch advances: the grain of the CPU limits and of the guest's
/// yields to the tokio runtime.
pub(crate) const TICK: Duration = Duration::from_millis(10);

/// What every guest of one plugin instance shares: its context, which config fields are
/// secrets, its limits, and where the last refusal of the host is written down.
pub(crate) struct InstanceShared {
    /// The instance's context; every host call goes through it.
    pub ctx: PluginContext,
    /// Top-level config fields a guest reads only through `secret`.
    pub secret_fields: Vec<String>,
    /// What it runs under.
    pub limits: Limits,
    /// The last call the host refused (a host not granted), to name in the error of a guest
    /// that fails after it.
    pub last_refusal: Mutex<Option<PermissionDenied>>,
    /// The last request the host could not make for a reason that is not transient (a
    /// reconnect needed: the token broker's words), to report as the error of a guest that
    /// fails after it instead of what its fetch made of it.
    pub last_failure: Mutex<Option<String>>,
}

impl InstanceShared {
    /// What the guests of the instance of `ctx` share.
    pub fn new(ctx: PluginContext, secret_fields: Vec<String>, limits: Limits) -> Arc<Self> {
        Arc::new(InstanceShared {
            ctx,
            secret_fields,
            limits,
            last_refusal: Mutex::new(None),
            last_failure: Mutex::new(None),
        })
    }

    /// Writes down a request the host could not make, for a reason that is not transient.
    pub fn failed(&self, message: &str) {
        if let Ok(mut last) = self.last_failure.lock() {
            *last = Some(message.to_owned());
        }
    }

    /// The last such failure, taken.
    pub fn take_failure(&self) -> Option<String> {
        self.last_failure
            .lock()
            .ok()
            .and_then(|mut last| last.take())
    }

    /// Writes down a refusal, and logs it as the plugin's.
    pub fn refused(&self, refusal: &PermissionDenied) {
        self.ctx.log_warn(&format!("Refused: {refusal}"));
        if let Ok(mut last) = self.last_refusal.lock() {
            *last = Some(refusal.clone());
        }
    }

    /// The last refusal, taken.
    pub fn take_refusal(&self) -> Option<PermissionDenied> {
        self.last_refusal
            .lock()
            .ok()
            .and_then(|mut last| last.take())
    }
}

/// CPU time used, counted in epoch ticks while the guest runs, and the cancel flag.
pub(crate) struct Meter {
    /// Ticks of the call running now.
    pub call_ticks: u64,
    /// Ticks of the whole sync (or of the warm guest's life, for a channel).
    pub total_ticks: u64,
    /// Ticks one call may use.
    pub call_limit: u64,
    /// Ticks all calls together may use; none for a channel's warm guest.
    pub total_limit: Option<u64>,
    /// Set by the host to stop the guest at its next tick.
    pub cancel: Arc<AtomicBool>,
    /// The limit the guest ran into, once it has.
    pub exceeded: Option<LimitExceeded>,
    /// The limits, to name in errors.
    limits: Limits,
}

fn ticks(d: Duration) -> u64 {
    let tick = TICK.as_millis().max(1);
    u64::try_from(d.as_millis().div_ceil(tick)).unwrap_or(u64::MAX)
}

impl Meter {
    /// A meter for `limits`; `whole_sync` counts the sync limit too.
    pub fn new(limits: &Limits, whole_sync: bool, cancel: Arc<AtomicBool>) -> Self {
        Meter {
            call_ticks: 0,
            total_ticks: 0,
            call_limit: ticks(limits.call_cpu),
            total_limit: whole_sync.then(|| ticks(limits.sync_cpu)),
            cancel,
            exceeded: None,
            limits: *limits,
        }
    }

    /// One tick of running guest code: the limit it crossed, if any.
    pub fn tick(&mut self) -> Result<(), LimitExceeded> {
        self.call_ticks += 1;
        self.total_ticks += 1;
        let exceeded = if self.cancel.load(Ordering::Relaxed) {
            Some(LimitExceeded::Cancelled)
        } else if self.call_ticks > self.call_limit {
            Some(LimitExceeded::CallCpu {
                limit: self.limits.call_cpu,
            })
        } else if self
            .total_limit
            .is_some_and(|limit| self.total_ticks > limit)
        {
            Some(LimitExceeded::SyncCpu {
                limit: self.limits.sync_cpu,
            })
        } else {
            None
        };
        match exceeded {
            Some(exceeded) => {
                self.exceeded = Some(exceeded.clone());
                Err(exceeded)
            }
            None => Ok(()),
        }
    }
}

/// Holds the guest's linear memory to its limit, naming it when a growth would cross it.
pub(crate) struct MemoryLimiter {
    limit_bytes: u64,
    /// Whether the guest asked for more than its limit.
    pub exceeded: bool,
}

impl MemoryLimiter {
    pub fn new(limit_bytes: u64) -> Self {
        MemoryLimiter {
            limit_bytes,
            exceeded: false,
        }
    }
}

/// Elements of one table a guest may have (SpiderMonkey's function table is large).
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if u64::try_from(desired).unwrap_or(u64::MAX) > self.limit_bytes {
            self.exceeded = true;
            return Err(LimitExceeded::Memory {
                limit_bytes: self.limit_bytes,
            }
            .into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// Log lines kept per second; the rest dropped and counted.
pub(crate) struct LogLimiter {
    window: Instant,
    lines: u32,
    per_second: u32,
    /// Lines dropped in the current window.
    pub dropped: u64,
}

impl LogLimiter {
    pub fn new(per_second: u32) -> Self {
        LogLimiter {
            window: Instant::now(),
            lines: 0,
            per_second,
            dropped: 0,
        }
    }

    /// Whether one more line may be logged now; when a new window starts, how many were
    /// dropped in the one before.
    pub fn admit(&mut self) -> (bool, Option<u64>) {
        let mut dropped_before = None;
        if self.window.elapsed() >= Duration::from_secs(1) {
            if self.dropped > 0 {
                dropped_before = Some(self.dropped);
            }
            self.window = Instant::now();
            self.lines = 0;
            self.dropped = 0;
        }
        if self.lines < self.per_second {
            self.lines += 1;
            (true, dropped_before)
        } else {
            self.dropped += 1;
            (false, dropped_before)
        }
    }
}

/// The data of one guest's store.
pub(crate) struct HostState {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub http_ctx: WasiHttpCtx,
    pub hooks: HttpHooks,
    pub shared: Arc<InstanceShared>,
    pub memory: MemoryLimiter,
    pub meter: Meter,
    pub log: LogLimiter,
}

impl HostState {
    /// The state of a new guest of `shared`'s instance.
    pub fn new(shared: Arc<InstanceShared>, whole_sync: bool, cancel: Arc<AtomicBool>) -> Self {
        let limits = shared.limits;
        // No preopened directories, no environment, no arguments, no sockets: the sandbox
        // reaches nothing but what the host interface and the checked HTTP client offer.
        let wasi = WasiCtx::builder()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            http_ctx: WasiHttpCtx::new(),
            hooks: HttpHooks::new(shared.clone()),
            memory: MemoryLimiter::new(limits.memory_bytes),
            meter: Meter::new(&limits, whole_sync, cancel),
            log: LogLimiter::new(limits.log_lines_per_second),
            shared,
        }
    }
}

impl Drop for HostState {
    /// Lines dropped in the guest's last second are counted too, not only those followed by
    /// a later line.
    fn drop(&mut self) {
        if self.log.dropped > 0 {
            self.shared.ctx.log_warn(&format!(
                "{} log lines of the plugin dropped: over its {} lines a second",
                self.log.dropped, self.shared.limits.log_lines_per_second
            ));
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http_ctx,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_call_over_its_cpu_is_stopped_naming_the_limit() {
        let limits = Limits {
            call_cpu: Duration::from_millis(30),
            ..Limits::default()
        };
        let mut meter = Meter::new(&limits, true, Arc::default());
        for _ in 0..3 {
            meter.tick().unwrap();
        }
        let err = meter.tick().unwrap_err();
        assert_eq!(err.to_string(), "call exceeded 30 ms of CPU");
        assert_eq!(meter.exceeded, Some(err));
    }

    #[test]
    fn a_sync_over_its_cpu_is_stopped_across_calls() {
        let limits = Limits {
            call_cpu: Duration::from_millis(30),
            sync_cpu: Duration::from_millis(50),
            ..Limits::default()
        };
        let mut meter = Meter::new(&limits, true, Arc::default());
        for _ in 0..3 {
            meter.tick().unwrap();
        }
        meter.call_ticks = 0;
        meter.tick().unwrap();
        meter.tick().unwrap();
        assert_eq!(
            meter.tick().unwrap_err().to_string(),
            "sync exceeded 50 ms of CPU"
        );
        let mut channel = Meter::new(&limits, false, Arc::default());
        for _ in 0..10 {
            channel.call_ticks = 0;
            channel.tick().unwrap();
        }
    }

    #[test]
    fn a_cancel_stops_the_guest_at_its_next_tick() {
        let cancel = Arc::new(AtomicBool::new(false));
        let mut meter = Meter::new(&Limits::default(), true, cancel.clone());
        meter.tick().unwrap();
        cancel.store(true, Ordering::Relaxed);
        assert_eq!(meter.tick().unwrap_err(), LimitExceeded::Cancelled);
    }

    #[test]
    fn memory_past_the_limit_is_refused_naming_it() {
        let mut limiter = MemoryLimiter::new(64 * 1024 * 1024);
        assert!(limiter.memory_growing(0, 64 * 1024 * 1024, None).unwrap());
        let err = limiter
            .memory_growing(0, 64 * 1024 * 1024 + 65536, None)
            .unwrap_err();
        assert_eq!(err.to_string(), "memory limit 64 MiB exceeded");
        assert!(limiter.exceeded);
    }

    #[test]
    fn log_lines_over_the_rate_are_dropped_and_counted() {
        let mut log = LogLimiter::new(3);
        let admitted: Vec<bool> = (0..5).map(|_| log.admit().0).collect();
        assert_eq!(admitted, [true, true, true, false, false]);
        assert_eq!(log.dropped, 2);
        log.window -= Duration::from_secs(2);
        assert_eq!(log.admit(), (true, Some(2)));
    }

    #[test]
    fn a_refusal_is_kept_until_taken_once() {
        let ctx = PluginContext::builder(
            "com.example.x",
            "x-1",
            tributary_plugin_sdk::Grants::default(),
        )
        .build()
        .unwrap();
        let shared = InstanceShared::new(ctx, vec![], Limits::default());
        assert_eq!(shared.take_refusal(), None);
        let denied = PermissionDenied {
            needed: "event:publish:x".parse().unwrap(),
            asked: None,
        };
        shared.refused(&denied);
        assert_eq!(
            shared.take_refusal().map(|d| d.to_string()).as_deref(),
            Some("permission `event:publish:x` is not granted")
        );
        assert_eq!(shared.take_refusal(), None);
    }

    #[test]
    fn tables_grow_up_to_their_bound() {
        let mut limiter = MemoryLimiter::new(1 << 20);
        assert!(limiter.table_growing(0, MAX_TABLE_ELEMENTS, None).unwrap());
        assert!(!limiter
            .table_growing(0, MAX_TABLE_ELEMENTS + 1, None)
            .unwrap());
        assert_eq!(MAX_TABLE_ELEMENTS, 1 << 20);
    }
}
