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
