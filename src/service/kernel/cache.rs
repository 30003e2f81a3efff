//! Caches that cannot go stale, by construction. Every cache in the service (tokens,
//! wallets, signers, signed status lists) is a [`GenCache`]: each entry belongs to a scope
//! (a tenant, or `_op` for operator tokens), each scope has a generation, and a committed
//! change bumps its scope's generation while it evicts (see `service::mutation`).
//!
//! A fill takes a [`Ticket`] (the scope's generation) *before* it reads the store, and is
//! dropped if the generation moved before the fill: a reader that loaded a token, a
//! wallet or a key before a revocation committed can never put it back after the
//! revocation's eviction. Every entry also has a maximum age, so nothing outlives a bound
//! even if an eviction were missed. Together: a revocation, suspension, token change or
//! deletion is effective for every request that starts after its response.
//!
//! Must never: insert without a ticket, or reset a scope's generation (generations come
//! from one process-wide counter, so a scope that is forgotten and seen again can never
//! repeat an old value).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// The generation a fill started from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a ticket is what makes a fill safe: pass it to GenCache::fill"]
pub struct Ticket(u64);

struct Entry<V> {
    value: V,
    at: Instant,
}

struct Inner<K, V> {
    map: HashMap<K, Entry<V>>,
    /// The generation of each scope that was ever invalidated (absent: 0).
    gens: HashMap<String, u64>,
    /// Source of new generations: strictly increasing across all scopes.
    next: u64,
}

/// A bounded cache of `V` by `K`, with per-scope generations and a maximum age.
pub struct GenCache<K, V> {
    name: &'static str,
    inner: RwLock<Inner<K, V>>,
    max_entries: usize,
    max_age: Duration,
    scope_of: fn(&K) -> &str,
}

impl<K: Eq + Hash, V: Clone> GenCache<K, V> {
    /// A cache of at most `max_entries`, each used for at most `max_age`; `scope_of` names
    /// the scope (tenant) of a key.
    pub fn new(name: &'static str, max_entries: usize, max_age: Duration, scope_of: fn(&K) -> &str) -> Self {
        Self { name, inner: RwLock::new(Inner { map: HashMap::new(), gens: HashMap::new(), next: 0 }), max_entries, max_age, scope_of }
    }

    /// The cached value, if present and younger than the maximum age.
    pub fn get(&self, k: &K) -> Option<V> {
        let hit = self.inner.read().ok()?.map.get(k).filter(|e| e.at.elapsed() < self.max_age).map(|e| e.value.clone());
        let result = if hit.is_some() { "hit" } else { "miss" };
        metrics::counter!("sigil_cache_lookups_total", "cache" => self.name, "result" => result).increment(1);
        hit
    }

    /// Take before reading what a fill of `scope` will be built from.
    pub fn ticket(&self, scope: &str) -> Ticket {
        Ticket(self.inner.read().ok().and_then(|i| i.gens.get(scope).copied()).unwrap_or(0))
    }

    /// Inserts `v` unless `scope_of(k)` was invalidated since `ticket` was taken. Returns
    /// whether it was inserted.
    pub fn fill(&self, ticket: Ticket, k: K, v: V) -> bool {
        let Ok(mut inner) = self.inner.write() else { return false };
        let current = inner.gens.get((self.scope_of)(&k)).copied().unwrap_or(0);
        if current != ticket.0 {
            metrics::counter!("sigil_cache_stale_fills_total", "cache" => self.name).increment(1);
            return false;
        }
        if inner.map.len() >= self.max_entries {
            // Expired entries first; if that frees nothing, start over (a miss costs one load).
            let max_age = self.max_age;
            inner.map.retain(|_, e| e.at.elapsed() < max_age);
            if inner.map.len() >= self.max_entries {
                inner.map.clear();
            }
        }
        inner.map.insert(k, Entry { value: v, at: Instant::now() });
        true
    }

    /// Bumps `scope`'s generation and evicts its entries that `pred` selects. Fills that
    /// took their ticket before this call are refused.
    pub fn invalidate(&self, scope: &str, pred: impl Fn(&K, &V) -> bool) {
        let Ok(mut inner) = self.inner.write() else { return };
        inner.next += 1;
        let g = inner.next;
        inner.gens.insert(scope.to_owned(), g);
        let scope_of = self.scope_of;
        inner.map.retain(|k, e| !(scope_of(k) == scope && pred(k, &e.value)));
    }

    /// Number of entries.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.inner.read().map(|i| i.map.len()).unwrap_or(0)
    }
}

/// Test-only pause points: a test arms a named point, the code under test stops there
/// until the test releases it. Release builds compile [`point`] to nothing.
#[cfg(test)]
pub mod pause {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};

    use tokio::sync::Notify;

    /// An armed point: the code signals `arrived`, then waits for `release`.
    #[derive(Default)]
    pub struct Armed {
        pub arrived: Notify,
        pub release: Notify,
    }

    type Points = Mutex<HashMap<(&'static str, String), Arc<Armed>>>;

    fn points() -> &'static Points {
        static P: OnceLock<Points> = OnceLock::new();
        P.get_or_init(Default::default)
    }

    /// Arms `name` for the next task that reaches it for `scope` (a tenant), once. Scoped,
    /// so that tests running beside each other never stop one another's tasks.
    pub fn arm(name: &'static str, scope: &str) -> Arc<Armed> {
        let a = Arc::new(Armed::default());
        if let Ok(mut p) = points().lock() {
            p.insert((name, scope.to_owned()), a.clone());
        }
        a
    }

    /// Stops here if a test armed `name` for `scope`.
    pub async fn point(name: &'static str, scope: &str) {
        let armed = points().lock().ok().and_then(|mut p| p.remove(&(name, scope.to_owned())));
        if let Some(a) = armed {
            a.arrived.notify_one();
            a.release.notified().await;
        }
    }
}

/// Release builds: no pause points.
#[cfg(not(test))]
pub mod pause {
    /// Does nothing outside tests.
    #[inline(always)]
    pub async fn point(_name: &'static str, _scope: &str) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(k: &(String, u32)) -> &str {
        &k.0
    }

    #[test]
    fn a_fill_that_started_before_an_invalidation_is_refused() {
        let c: GenCache<(String, u32), &str> = GenCache::new("test", 10, Duration::from_secs(60), tenant);
        let before = c.ticket("acme");
        c.invalidate("acme", |_, _| true);
        assert!(!c.fill(before, ("acme".into(), 1), "stale"));
        assert_eq!(c.get(&("acme".into(), 1)), None);
        // Another scope is not affected, and a fresh ticket fills.
        assert!(c.fill(c.ticket("beta"), ("beta".into(), 1), "b"));
        assert!(c.fill(c.ticket("acme"), ("acme".into(), 1), "fresh"));
        assert_eq!(c.get(&("acme".into(), 1)), Some("fresh"));
        // Invalidation evicts what its predicate selects in its scope only.
        c.invalidate("acme", |k, _| k.1 == 1);
        assert_eq!(c.get(&("acme".into(), 1)), None);
        assert_eq!(c.get(&("beta".into(), 1)), Some("b"));
    }

    #[test]
    fn entries_expire_and_the_cache_stays_bounded() {
        let c: GenCache<(String, u32), u32> = GenCache::new("test", 3, Duration::from_millis(30), tenant);
        for i in 0..10 {
            assert!(c.fill(c.ticket("t"), ("t".into(), i), i));
            assert!(c.len() <= 3);
        }
        assert_eq!(c.get(&("t".into(), 9)), Some(9));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.get(&("t".into(), 9)), None, "older than the maximum age");
    }
}
