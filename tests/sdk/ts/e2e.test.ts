// End-to-end: a real `sigil serve` driven through the generated TypeScript client
// (sdk/typescript/schema.ts from scripts/gen-sdk, with the openapi-fetch runtime).
// Run: scripts/sdk-e2e, or `npm test` here after scripts/gen-sdk. Env: SIGIL_BIN (default
// target/debug/sigil). The server's dev CA is trusted through an undici dispatcher; TLS
// verification is never disabled. `npm run typecheck` checks this file against the generated types.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { accessSync, constants, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import createClient from "openapi-fetch";
import { Agent as Dispatcher } from "undici";
import type { components, paths } from "../../../sdk/typescript/schema.ts";

type Schemas = components["schemas"];
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const DOMAIN = "payments.example";
const ACTION = "refunds:create";
const CONTEXT = { amount: "120.00", currency: "EUR" };

let server: ChildProcess | undefined;
let tmp = "";
let baseUrl = "";
let bootstrapToken = "";
let dispatcher: Dispatcher;

async function binary(): Promise<string> {
  const bin = process.env.SIGIL_BIN ?? "target/debug/sigil";
  const path = isAbsolute(bin) ? bin : join(ROOT, bin);
  for (let i = 0; ; i++) { // it may be mid-rebuild: wait for it to reappear
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch (e) {
      if (i >= 120) throw new Error(`no sigil binary at ${path} (set SIGIL_BIN or build it)`);
      await sleep(500);
    }
  }
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), "sigil-sdk-ts-"));
  bootstrapToken = "sgl_" + randomBytes(32).toString("base64url");
  const data = join(tmp, "data");
  server = spawn(await binary(), ["serve", "--data", data, "--listen", "127.0.0.1:0"], {
    env: { ...process.env, SIGIL_BOOTSTRAP_TOKEN: bootstrapToken, SIGIL_LOG: process.env.SIGIL_LOG ?? "warn" },
    stdio: ["ignore", "pipe", openSync(join(tmp, "server.log"), "w")], // its log: kept with SIGIL_KEEP_DATA
  });
  baseUrl = await new Promise<string>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error("sigil did not start within 60 s")), 60_000);
    server!.once("exit", (code) =>
      fail(new Error(`sigil exited (${code}) before listening:\n${readFileSync(join(tmp, "server.log"), "utf8")}`)),
    );
    createInterface({ input: server!.stdout! }).on("line", (line) => {
      const m = /listening on (https:\/\/\S+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        ok(m[1]);
      }
    });
  });
  dispatcher = new Dispatcher({ connect: { ca: readFileSync(join(data, "tls", "ca.pem")) } });
});

after(async () => {
  await dispatcher?.close();
  if (server && server.exitCode === null) {
    const exited = new Promise((ok) => server!.once("exit", ok));
    server.kill("SIGTERM");
    await exited;
  }
  if (tmp && !process.env.SIGIL_KEEP_DATA) rmSync(tmp, { recursive: true, force: true });
});

function client(token?: string) {
  return createClient<paths>({
    baseUrl,
    headers: token ? { Authorization: `Bearer ${token}` } : {},
    requestInitExt: { dispatcher },
  });
}

test("tenant, agent, delegation, presentation, verification", async () => {
  const operator = client(bootstrapToken);
  const tenantId = "ts-" + randomUUID().slice(0, 8);
  const t = await operator.POST("/v1/tenants", { body: { id: tenantId, name: "TypeScript e2e" } });
  assert.equal(t.response.status, 201, JSON.stringify(t.error));
  const tenant: Schemas["TenantCreatedResponse"] = t.data!;
  assert.equal(tenant.id, tenantId);
  const admin = client(tenant.admin_token);
  const tenantPath = { tenant: tenant.id };

  const a = await admin.POST("/v1/tenants/{tenant}/agents", {
    params: { path: tenantPath },
    body: { name: "ts-refund-bot", software: "ts-e2e/1.0" },
  });
  assert.equal(a.response.status, 201, JSON.stringify(a.error));
  const agent = a.data!;
  assert.ok(agent.did.endsWith(`:tenants:${tenant.id}:agents:${agent.id}`), agent.did);

  const validUntil = new Date(Date.now() + 30 * 86_400_000).toISOString().replace(/\.\d+Z$/, "Z");
  const d = await admin.POST("/v1/tenants/{tenant}/agents/{agent}/delegations", {
    params: { path: { ...tenantPath, agent: agent.id } },
    body: {
      principal: { id: "alice@acme.example", kind: "person" },
      actions: [ACTION],
      resources: ["orders/*"],
      limits: { amount: { max: "500.00", currency: "EUR" } },
      valid_until: validUntil,
    },
  });
  assert.equal(d.response.status, 201, JSON.stringify(d.error));
  assert.equal(d.data!.kind, "delegation");
  assert.equal(d.data!.status, "active");

  const bot = client(agent.access_token);
  const challenge = "ch-" + randomUUID();
  const p = await bot.POST("/v1/presentations", {
    body: { action: ACTION, resource: "orders/123", context: CONTEXT, challenge, domain: DOMAIN },
  });
  assert.equal(p.response.status, 200, JSON.stringify(p.error));
  // A 202 would be an approval request (a delegation needing a human's approval): not this one.
  assert.ok(p.data && "presentation" in p.data, JSON.stringify(p.data));
  const pres = p.data;
  assert.equal(pres.format, "ldp_vp");
  assert.deepEqual(new Set(pres.credential_ids), new Set([agent.identity_credential_id, d.data!.id]));

  const anyone = client();
  const v = await anyone.POST("/v1/verify", {
    body: {
      presentation: pres.presentation,
      challenge,
      domain: DOMAIN,
      action: { action: ACTION, resource: "orders/123", context: CONTEXT },
    },
  });
  assert.equal(v.response.status, 200, JSON.stringify(v.error));
  assert.equal(v.data!.verified, true, JSON.stringify(v.data));
  assert.deepEqual(v.data!.errors, []);

  // Denied: a problem+json body typed as the spec's Problem.
  const denied = await bot.POST("/v1/presentations", {
    body: { action: "refunds:delete", resource: "orders/123", challenge: "ch-" + randomUUID(), domain: DOMAIN },
  });
  assert.equal(denied.response.status, 403);
  assert.equal(denied.data, undefined);
  const problem: Schemas["Problem"] = denied.error!;
  assert.equal(problem.code, "action_not_allowed");
  assert.match(denied.response.headers.get("content-type") ?? "", /^application\/problem\+json/);
});
