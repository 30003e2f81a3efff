//! Guardrails at run time: per-agent rate limits, throttling of repeated authentication
//! failures per client address, the `/v1/verify` rate, and automatic suspension of an agent
//! after too many denials in a window. Counters live in memory when one process owns the
//! store. When several nodes share it (`Store::shared`), the two that are security
//! boundaries move into the store, so that they hold for the installation and not per node:
//! authentication failures per address (a fixed window of `keys::AUTH_FAILURE_WINDOW_SECS`,
//! compare-and-set, and the block itself) and the denials that suspend an agent. Plain
//! rate limits (per agent, `/v1/verify` per address) stay per node: n nodes allow n times
//! the rate, as documented in docs/ARCHITECTURE.md.
//!
//! Client addresses are limited one by one for IPv4 and by /64 for IPv6 (one subscriber's
//! allocation: a host that owns a /64 could otherwise start afresh 2^64 times). The client
//! address itself is the HTTP edge's business (`http::client`, `--trusted-proxy`).
//!
//! Must never: grow without bound (every per-address map holds at most
//! [`MAX_ADDRESSES`] addresses, give or take one check interval, and the housekeeping task
//! forgets quiet ones), refuse a valid token (the HTTP edge checks the token first and asks
//! here only about attempts without one), or persist anything but a suspension.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use governor::{DefaultKeyedRateLimiter, Quota};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use crate::codes::ErrorCode;
use crate::ids::{AgentId, TenantId};
use crate::service::kernel::journal::Event;
use crate::service::model::settings::GuardrailSettings;
use crate::service::{ServiceError, Sigil};

struct TenantGuards {
    settings: GuardrailSettings,
    limiter: DefaultKeyedRateLimiter<String>,
}

impl TenantGuards {
    fn new(s: GuardrailSettings) -> Self {
        Self { limiter: DefaultKeyedRateLimiter::keyed(Quota::per_second(nz(s.rate_per_second)).allow_burst(nz(s.burst))), settings: s }
    }
}

/// A tenant's guards and when their settings were read (`None`: to be read again).
type CachedGuards = (Arc<TenantGuards>, Option<Instant>);

/// The guard generation a load of a tenant's settings started from.
#[derive(Clone, Copy)]
struct GuardsTicket(u64);

/// A tenant's guardrail settings are read again after this long, eviction or not: a bound
/// even if an eviction were missed (several nodes: a change on another node is also
/// confirmed per request, `coherence.rs`).
const GUARDS_MAX_AGE: Duration = Duration::from_secs(30);

/// In-memory guardrail state.
pub struct Guardrails {
    auth_enabled: bool,
    /// Failures allowed per address and window on a shared store: the burst, without the
    /// in-memory limiter's refill (one every 3 s). Stricter than one node, so that an
    /// address spreading its attempts over n nodes never gets n bursts.
    pub(crate) auth_window_limit: u32,
    /// Each tenant's settings and rate limiter, with when the settings were read (`None`:
    /// forgotten, to be read again). A forgotten entry keeps its limiter: a load that reads
    /// the same settings takes it up again, buckets and all, so that a cache invalidation
    /// (on several nodes, any change in the tenant) never hands an agent a fresh burst.
    tenants: RwLock<HashMap<String, CachedGuards>>,
    /// Bumped (under the `tenants` lock) by every [`Guardrails::forget_tenant`]: a load
    /// that read the settings before is not cached after it ([`GuardsTicket`]).
    generation: AtomicU64,
    denials: Mutex<HashMap<(String, String), VecDeque<Timestamp>>>,
    auth_failures: AddressLimiter,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    /// `/v1/verify` per client address; `None` when disabled.
    verify: Option<AddressLimiter>,
    max_addresses: usize,
}

/// Authentication failures allowed per address: bursts of 20, then one every 3 s.
const AUTH_BURST: u32 = 20;

const AUTH_BLOCK: Duration = Duration::from_secs(60);

/// Addresses a per-address map holds at most. At about 100 bytes an entry, 100,000 are
/// 10 MB per map; legitimate clients active within a minute are far fewer.
pub const MAX_ADDRESSES: usize = 100_000;

/// A per-address map checks its size once every this many uses (so the check costs
/// nothing measurable per request, and a map exceeds its bound by at most this much).
const BOUND_EVERY: u32 = 64;

/// The longest denial window a tenant can set (`GuardrailSettings::validate`).
const MAX_DENIAL_WINDOW: SignedDuration = SignedDuration::from_secs(86_400);

impl Default for Guardrails {
    fn default() -> Self {
        Self::new(AUTH_BURST, 100)
    }
}

/// The key an address is limited under: IPv4 addresses one by one, IPv6 by /64.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u64::MAX as u128))),
        v4 => v4,
    }
}

/// A rate limiter keyed by client address, whose state stays bounded: quiet addresses are
/// forgotten by the housekeeping task and whenever the map reaches its bound. If it is
/// still more than half full after that (a flood from that many addresses), it starts
/// afresh: the addresses forgotten lose their count, which costs nothing an attacker with
/// that many addresses did not have anyway, while refusing new addresses would turn the
/// limit against clients that did nothing.
struct AddressLimiter {
    quota: Quota,
    max: usize,
    inner: RwLock<DefaultKeyedRateLimiter<IpAddr>>,
    uses: AtomicU32,
}

impl AddressLimiter {
    fn new(quota: Quota, max: usize) -> Self {
        Self { quota, max, inner: RwLock::new(DefaultKeyedRateLimiter::keyed(quota)), uses: AtomicU32::new(0) }
    }

    /// Counts one event from `ip`; false when the address is over its quota.
    fn check(&self, ip: IpAddr) -> bool {
        if self.uses.fetch_add(1, Ordering::Relaxed) % BOUND_EVERY == 0 {
            self.bound();
        }
        self.inner.read().map_or(true, |l| l.check_key(&address_key(ip)).is_ok())
    }

    fn len(&self) -> usize {
        self.inner.read().map_or(0, |l| l.len())
    }

    /// Forgets addresses whose state is back to a fresh one.
    fn prune(&self) {
        if let Ok(l) = self.inner.read() {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    fn bound(&self) {
        if self.len() < self.max {
            return;
        }
        self.prune();
        if self.len() > self.max / 2 {
            if let Ok(mut l) = self.inner.write() {
                *l = DefaultKeyedRateLimiter::keyed(self.quota);
            }
            metrics::counter!("sigil_guardrail_triggers_total", "kind" => "address_state_reset").increment(1);
        }
    }
}

impl Guardrails {
    /// Guardrails allowing `auth_burst` failed authentications per address (0 disables),
    /// and `verify_rate` verifications per second per address, bursts of twice that (0
    /// disables).
    pub fn new(auth_burst: u32, verify_rate: u32) -> Self {
        Self::bounded(auth_burst, verify_rate, MAX_ADDRESSES)
    }

    /// [`Guardrails::new`] with per-address maps of at most `max_addresses`.
    fn bounded(auth_burst: u32, verify_rate: u32, max_addresses: usize) -> Self {
        let quota = Quota::with_period(Duration::from_secs(3)).map(|q| q.allow_burst(nz(auth_burst)));
        let verify = (verify_rate > 0)
            .then(|| AddressLimiter::new(Quota::per_second(nz(verify_rate)).allow_burst(nz(verify_rate.saturating_mul(2))), max_addresses));
        Self {
            verify,
            auth_enabled: auth_burst > 0,
            auth_window_limit: auth_burst,
            tenants: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
            denials: Mutex::new(HashMap::new()),
            auth_failures: AddressLimiter::new(quota.unwrap_or_else(|| Quota::per_second(nz(1))), max_addresses),
            blocked: Mutex::new(HashMap::new()),
            max_addresses,
        }
    }
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

impl Guardrails {
    /// The tenant's cached guards, if read less than [`GUARDS_MAX_AGE`] ago.
    fn cached(&self, tenant: &TenantId) -> Option<Arc<TenantGuards>> {
        let m = self.tenants.read().ok()?;
        m.get(tenant.as_str()).filter(|(_, at)| at.is_some_and(|at| at.elapsed() < GUARDS_MAX_AGE)).map(|(g, _)| g.clone())
    }

    /// Take before reading the settings a [`Guardrails::guards_for`] will cache.
    fn ticket(&self) -> GuardsTicket {
        GuardsTicket(self.generation.load(Ordering::SeqCst))
    }

    /// Guards for `s`, read after `ticket` was taken: cached unless a
    /// [`Guardrails::forget_tenant`] ran since (then used for this request only). Unchanged
    /// settings keep their limiter (and its buckets), forgotten or not.
    fn guards_for(&self, tenant: &TenantId, s: GuardrailSettings, ticket: GuardsTicket) -> Arc<TenantGuards> {
        let Ok(mut m) = self.tenants.write() else {
            return Arc::new(TenantGuards::new(s));
        };
        let g = match m.get(tenant.as_str()) {
            Some((g, _)) if g.settings == s => g.clone(),
            _ => Arc::new(TenantGuards::new(s)),
        };
        // Forgetting bumps the generation under this same lock, so the check is exact.
        if self.generation.load(Ordering::SeqCst) == ticket.0 {
            m.insert(tenant.to_string(), (g.clone(), Some(Instant::now())));
        }
        g
    }

    pub(crate) fn forget_tenant(&self, tenant: &TenantId) {
        if let Ok(mut m) = self.tenants.write() {
            self.generation.fetch_add(1, Ordering::SeqCst);
            if let Some(entry) = m.get_mut(tenant.as_str()) {
                entry.1 = None;
            }
        }
    }

    /// True when `ip` is currently refused for repeated authentication failures (asked
    /// only for a request without a valid token).
    pub fn auth_blocked(&self, ip: IpAddr) -> bool {
        let key = address_key(ip);
        let Ok(mut b) = self.blocked.lock() else { return false };
        match b.get(&key) {
            Some(until) if Instant::now() < *until => true,
            Some(_) => {
                b.remove(&key);
                false
            }
            None => false,
        }
    }

    /// Counts one verification from `ip`; false when the address is over its rate.
    pub fn allow_verify(&self, ip: IpAddr) -> bool {
        self.verify.as_ref().is_none_or(|l| l.check(ip))
    }

    /// Forgets state nobody needs any more (housekeeping): addresses that have been quiet,
    /// blocks that ended, idle agents' rate limits, and denials older than any window.
    pub fn prune(&self, now: Timestamp) {
        self.auth_failures.prune();
        if let Some(v) = &self.verify {
            v.prune();
        }
        if let Ok(mut b) = self.blocked.lock() {
            let now = Instant::now();
            b.retain(|_, until| now < *until);
            b.shrink_to_fit();
        }
        if let Ok(mut m) = self.tenants.write() {
            for (g, _) in m.values() {
                g.limiter.retain_recent();
            }
            // A forgotten tenant (changed, deleted) whose limiter holds nobody any more.
            m.retain(|_, (g, at)| at.is_some() || !g.limiter.is_empty());
        }
        if let Ok(mut d) = self.denials.lock() {
            d.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < MAX_DENIAL_WINDOW));
        }
    }

    /// Refuses `ip` here for the block period (a block another node decided).
    fn block(&self, ip: IpAddr, until: Instant) {
        if let Ok(mut b) = self.blocked.lock() {
            if b.len() >= self.max_addresses {
                b.clear();
            }
            b.insert(address_key(ip), until);
        }
    }

    /// Counts one failed authentication; returns true when `ip` is now throttled.
    pub fn note_auth_failure(&self, ip: IpAddr) -> bool {
        if !self.auth_enabled || self.auth_failures.check(ip) {
            return false;
        }
        if let Ok(mut b) = self.blocked.lock() {
            let now = Instant::now();
            if b.len() >= self.max_addresses {
                b.retain(|_, until| now < *until);
                // As `AddressLimiter` does: a flood from this many addresses starts afresh.
                if b.len() > self.max_addresses / 2 {
                    b.clear();
                }
            }
            b.insert(address_key(ip), now + AUTH_BLOCK);
        }
        metrics::counter!("sigil_guardrail_triggers_total", "kind" => "auth_throttle").increment(1);
        true
    }
}

impl Sigil {
    async fn guards(&self, tenant: &TenantId) -> Result<Arc<TenantGuards>, ServiceError> {
        if let Some(g) = self.guardrails.cached(tenant) {
            return Ok(g);
        }
        let ticket = self.guardrails.ticket();
        let settings = self.tenant_record(tenant).await?.guardrails.unwrap_or_default();
        crate::service::kernel::cache::pause::point("guards.fill", tenant.as_str()).await;
        Ok(self.guardrails.guards_for(tenant, settings, ticket))
    }

    /// The tenant's guardrail settings (cached).
    pub(crate) async fn guardrail_settings(&self, tenant: &TenantId) -> Result<GuardrailSettings, ServiceError> {
        Ok(self.guards(tenant).await?.settings.clone())
    }

    /// `context` with the values of the keys the tenant marks sensitive
    /// (`sensitive_context_keys`) replaced by keyed hashes (`hmac-sha256:…`): what the
    /// trail and the approval webhook carry. Equal values hash alike, so a reader can
    /// still match them, but never learn them.
    pub(crate) async fn redact_sensitive_context(
        &self,
        tenant: &TenantId,
        context: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<serde_json::Map<String, serde_json::Value>, ServiceError> {
        let sensitive = self.guardrail_settings(tenant).await?.sensitive_context_keys;
        let mut out = context.clone();
        for (k, v) in out.iter_mut() {
            if sensitive.contains(k) {
                let h = self.keys.pepper.keyed_hash("audit-context", v.to_string().as_bytes());
                *v = serde_json::Value::String(format!("hmac-sha256:{}", hex::encode(h)));
            }
        }
        Ok(out)
    }

    /// Refuses a request over the agent's rate limit.
    pub(crate) async fn check_rate(&self, tenant: &TenantId, agent: &AgentId) -> Result<(), ServiceError> {
        let g = self.guards(tenant).await?;
        if g.limiter.check_key(&agent.as_str().to_owned()).is_err() {
            metrics::counter!("sigil_guardrail_triggers_total", "kind" => "rate_limit").increment(1);
            return Err(ServiceError::TooManyRequests {
                code: ErrorCode::RateLimited,
                detail: "the agent exceeded its request rate; retry shortly".into(),
            });
        }
        Ok(())
    }

    /// [`Guardrails::note_auth_failure`] with the count and the block in the shared store,
    /// so that every node refuses the address once the installation saw too many.
    async fn note_auth_failure_shared(&self, ip: IpAddr) -> Result<bool, ServiceError> {
        use crate::store::keys;
        if !self.guardrails.auth_enabled {
            return Ok(false);
        }
        // The address as a keyed hash under the token pepper (which every node shares):
        // client addresses are personal data and stay out of the plaintext store; the
        // rows only need to be equal for one address.
        let raw = match address_key(ip) {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        let addr = hex::encode(self.keys.pepper.keyed_hash("sigil/auth-failure-address", &raw));
        let now = self.clock.now().as_second();
        let block_key = keys::auth_block(&addr);
        if let Some(until) = self.store.get(&block_key).await?.and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok()).map(i64::from_be_bytes)
        {
            if until > now {
                self.guardrails.block(ip, Instant::now() + Duration::from_secs((until - now).unsigned_abs()));
                return Ok(true);
            }
        }
        let window = now.div_euclid(keys::AUTH_FAILURE_WINDOW_SECS) * keys::AUTH_FAILURE_WINDOW_SECS;
        let key = keys::auth_failures(&addr, window);
        let mut count = 0;
        let mut counted = false;
        for _ in 0..8 {
            let cur = self.store.get(&key).await?;
            count = cur.as_deref().and_then(|b| <[u8; 4]>::try_from(b).ok()).map_or(0, u32::from_be_bytes).saturating_add(1);
            if self.compare_and_set_counter(key.clone(), cur, count.to_be_bytes().to_vec()).await? {
                counted = true;
                break;
            }
        }
        // Every attempt lost to other writers of the same counter: so many failures from
        // this address at once is itself the attack; fail closed (a security boundary).
        if counted && count <= self.guardrails.auth_window_limit {
            return Ok(false);
        }
        let until = now.saturating_add(AUTH_BLOCK.as_secs() as i64);
        let cur = self.store.get(&block_key).await?;
        // Whoever sets it first, the block is the same length: a lost race changes nothing.
        let _ = self.compare_and_set_counter(block_key, cur, until.to_be_bytes().to_vec()).await?;
        self.guardrails.block(ip, Instant::now() + AUTH_BLOCK);
        metrics::counter!("sigil_guardrail_triggers_total", "kind" => "auth_throttle").increment(1);
        Ok(true)
    }

    /// The agent's denials within `window` before `now`, with this one, in the shared
    /// store (compare-and-set); cleared when they reach `threshold`. Whether they did.
    async fn note_denial_shared(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        now: Timestamp,
        window: SignedDuration,
        threshold: usize,
    ) -> Result<bool, ServiceError> {
        let key = crate::store::keys::denials(tenant, agent);
        for _ in 0..16 {
            let cur = self.store.get(&key).await?;
            let mut times: VecDeque<i64> = cur
                .as_deref()
                .unwrap_or_default()
                .chunks_exact(8)
                .filter_map(|c| <[u8; 8]>::try_from(c).ok().map(i64::from_be_bytes))
                .collect();
            times.push_back(now.as_millisecond());
            let oldest = now.as_millisecond().saturating_sub(window.as_millis() as i64);
            while times.front().is_some_and(|t| *t <= oldest) {
                times.pop_front();
            }
            let trip = times.len() >= threshold;
            let next: Vec<u8> = if trip { Vec::new() } else { times.iter().flat_map(|t| t.to_be_bytes()).collect() };
            if self.compare_and_set_counter(key.clone(), cur, next).await? {
                return Ok(trip);
            }
            tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 4)).await;
        }
        Err(ServiceError::conflict(ErrorCode::WriteConflict, "the denial count is being updated concurrently; retry"))
    }

    /// Counts a denial; suspends the agent when the tenant's threshold is reached.
    pub(crate) async fn note_denial(&self, tenant: &TenantId, agent: &AgentId) -> Result<bool, ServiceError> {
        let s = self.guardrail_settings(tenant).await?;
        if s.denial_threshold == 0 {
            return Ok(false);
        }
        let now = self.clock.now();
        let window = SignedDuration::from_secs(s.denial_window_secs as i64);
        let trip = if self.store.shared() {
            self.note_denial_shared(tenant, agent, now, window, s.denial_threshold as usize).await?
        } else {
            let Ok(mut m) = self.guardrails.denials.lock() else { return Ok(false) };
            let q = m.entry((tenant.to_string(), agent.to_string())).or_default();
            q.push_back(now);
            while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
                q.pop_front();
            }
            let trip = q.len() >= s.denial_threshold as usize;
            if trip {
                q.clear();
            }
            trip
        };
        if trip {
            self.set_agent_suspended_as(tenant, agent, true, "system:guardrail".into()).await?;
            self.record(
                tenant,
                "system:guardrail".into(),
                Event::new("guardrail.auto_suspended", json!({"denials": s.denial_threshold, "window_secs": s.denial_window_secs}))
                    .agent(agent.as_str()),
            )
            .await?;
            metrics::counter!("sigil_guardrail_triggers_total", "kind" => "auto_suspend").increment(1);
            tracing::warn!(tenant = %tenant, agent = %agent, "agent suspended automatically after repeated denials");
        }
        Ok(trip)
    }

    /// Refuses a verification over the per-address rate (`/v1/verify` needs no token, so
    /// the address is all there is to limit).
    pub fn check_verify_rate(&self, ip: Option<IpAddr>) -> Result<(), ServiceError> {
        if ip.is_none_or(|ip| self.guardrails.allow_verify(ip)) {
            return Ok(());
        }
        metrics::counter!("sigil_guardrail_triggers_total", "kind" => "verify_rate").increment(1);
        Err(ServiceError::TooManyRequests {
            code: ErrorCode::RateLimited,
            detail: "too many verifications from this address; retry shortly".into(),
        })
    }

    /// Housekeeping on a shared store: deletes authentication-failure counts of past
    /// windows and blocks that ended (each only as read: a node counting meanwhile keeps
    /// its write). Returns how many.
    pub async fn purge_auth_counters(&self) -> Result<usize, ServiceError> {
        use crate::store::{Txn, keys};
        if !self.store.shared() {
            return Ok(0);
        }
        let now = self.clock.now().as_second();
        let mut txn = Txn::new();
        for (k, v) in self.store.scan(keys::AUTH_FAILURES_PREFIX, None, 10_000).await? {
            let window =
                k.rsplit(|b| *b == b'/').next().and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| i64::from_str_radix(h, 16).ok());
            if window.is_none_or(|w| w + keys::AUTH_FAILURE_WINDOW_SECS < now) {
                txn.require_equals(k.clone(), v).delete(k);
            }
        }
        for (k, v) in self.store.scan(keys::AUTH_BLOCK_PREFIX, None, 10_000).await? {
            if <[u8; 8]>::try_from(v.as_slice()).map(i64::from_be_bytes).is_ok_and(|until| until < now) {
                txn.require_equals(k.clone(), v).delete(k);
            }
        }
        let n = txn.ops.len();
        if n == 0 || !self.commit_unaudited(txn, crate::service::kernel::mutation::Effects::none()).await? {
            return Ok(0);
        }
        Ok(n)
    }

    /// Housekeeping: forget quiet addresses in the per-address limiters, and stale counters.
    pub fn prune_guardrails(&self) {
        self.guardrails.prune(self.clock.now());
    }

    /// Public access to the auth throttle for the HTTP edge.
    pub fn auth_blocked(&self, ip: IpAddr) -> bool {
        self.guardrails.auth_blocked(ip)
    }

    /// Counts a failed authentication from `ip` (and records it in the tenant named by the
    /// path, if any, until the address is throttled). Returns true when now throttled.
    pub async fn note_auth_failure(&self, ip: IpAddr, tenant: Option<&TenantId>, route: &str) -> bool {
        let throttled = if self.store.shared() {
            // The in-memory limiter stays the first gate on several nodes too: whatever
            // happens to the shared count, one node alone never lets more through than
            // it would on its own.
            let here = self.guardrails.note_auth_failure(ip);
            match self.note_auth_failure_shared(ip).await {
                Ok(t) => t || here,
                // The store is failing: the request fails anyway; counted here meanwhile.
                Err(e) => {
                    tracing::warn!(error = %e, "could not count an authentication failure in the store");
                    here
                }
            }
        } else {
            self.guardrails.note_auth_failure(ip)
        };
        metrics::counter!("sigil_auth_failures_total").increment(1);
        if let Some(t) = tenant.filter(|_| !throttled) {
            if self.store.get(&crate::store::keys::tenant_index(t)).await.ok().flatten().is_some() {
                let event = Event::new("auth.failed", json!({"route": route, "client": ip.to_string()}));
                if let Err(e) = self.record(t, "anonymous".into(), event).await {
                    tracing::warn!(error = %e, "could not audit an authentication failure");
                }
            }
        }
        throttled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn per_address_state_stays_bounded() {
        let max = 1_000;
        let g = Guardrails::bounded(1, 1, max);
        for i in 0..20_000u32 {
            let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            g.allow_verify(ip);
            g.note_auth_failure(ip);
            assert!(g.note_auth_failure(ip), "the second failure (burst 1) throttles");
            assert!(g.auth_blocked(ip));
        }
        let slack = BOUND_EVERY as usize;
        assert!(g.auth_failures.len() <= max + slack, "auth failures: {}", g.auth_failures.len());
        let verify = g.verify.as_ref().unwrap().len();
        assert!(verify <= max + slack, "verify: {verify}");
        assert!(g.blocked.lock().unwrap().len() <= max, "blocked: {}", g.blocked.lock().unwrap().len());
    }

    /// A cache invalidation (on several nodes: any change in the tenant, confirmed per
    /// request) must not hand an agent a fresh burst: CI saw four of five requests granted
    /// under a burst of three on PostgreSQL when forgetting dropped the limiter.
    #[test]
    fn forgetting_a_tenant_keeps_its_rate_limit_state() {
        let g = Guardrails::bounded(1, 1, 1_000);
        let tenant = TenantId::parse("acme").unwrap();
        let s = GuardrailSettings { rate_per_second: 1, burst: 3, ..GuardrailSettings::default() };
        let agent = "agent-1".to_owned();
        let guards = g.guards_for(&tenant, s.clone(), g.ticket());
        assert!((0..3).all(|_| guards.limiter.check_key(&agent).is_ok()), "the burst");
        assert!(guards.limiter.check_key(&agent).is_err(), "over the burst");
        // Forgotten while a load was under way (its ticket is stale), then loaded afresh.
        let stale = g.ticket();
        g.forget_tenant(&tenant);
        assert!(g.cached(&tenant).is_none(), "forgotten settings are read again");
        assert!(g.guards_for(&tenant, s.clone(), stale).limiter.check_key(&agent).is_err(), "a stale load");
        assert!(g.guards_for(&tenant, s.clone(), g.ticket()).limiter.check_key(&agent).is_err(), "a fresh load");
        // Changed settings start a new limiter; an idle forgotten tenant is pruned.
        let changed = GuardrailSettings { burst: 5, ..s };
        assert!(g.guards_for(&tenant, changed, g.ticket()).limiter.check_key(&agent).is_ok());
        g.forget_tenant(&tenant);
        g.tenants.read().unwrap().get("acme").unwrap().0.limiter.retain_recent();
        assert_eq!(g.tenants.read().unwrap().len(), 1, "its limiter still holds the agent");
    }

    #[test]
    fn ipv6_clients_are_limited_by_their_64() {
        let g = Guardrails::bounded(1, 1, 1_000);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(g.allow_verify(ip("2001:db8::1")));
        assert!(g.allow_verify(ip("2001:db8::2")));
        assert!(!g.allow_verify(ip("2001:db8::ffff:3")), "the same /64, over its burst of 2");
        assert!(g.allow_verify(ip("2001:db8:0:1::1")), "another /64");
        assert!(g.allow_verify(ip("::ffff:192.0.2.1")), "an IPv4-mapped address is its IPv4 address");
        assert!(g.allow_verify(ip("192.0.2.1")));
        assert!(!g.allow_verify(ip("192.0.2.1")));
    }
}
