//! Every answer the `#[napi]` surface gives that is more than a scalar, encoded in one place.
//!
//! Each encoder here has one decoder of the same name in `lib/replies.js`; the flat shapes
//! (arrays of strings or numbers instead of objects) keep the hot paths free of JSON and of
//! per-field property sets. The test build's `testReply(id, name)` sends [`samples`] through
//! the real delivery path, and `__test__/replies.test.js` checks every decoder against them.

use crate::bridge::Reply;
use crate::store::cache::LeaseState;
use crate::store::circuit::CircuitState;
use crate::store::lock::{Acquired, Held, SemAcquired, SemStatus};
use crate::store::rate_limit::RateStatus;
use crate::store::revision::MissRead;
use crate::store::transport::node::{NodePing, NodeStatus};

/// Whole seconds until a window resets (rounded up, never negative).
pub fn reset_in(left_ms: i64) -> i64 {
    (left_ms.max(0) + 999) / 1000
}

/// PING on every data node: JSON `[{ address, role, pong, ms, circuit, error? }]` (a health
/// read: JSON is fine here), `circuit` from the node's breaker in `states`.
pub fn ping_nodes(nodes: Vec<NodePing>, states: &[NodeStatus]) -> Reply {
    let circuit_of = |address: &str| {
        states
            .iter()
            .find(|n| n.address == address)
            .map_or(CircuitState::Closed, |n| n.circuit)
            .as_str()
    };
    let list: Vec<serde_json::Value> = nodes
        .into_iter()
        .map(|n| {
            let mut v = serde_json::json!({
                "address": n.address,
                "role": n.role,
                "ms": n.ms,
                "circuit": circuit_of(&n.address),
            });
            match n.result {
                Ok(pong) => v["pong"] = pong.into(),
                Err(e) => {
                    v["pong"] = serde_json::Value::Null;
                    v["error"] = e.to_string().into();
                }
            }
            v
        })
        .collect();
    Reply::Str(serde_json::Value::Array(list).to_string())
}

/// A miss read: `[rev, t]`, or `[rev, t, value]` when a value is there now.
pub fn miss(m: MissRead) -> Reply {
    let mut v = vec![m.rev, m.t.to_string()];
    v.extend(m.value);
    Reply::Strs(v)
}

/// The general cache's miss read: `[rev, t, lease]`, or `[rev, t, lease, value]` when a value
/// is there now; `lease` is wrap's `lock`: "1" taken for the caller, "0" held by another, ""
/// none.
pub fn cache_miss(m: MissRead, lease: LeaseState) -> Reply {
    let mut v = vec![m.rev, m.t.to_string(), lease.as_str().to_string()];
    v.extend(m.value);
    Reply::Strs(v)
}

/// Sessions found by a scan: `[hash, json, hash, json, …]`.
pub fn session_list(found: Vec<(String, String)>) -> Reply {
    Reply::Strs(
        found
            .into_iter()
            .flat_map(|(hash, json)| [hash, json])
            .collect(),
    )
}

/// A counter after a hit, a peek, an undo or a block: `[total, msUntilReset]`.
pub fn counter(total: i64, left_ms: i64) -> Reply {
    Reply::Nums(vec![total as f64, left_ms.max(0) as f64])
}

/// An IP's live counters: JSON `{ [endpoint]: { current, limit, resetIn } }` (rare: an admin
/// read, so JSON is fine here).
pub fn rate_status(rows: Vec<RateStatus>) -> Reply {
    let mut out = serde_json::Map::with_capacity(rows.len());
    for r in rows {
        out.insert(
            r.endpoint,
            serde_json::json!({
                "current": r.current,
                "limit": r.limit,
                "resetIn": reset_in(r.left_ms),
            }),
        );
    }
    Reply::Str(serde_json::Value::Object(out).to_string())
}

/// A lock acquire: `['1', owner, fence]` or `['0', holder, pttlMs]`.
pub fn lock_acquired(a: Acquired, owner: String) -> Reply {
    Reply::Strs(match a {
        Acquired::Granted { fence } => vec!["1".into(), owner, fence.to_string()],
        Acquired::Busy { holder, pttl_ms } => vec!["0".into(), holder, pttl_ms.to_string()],
    })
}

/// A lock's holder: `[owner, pttlMs]`, or `[]` when the lock is free.
pub fn lock_holder(h: Option<Held>) -> Reply {
    Reply::Strs(h.map_or_else(Vec::new, |h| vec![h.owner, h.pttl_ms.to_string()]))
}

/// A semaphore acquire: `['1', owner, fence, held]` or `['0', held, msUntilTheFirstFrees]`.
pub fn sem_acquired(a: SemAcquired, owner: String) -> Reply {
    Reply::Strs(match a {
        SemAcquired::Granted { fence, held } => {
            vec!["1".into(), owner, fence.to_string(), held.to_string()]
        }
        SemAcquired::Full { held, retry_ms } => {
            vec!["0".into(), held.to_string(), retry_ms.to_string()]
        }
    })
}

/// A semaphore's live holders: `[held, msUntilTheEarliestExpires or -1]`.
pub fn sem_status(st: SemStatus) -> Reply {
    Reply::Nums(vec![st.held as f64, st.next_expiry_ms as f64])
}

/// One sample answer of every encoder above, by name, from fixed inputs (the test build sends
/// them through the delivery path; `__test__/replies.test.js` holds what each decodes to).
#[cfg(feature = "test-hooks")]
pub fn samples(name: &str) -> Option<Reply> {
    use crate::error::CacheError;
    let rev = |value: Option<&str>| MissRead {
        value: value.map(String::from),
        rev: "1700000000123".into(),
        t: 1_700_000_000_456,
    };
    Some(match name {
        "pingNodes" => ping_nodes(
            vec![
                NodePing {
                    address: "10.0.0.1:7000".into(),
                    role: "primary",
                    result: Ok("PONG".into()),
                    ms: 0.5,
                },
                NodePing {
                    address: "10.0.0.2:7000".into(),
                    role: "primary",
                    result: Err(CacheError::Timeout(200)),
                    ms: 200.0,
                },
            ],
            &[NodeStatus {
                address: "10.0.0.2:7000".into(),
                role: "primary",
                up: false,
                circuit: CircuitState::Open,
            }],
        ),
        "missEmpty" => miss(rev(None)),
        "missValue" => miss(rev(Some("{\"a\":1}"))),
        "cacheMissTaken" => cache_miss(rev(None), LeaseState::Taken),
        "cacheMissHeld" => cache_miss(rev(None), LeaseState::Held),
        "cacheMissValue" => cache_miss(rev(Some("j{}")), LeaseState::None),
        "sessionList" => session_list(vec![
            ("ab".repeat(32), "{\"user_id\":7}".into()),
            ("cd".repeat(32), "{\"user_id\":8}".into()),
        ]),
        "sessionListEmpty" => session_list(Vec::new()),
        "counter" => counter(7, 59_001),
        "counterExpired" => counter(1, -3),
        "rateStatus" => rate_status(vec![RateStatus {
            endpoint: "/login".into(),
            limit: 5,
            current: 2,
            left_ms: 1_001,
        }]),
        "lockGranted" => lock_acquired(Acquired::Granted { fence: 42 }, "node:abc".into()),
        "lockBusy" => lock_acquired(
            Acquired::Busy {
                holder: "node:def".into(),
                pttl_ms: 1_500,
            },
            "node:abc".into(),
        ),
        "lockHeld" => lock_holder(Some(Held {
            owner: "node:def".into(),
            pttl_ms: 900,
        })),
        "lockFree" => lock_holder(None),
        "semGranted" => sem_acquired(
            SemAcquired::Granted { fence: 9, held: 2 },
            "node:abc".into(),
        ),
        "semFull" => sem_acquired(
            SemAcquired::Full {
                held: 3,
                retry_ms: 250,
            },
            "node:abc".into(),
        ),
        "semStatus" => sem_status(SemStatus {
            held: 3,
            next_expiry_ms: -1,
        }),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_in_rounds_up_to_whole_seconds() {
        assert_eq!(reset_in(60_000), 60);
        assert_eq!(reset_in(59_001), 60);
        assert_eq!(reset_in(1), 1);
        assert_eq!(reset_in(0), 0);
        assert_eq!(reset_in(-5), 0);
    }
}
