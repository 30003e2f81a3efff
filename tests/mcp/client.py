"""Drives Sigil's MCP server with the official MCP Python SDK (`mcp`, pinned in
tests/mcp/requirements.txt) and prints what it saw as one JSON object for the Rust
integration test (tests/api/mcp.rs) to judge. It asserts nothing itself.

  client.py --transport http  --url https://127.0.0.1:PORT --ca CA --token-file F [--mode auto|legacy]
  client.py --transport stdio --url ... --ca CA --token-file F --sigil BIN
      (launches `BIN mcp --url ... --token-file F --ca CA` and talks to it over stdio)

Steps (each optional via --steps): list tools, request a granted presentation (refund of
120.00 EUR on orders/123), request a denied one (refunds:approve), verify the granted one,
ask my_authority; or (`request_approval`, `approval_status` with --approval-id) the
human-approval tools. The token is read from a file, never passed on a command line.
"""

import argparse
import asyncio
import json
import ssl
import sys

import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client


def leaves(e):
    """The exceptions inside (nested) exception groups, for a readable report."""
    if isinstance(e, BaseExceptionGroup):
        return [x for sub in e.exceptions for x in leaves(sub)]
    return [e]


def describe(x):
    err = getattr(x, "error", None)  # an MCPError carries the JSON-RPC error
    if err is not None:
        return f"{type(x).__name__}: {getattr(err, 'code', '?')} {getattr(err, 'message', x)} {getattr(err, 'data', '')}"
    return f"{type(x).__name__}: {x}"


def result(r):
    return {"is_error": bool(r.is_error), "structured": r.structured_content,
            "text": [c.text for c in r.content if getattr(c, "type", "") == "text"]}


async def run(a) -> dict:
    steps = a.steps.split(",")
    if a.transport == "http":
        token = open(a.token_file).read().strip()
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"},
                                  verify=ssl.create_default_context(cafile=a.ca), timeout=30)
        server = streamable_http_client(a.url.rstrip("/") + "/mcp", http_client=http)
    else:
        server = StdioServerParameters(command=a.sigil, args=["mcp", "--url", a.url, "--token-file", a.token_file, "--ca", a.ca])
    out = {}
    try:
        async with Client(server, mode=a.mode, cache=None) as c:
            out["protocol_version"] = c.protocol_version
            if "list" in steps:
                tools = await c.list_tools()
                out["tools"] = {t.name: {"description": t.description, "input_schema": t.input_schema} for t in tools.tools}
            if "granted" in steps:
                out["granted"] = result(await c.call_tool("request_presentation", {
                    "action": "refunds:create", "resource": "orders/123",
                    "context": {"amount": "120.00", "currency": "EUR"},
                    "challenge": a.challenge, "domain": "payments.example"}))
            if "denied" in steps:
                out["denied"] = result(await c.call_tool("request_presentation", {
                    "action": "refunds:approve", "resource": "orders/123",
                    "challenge": a.challenge + "-denied", "domain": "payments.example"}))
            if "verify" in steps and out.get("granted", {}).get("structured"):
                out["verified"] = result(await c.call_tool("verify_presentation", {
                    "presentation": out["granted"]["structured"]["presentation"],
                    "challenge": a.challenge, "domain": "payments.example",
                    "action": {"action": "refunds:create", "resource": "orders/123",
                               "context": {"amount": "120.00", "currency": "EUR"}}}))
            if "authority" in steps:
                out["authority"] = result(await c.call_tool("my_authority", {}))
            if "request_approval" in steps:
                out["request_approval"] = result(await c.call_tool("request_approval", {
                    "action": "refunds:create", "resource": "orders/123",
                    "context": {"amount": a.amount, "currency": "EUR"},
                    "challenge": a.challenge, "domain": "payments.example"}))
            if "approval_status" in steps:
                out["approval_status"] = result(await c.call_tool("approval_status", {"id": a.approval_id}))
                out["approval_presentation"] = result(await c.call_tool("approval_status", {
                    "id": a.approval_id, "challenge": a.challenge, "domain": "payments.example"}))
    except BaseException as e:  # the test judges a refusal too (bad token, other tenant)
        out["exception"] = " | ".join(describe(x) for x in leaves(e))
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--transport", choices=["http", "stdio"], required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--token-file", required=True)
    p.add_argument("--sigil")
    p.add_argument("--mode", default="auto")
    p.add_argument("--challenge", default="mcp-ch-1")
    p.add_argument("--steps", default="list,granted,denied,verify,authority")
    p.add_argument("--amount", default="120.00")
    p.add_argument("--approval-id", default="")
    a = p.parse_args()
    json.dump(asyncio.run(run(a)), sys.stdout)


if __name__ == "__main__":
    main()
