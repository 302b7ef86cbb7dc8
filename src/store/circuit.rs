//! The circuit breaker in front of a Redis node: one per address commands are sent to (the
//! standalone server, each Cluster primary, the primary behind the sentinels), fed by the
//! outcome of every command that node answered or failed to answer. The store layer owns
//! them and checks them after routing, before a command is handed to the node's pipeline
//! (the pipeline knows nothing of breakers); [`aggregate`] sums them up for `ping()`.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{CacheError, CacheResult};

/// The circuit breaker in front of one Redis node.
///
/// After `threshold` consecutive failures of the link (timeouts, connection errors) Redis is
/// skipped for `cooldown`: every operation fails at once with `ECIRCUITOPEN`, so callers go
/// straight to their fallback instead of each waiting `commandTimeoutMs`. Then one operation
/// is let through as a probe (half-open); its success closes the circuit, its failure opens it
/// for another cool-down. An answer from Redis, even an error reply (OOM, NOPERM), is a
/// success: the server is there. `ping()` always goes to Redis and feeds the breaker, so a
/// health check sees (and brings about) the recovery.
///
/// Lock-free: a few atomics read on every operation.
pub struct Circuit {
    threshold: u32,
    cooldown: Duration,
    epoch: Instant,
    /// Consecutive failures since the last success.
    failures: AtomicU32,
    /// When the circuit opened (ms since `epoch`, plus one), or 0 while closed.
    opened_at: AtomicU64,
    /// When the probe of the half-open state was let through (ms since `epoch`, plus one), or 0.
    probe_at: AtomicU64,
}

/// What the breaker says about the next operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Closed: go ahead.
    Pass,
    /// Half-open: go ahead, this is the probe.
    Probe,
    /// Open (or a probe is already out): fail at once with `ECIRCUITOPEN`.
    Refuse,
}

/// The state as `ping()` reports it: one node's ([`Circuit::state`]: never `Degraded`), or
/// the whole cache's ([`aggregate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
    /// Some nodes' breakers are closed, others not: keys on the closed ones are served, the
    /// rest fall back.
    Degraded,
}

impl CircuitState {
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half-open",
            CircuitState::Degraded => "degraded",
        }
    }
}

/// The whole cache's state from its nodes' states: "closed" when every node's breaker is
/// closed (or no node is known yet), "open" only when every node's is open, "half-open" when
/// none is closed but some let a probe through, and "degraded" when some are closed and
/// others not. On one server it is that server's state, unchanged.
pub fn aggregate(states: impl IntoIterator<Item = CircuitState>) -> CircuitState {
    let (mut closed, mut open, mut other) = (0usize, 0usize, 0usize);
    for s in states {
        match s {
            CircuitState::Closed => closed += 1,
            CircuitState::Open => open += 1,
            CircuitState::HalfOpen | CircuitState::Degraded => other += 1,
        }
    }
    match (closed, open, other) {
        (_, 0, 0) => CircuitState::Closed,
        (0, _, 0) => CircuitState::Open,
        (0, _, _) => CircuitState::HalfOpen,
        _ => CircuitState::Degraded,
    }
}

/// How every node's breaker is made (`circuitThreshold`, `circuitCooldownMs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitConfig {
    pub threshold: u32,
    pub cooldown: Duration,
}

impl Default for CircuitConfig {
    fn default() -> CircuitConfig {
        CircuitConfig {
            threshold: Circuit::DEFAULT_THRESHOLD,
            cooldown: Circuit::DEFAULT_COOLDOWN,
        }
    }
}

impl CircuitConfig {
    /// A new breaker, closed.
    pub fn circuit(&self) -> Circuit {
        Circuit::new(self.threshold, self.cooldown)
    }
}

impl Circuit {
    pub const DEFAULT_THRESHOLD: u32 = 5;
    pub const DEFAULT_COOLDOWN: Duration = Duration::from_millis(1000);

    /// `threshold` 0 disables the breaker (it never opens).
    pub fn new(threshold: u32, cooldown: Duration) -> Circuit {
        Circuit {
            threshold,
            cooldown,
            epoch: Instant::now(),
            failures: AtomicU32::new(0),
            opened_at: AtomicU64::new(0),
            probe_at: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    fn cooldown_ms(&self) -> u64 {
        self.cooldown.as_millis() as u64
    }

    pub fn state(&self) -> CircuitState {
        let opened = self.opened_at.load(Ordering::Acquire);
        if opened == 0 {
            CircuitState::Closed
        } else if self.now().saturating_sub(opened) >= self.cooldown_ms() {
            CircuitState::HalfOpen
        } else {
            CircuitState::Open
        }
    }

    /// Decides about the next operation (call once per operation, before it is sent).
    pub fn admit(&self) -> Admit {
        let opened = self.opened_at.load(Ordering::Acquire);
        if opened == 0 {
            return Admit::Pass;
        }
        let now = self.now();
        if now.saturating_sub(opened) < self.cooldown_ms() {
            return Admit::Refuse;
        }
        // Half-open: one probe at a time. A probe that never reported back (it cannot: every
        // operation is bounded) is replaced after another cool-down.
        let probe = self.probe_at.load(Ordering::Acquire);
        if probe != 0 && now.saturating_sub(probe) < self.cooldown_ms() {
            return Admit::Refuse;
        }
        match self
            .probe_at
            .compare_exchange(probe, now, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Admit::Probe,
            Err(_) => Admit::Refuse,
        }
    }

    /// [`Circuit::admit`] as a result: `ECIRCUITOPEN` while the breaker skips Redis.
    pub fn check(&self) -> CacheResult<()> {
        match self.admit() {
            Admit::Refuse => Err(CacheError::CircuitOpen),
            Admit::Pass | Admit::Probe => Ok(()),
        }
    }

    /// Redis answered (even with an error reply): the circuit closes.
    pub fn success(&self) {
        // Read first: the hot path (nothing failed) then writes no shared cache line.
        if self.failures.load(Ordering::Acquire) != 0 {
            self.failures.store(0, Ordering::Release);
        }
        if self.opened_at.load(Ordering::Acquire) != 0 {
            self.opened_at.store(0, Ordering::Release);
            self.probe_at.store(0, Ordering::Release);
        }
    }

    /// The link failed (timeout, connection error). Opens the circuit at the threshold, and
    /// re-opens it (a new cool-down) when it was already open or half-open.
    pub fn failure(&self) {
        if self.threshold == 0 {
            return;
        }
        let n = self
            .failures
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1);
        if n >= self.threshold || self.opened_at.load(Ordering::Acquire) != 0 {
            self.opened_at.store(self.now(), Ordering::Release);
            self.probe_at.store(0, Ordering::Release);
        }
    }

    /// Feeds the outcome of an operation that reached (or tried to reach) Redis.
    pub fn record<T>(&self, result: &CacheResult<T>) {
        match result {
            Ok(_) | Err(CacheError::Redis(_)) => self.success(),
            Err(CacheError::Timeout(_)) | Err(CacheError::Unavailable(_)) => self.failure(),
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_it(c: &Circuit) {
        for _ in 0..c.threshold {
            assert_eq!(c.admit(), Admit::Pass);
            c.failure();
        }
    }

    #[test]
    fn opens_after_threshold_consecutive_failures() {
        let c = Circuit::new(3, Duration::from_secs(60));
        c.failure();
        c.failure();
        c.success(); // not consecutive
        c.failure();
        c.failure();
        assert_eq!(c.state(), CircuitState::Closed);
        assert_eq!(c.admit(), Admit::Pass);
        c.failure();
        assert_eq!(c.state(), CircuitState::Open);
        assert_eq!(c.admit(), Admit::Refuse);
        assert_eq!(c.state().as_str(), "open");
    }

    #[test]
    fn a_redis_error_reply_is_a_success_and_a_timeout_a_failure() {
        let c = Circuit::new(2, Duration::from_secs(60));
        c.record::<()>(&Err(CacheError::Timeout(5)));
        c.record::<()>(&Err(CacheError::Redis("OOM".into())));
        c.record::<()>(&Err(CacheError::Unavailable("refused".into())));
        assert_eq!(c.state(), CircuitState::Closed);
        c.record::<()>(&Err(CacheError::InvalidArg("x".into()))); // not about the link
        assert_eq!(c.state(), CircuitState::Closed);
        c.record::<()>(&Err(CacheError::Timeout(5)));
        assert_eq!(c.state(), CircuitState::Open);
    }

    #[test]
    fn half_open_lets_one_probe_through_and_its_success_closes() {
        let c = Circuit::new(2, Duration::from_millis(30));
        open_it(&c);
        assert_eq!(c.admit(), Admit::Refuse);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.state(), CircuitState::HalfOpen);
        assert_eq!(c.admit(), Admit::Probe);
        assert_eq!(c.admit(), Admit::Refuse, "only one probe at a time");
        c.success();
        assert_eq!(c.state(), CircuitState::Closed);
        assert_eq!(c.admit(), Admit::Pass);
    }

    #[test]
    fn a_failed_probe_opens_it_for_another_cooldown() {
        let c = Circuit::new(2, Duration::from_millis(30));
        open_it(&c);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.admit(), Admit::Probe);
        c.failure();
        assert_eq!(c.state(), CircuitState::Open);
        assert_eq!(c.admit(), Admit::Refuse);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.admit(), Admit::Probe);
    }

    #[test]
    fn a_lost_probe_is_replaced_after_a_cooldown() {
        let c = Circuit::new(1, Duration::from_millis(30));
        open_it(&c);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.admit(), Admit::Probe);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.admit(), Admit::Probe);
    }

    #[test]
    fn the_aggregate_is_open_only_when_every_node_is_open() {
        use CircuitState::*;
        assert_eq!(aggregate([]), Closed, "no node known yet");
        assert_eq!(aggregate([Closed]), Closed);
        assert_eq!(aggregate([Open]), Open, "one server: its own state");
        assert_eq!(aggregate([HalfOpen]), HalfOpen);
        assert_eq!(aggregate([Closed, Closed, Closed]), Closed);
        assert_eq!(aggregate([Closed, Open, Closed]), Degraded);
        assert_eq!(aggregate([HalfOpen, Closed, Closed]), Degraded);
        assert_eq!(aggregate([Open, Open, Open]), Open);
        assert_eq!(aggregate([Open, HalfOpen, Open]), HalfOpen);
        assert_eq!(Degraded.as_str(), "degraded");
    }

    #[test]
    fn threshold_zero_never_opens() {
        let c = Circuit::new(0, Duration::from_millis(30));
        for _ in 0..100 {
            c.failure();
        }
        assert_eq!(c.state(), CircuitState::Closed);
        assert_eq!(c.admit(), Admit::Pass);
    }
}
