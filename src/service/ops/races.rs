//! Deterministic race tests for the one mutation path and its caches, in-process on real
//! sled. A request that read the store before a change committed is paused just before it
//! fills its cache (test-only pause points, [`crate::service::kernel::cache::pause`]); the change runs to
//! its response; the paused request is released. The rule under test: the change is
//! effective for every request that starts after its response.

use std::sync::Arc;

use serde_json::Map;

use crate::ids::TenantId;
use crate::policy::{Authority, Principal, PrincipalKind};
use crate::service::Sigil;
use crate::service::kernel::cache::pause;
use crate::service::model::records::TokenRole;
use crate::service::ops::agents::NewAgent;
use crate::service::ops::credentials::{NewDelegation, StatusChange};
use crate::service::ops::presentations::{Format, PresentationRequest};
use crate::service::{Caller, ServiceError, testing};

struct World {
    s: Arc<Sigil>,
    tenant: TenantId,
    admin: Caller,
    admin_token: String,
    agent: crate::ids::AgentId,
    agent_token: String,
    delegation: String,
    _dir: tempfile::TempDir,
}

async fn world(tenant: &str) -> World {
    let dir = tempfile::tempdir().unwrap();
    let s = testing::sigil(dir.path());
    let t = s.create_tenant(&testing::operator(), Some(tenant), "Race").await.unwrap();
    let admin_token = t.admin_token.reveal_once();
    let admin = s.authenticate(&admin_token).await.unwrap();
    let a = s.create_agent(&admin, &t.id, NewAgent { name: "bot".into(), ..Default::default() }).await.unwrap();
    let authority = Authority::new(&["refunds:create".into()], &["**".into()], Default::default(), None).unwrap();
    let new = NewDelegation {
        principal: Principal::new("alice".into(), PrincipalKind::Person, None).unwrap(),
        authority,
        valid_from: None,
        valid_until: s.now() + jiff::SignedDuration::from_hours(24),
    };
    let d = s.issue_delegation(&admin, &t.id, &a.id, new).await.unwrap();
    World { admin_token, admin, agent_token: a.access_token.reveal_once(), agent: a.id, tenant: t.id, delegation: d.id, s, _dir: dir }
}

fn request(challenge: &str) -> PresentationRequest {
    PresentationRequest {
        action: "refunds:create".into(),
        resource: Some("orders/1".into()),
        context: Map::new(),
        challenge: challenge.into(),
        domain: "shop.example".into(),
        format: Format::LdpVp,
        expires_in: Some(60),
    }
}

/// Runs `reader` until it stops at `point` (after reading the store, before its cache fill),
/// runs `change` to completion, then lets the reader finish.
async fn race<R, C>(scope: &str, point: &'static str, reader: R, change: C)
where
    R: std::future::Future + Send + 'static,
    R::Output: Send,
    C: std::future::Future<Output = ()>,
{
    let armed = pause::arm(point, scope);
    let paused = tokio::spawn(reader);
    armed.arrived.notified().await;
    change.await;
    armed.release.notify_one();
    paused.await.unwrap();
}

#[tokio::test]
async fn a_replaced_agent_token_stops_working_for_every_later_request() {
    let w = world("race-token-rotate").await;
    let (s, old) = (w.s.clone(), w.agent_token.clone());
    race(w.tenant.as_str(), "auth.fill", async move { s.authenticate(&old).await.map(|_| ()) }, async {
        w.s.rotate_agent_token(&w.admin, &w.tenant, &w.agent, None, None).await.unwrap();
    })
    .await;
    assert!(matches!(w.s.authenticate(&w.agent_token).await, Err(ServiceError::Unauthenticated)));
}

#[tokio::test]
async fn a_deleted_auditor_token_stops_working_for_every_later_request() {
    let w = world("race-token-delete").await;
    let created = w.s.create_tenant_token(&w.admin, &w.tenant, TokenRole::Auditor, None).await.unwrap();
    let token = created.token.reveal_once();
    let (s, t) = (w.s.clone(), token.clone());
    race(w.tenant.as_str(), "auth.fill", async move { s.authenticate(&t).await.map(|_| ()) }, async {
        w.s.delete_tenant_token(&w.admin, &w.tenant, &created.id).await.unwrap();
    })
    .await;
    assert!(matches!(w.s.authenticate(&token).await, Err(ServiceError::Unauthenticated)));
}

#[tokio::test]
async fn a_rotated_operator_token_stops_working_for_every_later_request() {
    let dir = tempfile::tempdir().unwrap();
    let s = testing::sigil(dir.path());
    let old = s.rotate_operator_token(&testing::operator()).await.unwrap().token.reveal_once();
    let (reader, t) = (s.clone(), old.clone());
    race("_op", "auth.fill", async move { reader.authenticate(&t).await.map(|_| ()) }, async {
        s.rotate_operator_token(&testing::operator()).await.unwrap();
    })
    .await;
    assert!(matches!(s.authenticate(&old).await, Err(ServiceError::Unauthenticated)));
}

#[tokio::test]
async fn a_deleted_tenants_admin_token_does_not_control_a_tenant_recreated_with_its_id() {
    let w = world("race-tenant-delete").await;
    let (s, t) = (w.s.clone(), w.admin_token.clone());
    // The admin token was used once above (cached); a second reader misses after eviction.
    w.s.auth_cache.evict(|_| true);
    race(w.tenant.as_str(), "auth.fill", async move { s.authenticate(&t).await.map(|_| ()) }, async {
        w.s.delete_tenant(&testing::operator(), &w.tenant).await.unwrap();
    })
    .await;
    w.s.create_tenant(&testing::operator(), Some(w.tenant.as_str()), "Again").await.unwrap();
    assert!(matches!(w.s.authenticate(&w.admin_token).await, Err(ServiceError::Unauthenticated)));
}

/// The presentation a request that starts after `change`'s response gets.
async fn present_after(w: &World) -> Result<(), ServiceError> {
    let agent = w.s.authenticate(&w.agent_token).await?;
    w.s.present(&agent, request("after")).await.map(|_| ())
}

async fn wallet_race(w: &World, change: impl std::future::Future<Output = ()>) {
    let s = w.s.clone();
    let agent = w.s.authenticate(&w.agent_token).await.unwrap();
    race(w.tenant.as_str(), "wallet.fill", async move { s.present(&agent, request("before")).await.map(|_| ()) }, change).await;
}

fn code(r: Result<(), ServiceError>) -> String {
    match r {
        Ok(()) => "granted".into(),
        Err(ServiceError::Forbidden { code, .. }) => code.as_str().to_owned(),
        Err(e) => format!("{e:?}"),
    }
}

#[tokio::test]
async fn a_revoked_delegation_stops_signing_for_every_later_request() {
    let w = world("race-revoke").await;
    wallet_race(&w, async {
        w.s.change_credential_status(&w.admin, &w.tenant, &w.delegation, StatusChange::Revoke).await.unwrap();
    })
    .await;
    assert_eq!(code(present_after(&w).await), "credential_revoked");
}

#[tokio::test]
async fn a_revoked_principal_stops_signing_for_every_later_request() {
    let w = world("race-principal").await;
    wallet_race(&w, async {
        assert_eq!(w.s.revoke_principal(&w.admin, &w.tenant, "alice").await.unwrap().len(), 1);
    })
    .await;
    assert_eq!(code(present_after(&w).await), "credential_revoked");
}

/// Suspension takes the agent's write lock, which a presentation holds while it loads the
/// wallet, so the wallet cannot race it. The status list can: a list signed from bits read
/// before the suspension committed must not be served (or trusted by `/v1/verify`) after.
#[tokio::test]
async fn a_suspended_agents_credentials_fail_verification_for_every_later_request() {
    let w = world("race-suspend").await;
    let agent = w.s.authenticate(&w.agent_token).await.unwrap();
    let vp = w.s.present(&agent, request("made-before")).await.unwrap().document();
    let s = w.s.clone();
    let t = w.tenant.clone();
    race(w.tenant.as_str(), "status.fill", async move { s.status_list_credential(&t, "s1").await.map(|_| ()) }, async {
        w.s.set_agent_suspended(&w.admin, &w.tenant, &w.agent, true).await.unwrap();
    })
    .await;
    assert_eq!(code(present_after(&w).await), "agent_suspended");
    let expect =
        crate::service::Expectation { challenge: Some("made-before".into()), domain: Some("shop.example".into()), ..Default::default() };
    let r = w.s.verify_presentation(&vp, expect).await.unwrap();
    assert!(r.report.codes().contains(&"suspended"), "{:?}", r.report.errors());
}
