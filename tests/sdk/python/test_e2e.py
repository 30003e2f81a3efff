"""End-to-end: a real `sigil serve` driven only through the generated Python SDK (`sigil_client`).

The lifecycle a customer goes through: tenant -> agent -> delegation -> presentation -> verify,
a denied action, key rotation, revocation, suspension and retirement of the agent.
Every call, model and error below is generated code; no raw HTTP.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sigil_client
from sigil_client import (
    AgentState,
    ApprovalRequested,
    ApprovalRule,
    ApprovalThreshold,
    CreateTokenRequest,
    PresentationResponse,
    TenantTokenRole,
    CreateAgentRequest,
    CreateDelegationRequest,
    CreatePresentationRequest,
    CredentialKind,
    ExpectedAction,
    PresentationFormat,
    KeyState,
    Limits,
    AmountLimit,
    Principal,
    PrincipalKind,
    Problem,
    VerifyRequest,
)
from sigil_client.exceptions import ApiException

from conftest import Sdk, Tenant

DOMAIN = "payments.example"
ACTION = "refunds:create"
AMOUNT = {"amount": "120.00", "currency": "EUR"}


# --- helpers (all through the SDK) -------------------------------------------------------------


def challenge() -> str:
    return "ch-" + uuid.uuid4().hex


def new_agent(tenant, sdk_for, name="refund-bot"):
    """Creates an agent with one delegation (refunds:create on orders/*, <= 500 EUR)."""
    agent = tenant.admin.create_agent(
        tenant.id,
        CreateAgentRequest(name=name, operator="Acme Payments", software="refund-bot/1.2", metadata={"team": "payments"}),
    )
    assert agent.did.endswith(f":tenants:{tenant.id}:agents:{agent.id}")
    assert agent.access_token and agent.identity_credential_id
    valid_until = (datetime.now(timezone.utc) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    delegation = tenant.admin.create_delegation(
        tenant.id,
        agent.id,
        CreateDelegationRequest(
            principal=Principal(id="alice@acme.example", kind=PrincipalKind.PERSON, name="Alice"),
            actions=[ACTION],
            resources=["orders/*"],
            limits=Limits(amount=AmountLimit(max="500.00", currency="EUR")),
            valid_until=valid_until,
        ),
    )
    return agent, delegation, sdk_for(agent.access_token)


def present(bot, ch, *, action=ACTION, resource="orders/123", context=AMOUNT, fmt=None):
    return bot.create_presentation(
        CreatePresentationRequest(action=action, resource=resource, context=context, challenge=ch, domain=DOMAIN, format=fmt)
    )


def verify(public, presentation, ch):
    """One verification (challenges are one-time: verify each presentation once)."""
    return public.verify_presentation(
        VerifyRequest(
            presentation=presentation,
            challenge=ch,
            domain=DOMAIN,
            action=ExpectedAction(action=ACTION, resource="orders/123", context=AMOUNT),
        )
    )


def vp(pres):
    """The presentation itself: a dict (ldp_vp) or a compact JWS str (jwt_vp). Unwraps the
    generated oneOf holder class should the schema type it as `object | string`."""
    return getattr(pres.presentation, "actual_instance", pres.presentation)


def failed(result):
    return {(c.check, c.code) for c in result.checks if not c.ok}


def problem(excinfo, status: int) -> Problem:
    """The RFC 9457 body the SDK deserialised from an error response."""
    err = excinfo.value
    assert err.status == status, f"expected HTTP {status}, got {err.status}: {err.body}"
    assert err.headers and err.headers.get("content-type", "").startswith("application/problem+json")
    assert isinstance(err.data, Problem), f"problem body not deserialised by the SDK: {err.body}"
    assert err.data.status == status and err.data.type == f"urn:sigil:problem:{err.data.code}"
    return err.data


# --- tests -------------------------------------------------------------------------------------


def test_service_is_ready(public):
    assert public.healthz().status == "ok"
    assert public.readyz().status == "ready"


def test_allowed_action_presentation_verifies_once(tenant, sdk_for, public):
    agent, delegation, bot = new_agent(tenant, sdk_for)
    assert delegation.kind == CredentialKind.DELEGATION
    assert delegation.status == "active"
    assert delegation.actions == [ACTION] and delegation.principal.id == "alice@acme.example"
    assert "proof" in delegation.credential

    me = bot.get_self()
    assert (me.id, me.did, me.state) == (agent.id, agent.did, AgentState.ACTIVE)
    assert set(me.credential_ids) == {agent.identity_credential_id, delegation.id}

    ch = challenge()
    pres = present(bot, ch)
    assert pres.format == PresentationFormat.LDP_VP
    assert set(pres.credential_ids) == {agent.identity_credential_id, delegation.id}
    assert vp(pres)["holder"] == agent.did
    assert vp(pres)["proof"]["challenge"] == ch
    assert vp(pres)["proof"]["verificationMethod"] == f"{agent.did}#key-1"

    result = verify(public, pres.presentation, ch)
    assert result.verified, failed(result)
    assert result.errors == []
    assert result.holder == agent.did
    assert all(c.ok for c in result.checks)
    assert {"proof", "challenge", "domain", "authority", "replay"} <= {c.check for c in result.checks}

    replay = verify(public, pres.presentation, ch)
    assert not replay.verified
    assert ("replay", "replayed") in failed(replay)


def test_denied_actions_carry_problem_codes(tenant, sdk_for):
    _, _, bot = new_agent(tenant, sdk_for)
    with pytest.raises(sigil_client.exceptions.ForbiddenException) as e:
        present(bot, challenge(), action="refunds:delete")
    assert problem(e, 403).code == "action_not_allowed"

    with pytest.raises(sigil_client.exceptions.ForbiddenException) as e:
        present(bot, challenge(), context={"amount": "900.00", "currency": "EUR"})
    assert problem(e, 403).code == "amount_exceeds_limit"

    with pytest.raises(sigil_client.exceptions.ForbiddenException) as e:
        present(bot, challenge(), resource="invoices/9")
    assert problem(e, 403).code == "resource_not_allowed"


def test_unauthenticated_call_is_a_problem(sdk_for, tenant):
    stranger = sdk_for("sgl_" + "x" * 43)
    with pytest.raises(sigil_client.exceptions.UnauthorizedException) as e:
        stranger.list_agents(tenant.id)
    assert problem(e, 401).code == "not_authenticated"


def test_jwt_vp_presentation_verifies(tenant, sdk_for, public):
    agent, _, bot = new_agent(tenant, sdk_for)
    ch = challenge()
    pres = present(bot, ch, fmt=PresentationFormat.JWT_VP)
    assert pres.format == PresentationFormat.JWT_VP
    assert isinstance(vp(pres), str) and vp(pres).count(".") == 2  # compact JWS
    result = verify(public, pres.presentation, ch)
    assert result.verified, failed(result)
    assert result.holder == agent.did


def test_key_rotation_keeps_earlier_presentations_valid(tenant, sdk_for, public):
    agent, _, bot = new_agent(tenant, sdk_for)
    ch_before = challenge()
    before = present(bot, ch_before)
    assert vp(before)["proof"]["verificationMethod"] == f"{agent.did}#key-1"

    rotated = tenant.admin.rotate_agent_key(tenant.id, agent.id)
    assert rotated.current_version == 2

    listed = tenant.admin.list_agent_keys(tenant.id, agent.id)
    assert listed.current_version == 2
    keys = {k.version: k for k in listed.items}
    assert set(keys) == {1, 2}
    assert keys[2].state == KeyState.ACTIVE
    assert keys[1].public_key_multibase != keys[2].public_key_multibase
    record = tenant.admin.get_agent(tenant.id, agent.id)
    assert record.current_key_version == 2
    assert f"{agent.did}#key-2" in {k.id for k in record.keys}
    did_doc = json.dumps(public.get_agent_did(tenant.id, agent.id))
    assert f"{agent.did}#key-1" in did_doc and f"{agent.did}#key-2" in did_doc

    # Signed with key-1 before the rotation: still verifies until it expires.
    old = verify(public, before.presentation, ch_before)
    assert old.verified, failed(old)

    ch_after = challenge()
    after = present(bot, ch_after)
    assert vp(after)["proof"]["verificationMethod"] == f"{agent.did}#key-2"
    new = verify(public, after.presentation, ch_after)
    assert new.verified, failed(new)


def test_revoked_delegation(tenant, sdk_for, public):
    agent, delegation, bot = new_agent(tenant, sdk_for)
    ch_early = challenge()
    early = present(bot, ch_early)

    summary = tenant.admin.revoke_credential(tenant.id, delegation.id)
    assert (summary.id, summary.status) == (delegation.id, "revoked")
    assert tenant.admin.get_credential(tenant.id, delegation.id).status == "revoked"

    with pytest.raises(sigil_client.exceptions.ForbiddenException) as e:
        present(bot, challenge())
    assert problem(e, 403).code == "credential_revoked"

    # A presentation made before the revocation no longer verifies: the status list says revoked.
    result = verify(public, early.presentation, ch_early)
    assert not result.verified
    bad = failed(result)
    assert any(check.endswith("status:revocation") for check, _ in bad), bad
    assert result.errors


def test_suspended_agent_cannot_present_until_resumed(tenant, sdk_for, public):
    agent, _, bot = new_agent(tenant, sdk_for)
    tenant.admin.suspend_agent(tenant.id, agent.id)
    assert tenant.admin.get_agent(tenant.id, agent.id).state == AgentState.SUSPENDED
    with pytest.raises(ApiException) as e:
        present(bot, challenge())
    assert problem(e, 403).code == "agent_suspended"

    tenant.admin.resume_agent(tenant.id, agent.id)
    assert tenant.admin.get_agent(tenant.id, agent.id).state == AgentState.ACTIVE
    ch = challenge()
    result = verify(public, present(bot, ch).presentation, ch)
    assert result.verified, failed(result)


def test_retired_agent(tenant, sdk_for, public):
    agent, _, bot = new_agent(tenant, sdk_for)
    ch_early = challenge()
    early = present(bot, ch_early)
    assert isinstance(public.get_agent_did(tenant.id, agent.id), dict)

    tenant.admin.retire_agent(tenant.id, agent.id)
    assert tenant.admin.get_agent(tenant.id, agent.id).state == AgentState.RETIRED

    with pytest.raises(ApiException) as e:
        public.get_agent_did(tenant.id, agent.id)
    assert e.value.status == 410, e.value.body

    # Retiring deletes the agent's tokens: it is no longer anyone (401), not a refused agent.
    with pytest.raises(sigil_client.exceptions.UnauthorizedException) as e:
        present(bot, challenge())
    assert problem(e, 401).code == "not_authenticated"

    # Its DID no longer resolves, so what it signed before no longer verifies.
    result = verify(public, early.presentation, ch_early)
    assert not result.verified
    assert result.errors


# --- human approval (step-up) ------------------------------------------------------------------

BIG = {"amount": "250.00", "currency": "EUR"}


def stepped_agent(tenant, sdk_for, principal="alice@acme.example"):
    """An agent whose delegation needs a human's approval for refunds above 200.00 EUR."""
    agent = tenant.admin.create_agent(tenant.id, CreateAgentRequest(name="stepped-bot"))
    valid_until = "2099-01-01T00:00:00Z"
    tenant.admin.create_delegation(
        tenant.id,
        agent.id,
        CreateDelegationRequest(
            principal=Principal(id=principal, kind=PrincipalKind.PERSON),
            actions=[ACTION],
            resources=["orders/*"],
            limits=Limits(amount=AmountLimit(max="1000.00", currency="EUR")),
            approval=ApprovalRule(actions=[ACTION], above=ApprovalThreshold(amount="200.00", currency="EUR")),
            valid_until=valid_until,
        ),
    )
    return agent, sdk_for(agent.access_token)


def approver_for(tenant, sdk_for, principals=None):
    created = tenant.admin.create_tenant_token(
        tenant.id, CreateTokenRequest(role=TenantTokenRole.APPROVER, principals=principals)
    )
    assert created.role == TenantTokenRole.APPROVER
    return sdk_for(created.token)


def test_approval_flow_request_202_approve_presentation_verified(tenant, sdk_for, public):
    agent, bot = stepped_agent(tenant, sdk_for)
    approver = approver_for(tenant, sdk_for)

    asked = present(bot, challenge(), context=BIG)
    assert isinstance(asked, ApprovalRequested), asked  # the 202 body, typed by the SDK
    a = asked.approval
    assert (a.status, a.action, a.amount, a.agent_id) == ("pending", ACTION, "250.00", agent.id)
    assert a.expires_at
    assert bot.approval_status(a.id).status == "pending"
    pending = approver.list_approvals(tenant.id, status="pending")
    assert a.id in {x.id for x in pending.items}

    decided = approver.approve_approval(tenant.id, a.id)
    assert decided.status == "approved" and decided.decided_by.startswith("token:")

    # The next identical request, under a fresh challenge: the presentation, carrying the approval.
    ch = challenge()
    pres = present(bot, ch, context=BIG)
    assert isinstance(pres, PresentationResponse), pres
    types = [t for c in vp(pres)["verifiableCredential"] for t in c["type"]]
    assert "SigilApprovalCredential" in types
    result = public.verify_presentation(VerifyRequest(presentation=pres.presentation, challenge=ch, domain=DOMAIN))
    assert result.verified, failed(result)
    assert result.approval["approver"] == decided.decided_by
    assert "approval" in {c.check for c in result.checks}

    # Single use: the same request again asks anew.
    again = present(bot, challenge(), context=BIG)
    assert isinstance(again, ApprovalRequested) and again.approval.id != a.id
    assert bot.approval_status(a.id).status == "used"


def test_approval_denial_and_self_approval_are_refused(tenant, sdk_for):
    _, bot = stepped_agent(tenant, sdk_for)
    approver = approver_for(tenant, sdk_for)
    other = approver_for(tenant, sdk_for, principals=["bob@acme.example"])
    a = present(bot, challenge(), context=BIG).approval

    # The agent itself never approves.
    with pytest.raises(sigil_client.exceptions.ForbiddenException) as e:
        bot.approve_approval(tenant.id, a.id)
    assert problem(e, 403).code == "not_authorized"
    # An approver scoped to another principal neither.
    with pytest.raises(sigil_client.exceptions.ForbiddenException) as e:
        other.approve_approval(tenant.id, a.id)
    assert problem(e, 403).code == "approval_out_of_scope"

    assert approver.deny_approval(tenant.id, a.id).status == "denied"
    with pytest.raises(sigil_client.exceptions.ConflictException) as e:
        approver.approve_approval(tenant.id, a.id)
    assert problem(e, 409).code == "approval_decided"
    with pytest.raises(sigil_client.exceptions.ForbiddenException) as e:
        present(bot, challenge(), context=BIG)
    assert problem(e, 403).code == "approval_denied"


def test_an_expired_approval_is_refused(clocked):
    server, clock = clocked
    operator = Sdk(server, server.bootstrap_token)
    tid = "exp-" + uuid.uuid4().hex[:8]
    created = operator.create_tenant(sigil_client.CreateTenantRequest(id=tid, name="expiry"))
    tenant = Tenant(id=tid, did=created.did, admin=Sdk(server, created.admin_token))
    _, bot = stepped_agent(tenant, lambda t: Sdk(server, t))
    approver = approver_for(tenant, lambda t: Sdk(server, t))
    a = present(bot, challenge(), context=BIG).approval
    clock.set("2026-06-03T12:16:00Z")  # past the default 15 minutes
    with pytest.raises(ApiException) as e:
        approver.approve_approval(tid, a.id)
    assert problem(e, 410).code == "approval_expired"
    assert bot.approval_status(a.id).status == "expired"
