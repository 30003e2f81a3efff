"""Schemathesis hooks for scripts/fuzz-api (loaded via SCHEMATHESIS_HOOKS).

So that most generated requests reach real code rather than stopping at 401/404:
  * Authorization is chosen per operation: the operator (bootstrap) token for tenant management
    (tag `tenants`) and the system routes (`/v1/system/...`: root key, backup, operator token);
    the agent's token for the agent's own operations (tag `agent`: create_presentation,
    get_self); no token for operations without `security` (public documents, verification);
    the tenant admin token otherwise.
  * `{tenant}`, `{agent}`, `{credential}`, `{token}`, `{version}`, `{principal}` and `{list}`
    path parameters get ids that exist (created by scripts/fuzz-api, read from the JSON file
    named by $SIGIL_FUZZ_FIXTURES) in about 7 requests in 8; the rest keep the generated value,
    to exercise "not found". Operations that destroy or disable what they touch (delete a tenant
    or token; retire, suspend or re-token an agent, or mark its key compromised; revoke, suspend
    or replace a credential; revoke a principal's delegations) get ids of their own ("victims")
    and never the live ones, so the rest of the run keeps a working tenant, agent and delegation.
  * Verification bodies carry a real, signed presentation or credential (again ~7 in 8), so
    the fuzzed challenge, domain, action and options reach the cryptographic checks.
  * Bodies naming what only the server knows get it (~7 in 8): a VC-API issue request's
    credential gets the tenant's DID as issuer (its other generated fields are kept), and a
    root-key rotation gets a key file that exists on the server's disk.
  * `replace_credential` revokes the credential it replaces, so after each success the next
    requests replace the new one (otherwise every later case would stop at 409).
  * `rotate_operator_token` revokes the operator token it was called with, so after each
    success the run goes on with the new one. `revoke_operator_tokens` would leave the run
    without any (only `sigil operator-token rotate` on a stopped server issues another), so it
    is sent with the tenant admin token and answered 403.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import schemathesis

with open(os.environ["SIGIL_FUZZ_FIXTURES"], encoding="utf-8") as f:
    FIX: dict[str, Any] = json.load(f)

# Operations that destroy or disable what they touch: their path ids come from FIX["victims"]
# (each its own agent / credential / principal, so one does not starve another) and are never
# the live ones.
DESTRUCTIVE = {
    "delete_tenant", "delete_tenant_token",
    "retire_agent", "suspend_agent", "resume_agent", "rotate_agent_token", "mark_agent_key_compromised",
    "revoke_credential", "suspend_credential", "resume_credential", "replace_credential",
    "revoke_principal",
}
AGENT_OPERATIONS = {"create_presentation", "get_self"}
# Would end every operator token of the run: refused with a tenant token instead.
RUN_ENDING = {"revoke_operator_tokens"}
REAL_BODIES = {"verify_presentation", "vc_api_verify_presentation", "vc_api_verify_credential", "vc_api_issue_credential", "rotate_root_key"}


def _raw(operation) -> dict[str, Any]:
    return operation.definition.raw


def _operation_id(operation) -> str:
    return _raw(operation).get("operationId", "")


def token_for(operation) -> str | None:
    raw = _raw(operation)
    if not raw.get("security"):
        return None
    tags = set(raw.get("tags", []))
    if _operation_id(operation) in AGENT_OPERATIONS or "agent" in tags:
        return FIX["agent_token"]
    if _operation_id(operation) in RUN_ENDING:
        return FIX["admin_token"]
    if "tenants" in tags or operation.path.startswith("/v1/system/"):
        return FIX["operator_token"]
    return FIX["admin_token"]


def _keep_generated(value: Any) -> bool:
    """Deterministic in the generated value (so shrinking and replays behave): ~1 in 8."""
    return hashlib.sha256(repr(value).encode()).digest()[0] % 8 == 0


def real_path_parameters(operation_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """Generated path parameters -> the ids the request is sent with."""
    victims = FIX["victims"].get(operation_id, {})
    out = dict(params)
    if not _keep_generated(params):
        ids = {**FIX["ids"], **victims}
        out.update({name: ids[name] for name in out if name in ids})
    # Whatever was generated or learnt from earlier responses (Schemathesis reuses ids it saw),
    # destructive operations never touch the live tenant, agent, credentials, token or principal.
    if operation_id in DESTRUCTIVE:
        for name, value in out.items():
            if name in victims and value in FIX["protected"].get(name, ()):
                out[name] = victims[name]
    return out


def real_body(operation_id: str, body: Any) -> Any:
    """Puts a real signed presentation/credential into generated verification requests."""
    if not isinstance(body, dict) or _keep_generated(body):
        return body
    samples = FIX["samples"]
    body = dict(body)
    if operation_id == "verify_presentation":
        jwt = hashlib.sha256(repr(sorted(body)).encode()).digest()[1] % 3 == 0
        body["presentation"] = samples["jwt_vp" if jwt else "ldp_vp"]
    elif operation_id == "vc_api_verify_presentation":
        body["verifiablePresentation"] = samples["ldp_vp"]
    elif operation_id == "vc_api_verify_credential":
        body["verifiableCredential"] = samples["credential"]
    elif operation_id == "vc_api_issue_credential":
        credential = dict(body["credential"]) if isinstance(body.get("credential"), dict) else {}
        credential.update({
            "@context": ["https://www.w3.org/ns/credentials/v2"],
            "type": ["VerifiableCredential"],
            "issuer": FIX["tenant_did"],
            "credentialSubject": {"id": FIX["agent_did"], "memberOf": "Fuzz Co"},
        })
        credential.pop("proof", None)
        body["credential"] = credential
    elif operation_id == "rotate_root_key":
        body["new_root_key_file"] = FIX["root_key_file"]
    return body


@schemathesis.hook
def before_call(ctx, case, kwargs) -> None:
    # Done here rather than in map_* hooks: this runs for every phase (examples, coverage,
    # fuzzing) and also sees ids that Schemathesis learnt from earlier responses.
    if case.path_parameters:
        case.path_parameters = real_path_parameters(_operation_id(case.operation), case.path_parameters)
    if _operation_id(case.operation) in REAL_BODIES:
        case.body = real_body(_operation_id(case.operation), case.body)
    token = token_for(case.operation)
    headers = dict(case.headers or {})
    # Replace whatever was generated for the security scheme with the right credential.
    for name in [h for h in headers if h.lower() == "authorization"]:
        del headers[name]
    if token:
        headers["Authorization"] = f"Bearer {token}"
    case.headers = headers


@schemathesis.hook
def after_call(ctx, case, response) -> None:
    # The replaced credential is revoked; the one issued in its place is the next victim.
    if _operation_id(case.operation) == "replace_credential" and response.status_code == 201:
        new_id = response.json().get("id")
        if isinstance(new_id, str):
            FIX["victims"]["replace_credential"]["credential"] = new_id
    # The operator token the request used is revoked; the run goes on with the new one.
    if _operation_id(case.operation) == "rotate_operator_token" and response.status_code == 201:
        token = response.json().get("token")
        if isinstance(token, str):
            FIX["operator_token"] = token
