//! Guardrails at run time: per-agent rate limits, throttling of repeated authentication
//! failures per client address, the `/v1/verify` rate, and automatic suspension of an agent
//! after too many denials in a window. Counters live in memory: they protect one process;
//! limits are per node when several run.
//!
//! Must never: grow without bound (maps are pruned), or persist anything but a suspension.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::num::NonZeroU32;
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

/// In-memory guardrail state.
pub struct Guardrails {
    auth_enabled: bool,
    tenants: RwLock<HashMap<String, Arc<TenantGuards>>>,
    denials: Mutex<HashMap<(String, String), VecDeque<Timestamp>>>,
    auth_failures: DefaultKeyedRateLimiter<IpAddr>,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    /// `/v1/verify` per client address; `None` when disabled.
    verify: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

/// Authentication failures allowed per address: bursts of 20, then one every 3 s.
const AUTH_BURST: u32 = 20;

const AUTH_BLOCK: Duration = Duration::from_secs(60);

impl Default for Guardrails {
    fn default() -> Self {
        Self::new(AUTH_BURST, 100)
    }
}

impl Guardrails {
    /// Guardrails allowing `auth_burst` failed authentications per address (0 disables),
    /// and `verify_rate` verifications per second per address, bursts of twice that (0
    /// disables).
    pub fn new(auth_burst: u32, verify_rate: u32) -> Self {
        let quota = Quota::with_period(Duration::from_secs(3)).map(|q| q.allow_burst(nz(auth_burst)));
        let verify = (verify_rate > 0)
            .then(|| DefaultKeyedRateLimiter::keyed(Quota::per_second(nz(verify_rate)).allow_burst(nz(verify_rate.saturating_mul(2)))));
        Self {
            verify,
            auth_enabled: auth_burst > 0,
            tenants: RwLock::new(HashMap::new()),
            denials: Mutex::new(HashMap::new()),
            auth_failures: DefaultKeyedRateLimiter::keyed(quota.unwrap_or_else(|| Quota::per_second(nz(1)))),
            blocked: Mutex::new(HashMap::new()),
        }
    }
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

impl Guardrails {
    fn guards_for(&self, tenant: &TenantId, settings: impl FnOnce() -> GuardrailSettings) -> Arc<TenantGuards> {
        if let Some(g) = self.tenants.read().ok().and_then(|m| m.get(tenant.as_str()).cloned()) {
            return g;
        }
        let s = settings();
        let g = Arc::new(TenantGuards {
            limiter: DefaultKeyedRateLimiter::keyed(Quota::per_second(nz(s.rate_per_second)).allow_burst(nz(s.burst))),
            settings: s,
        });
        if let Ok(mut m) = self.tenants.write() {
            m.insert(tenant.to_string(), g.clone());
        }
        g
    }

    pub(crate) fn forget_tenant(&self, tenant: &TenantId) {
        if let Ok(mut m) = self.tenants.write() {
            m.remove(tenant.as_str());
        }
    }

    /// True when `ip` is currently refused for repeated authentication failures.
    pub fn auth_blocked(&self, ip: IpAddr) -> bool {
        let Ok(mut b) = self.blocked.lock() else { return false };
        match b.get(&ip) {
            Some(until) if Instant::now() < *until => true,
            Some(_) => {
                b.remove(&ip);
                false
            }
            None => false,
        }
    }

    /// Counts one verification from `ip`; false when the address is over its rate.
    pub fn allow_verify(&self, ip: IpAddr) -> bool {
        self.verify.as_ref().is_none_or(|l| l.check_key(&ip).is_ok())
    }

    /// Forgets limiter state for addresses that have been quiet (housekeeping), so the
    /// per-address maps do not grow with every address ever seen.
    pub fn prune(&self) {
        self.auth_failures.retain_recent();
        if let Some(v) = &self.verify {
            v.retain_recent();
        }
        if let Ok(mut b) = self.blocked.lock() {
            b.retain(|_, until| Instant::now() < *until);
        }
    }

    /// Counts one failed authentication; returns true when `ip` is now throttled.
    pub fn note_auth_failure(&self, ip: IpAddr) -> bool {
        if !self.auth_enabled || self.auth_failures.check_key(&ip).is_ok() {
            return false;
        }
        if let Ok(mut b) = self.blocked.lock() {
            if b.len() > 100_000 {
                b.retain(|_, until| Instant::now() < *until);
            }
            b.insert(ip, Instant::now() + AUTH_BLOCK);
        }
        metrics::counter!("sigil_guardrail_triggers_total", "kind" => "auth_throttle").increment(1);
        true
    }
}

impl Sigil {
    async fn guards(&self, tenant: &TenantId) -> Result<Arc<TenantGuards>, ServiceError> {
        if let Some(g) = self.guardrails.tenants.read().ok().and_then(|m| m.get(tenant.as_str()).cloned()) {
            return Ok(g);
        }
        let settings = self.tenant_record(tenant).await?.guardrails.unwrap_or_default();
        Ok(self.guardrails.guards_for(tenant, || settings))
    }

    /// The tenant's guardrail settings (cached).
    pub(crate) async fn guardrail_settings(&self, tenant: &TenantId) -> Result<GuardrailSettings, ServiceError> {
        Ok(self.guards(tenant).await?.settings.clone())
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

    /// Counts a denial; suspends the agent when the tenant's threshold is reached.
    pub(crate) async fn note_denial(&self, tenant: &TenantId, agent: &AgentId) -> Result<bool, ServiceError> {
        let s = self.guardrail_settings(tenant).await?;
        if s.denial_threshold == 0 {
            return Ok(false);
        }
        let now = self.clock.now();
        let window = SignedDuration::from_secs(s.denial_window_secs as i64);
        let trip = {
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

    /// Housekeeping: forget quiet addresses in the per-address limiters.
    pub fn prune_guardrails(&self) {
        self.guardrails.prune();
    }

    /// Public access to the auth throttle for the HTTP edge.
    pub fn auth_blocked(&self, ip: IpAddr) -> bool {
        self.guardrails.auth_blocked(ip)
    }

    /// Counts a failed authentication from `ip` (and records it in the tenant named by the
    /// path, if any, until the address is throttled). Returns true when now throttled.
    pub async fn note_auth_failure(&self, ip: IpAddr, tenant: Option<&TenantId>, route: &str) -> bool {
        let throttled = self.guardrails.note_auth_failure(ip);
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
