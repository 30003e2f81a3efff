#!/usr/bin/env node
// Self-test of the interop verifier: proves verify.mjs both accepts and
// rejects, without any Sigil server. Runs verify.mjs as a subprocess (the
// way the Rust integration tests do). The did:web / status-list cases use a
// throw-away local HTTPS server (127.0.0.1, random port, self-signed cert
// made with `openssl`); they are skipped if openssl is missing.
//
//   node selftest.mjs            → last line "N passed, N failed"
//   SELFTEST_VERBOSE=1 node selftest.mjs   also prints each verify.mjs result
import {execFile, execFileSync} from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

import * as vc from '@digitalbazaar/vc';
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey';
import * as bsl from '@digitalbazaar/vc-bitstring-status-list';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {createSignCryptosuite} from '@digitalbazaar/eddsa-jcs-2022-cryptosuite';
import {createDocumentLoader, MIN_STATUS_LIST_BITS} from './lib/verifier.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const VERIFY = path.join(HERE, 'verify.mjs');
const SIGIL_CONTEXT_FILE =
  path.resolve(HERE, '../../src/vc/contexts/sigil-v1.jsonld');
const EXAMPLES_CONTEXT_URL = 'https://www.w3.org/ns/credentials/examples/v2';
const EXAMPLES_CONTEXT_FILE =
  path.join(HERE, 'contexts/credentials-examples-v2.jsonld');
const VECTOR_FILE = path.join(HERE, 'vectors/eddsa-jcs-2022.json');
const VC2 = 'https://www.w3.org/ns/credentials/v2';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sigil-interop-'));
let passed = 0;
let failed = 0;
let skipped = 0;
let fileNo = 0;

function writeJson(name, obj) {
  const file = path.join(tmp, `${String(++fileNo).padStart(2, '0')}-${name}.json`);
  fs.writeFileSync(file, JSON.stringify(obj, null, 2));
  return file;
}

function runVerify(args) {
  return new Promise(resolve => {
    execFile(process.execPath, [VERIFY, ...args], {timeout: 60000},
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        let json;
        try {
          json = JSON.parse(stdout.trim().split('\n').pop());
        } catch(e) {
          json = {verified: null, errors: [`unparseable output: ${stdout}${stderr}`]};
        }
        resolve({code, json});
      });
  });
}

/** Expectation: exit code `code` (0 verified, 1 not verified, 2 usage). */
async function expectCli(name, args, code, mustMention) {
  const r = await runVerify(args);
  const okVerified = r.json.verified === (code === 0);
  let ok = r.code === code && okVerified;
  if(ok && mustMention) {
    ok = r.json.errors.some(e => e.toLowerCase().includes(mustMention.toLowerCase()));
  }
  record(name, ok, `exit ${r.code} ${JSON.stringify(r.json)}`);
  if(process.env.SELFTEST_VERBOSE) {
    console.log(`       exit ${r.code} ${JSON.stringify(r.json)}`);
  }
}

function record(name, ok, detail = '') {
  if(ok) {
    passed++;
    console.log(`ok   - ${name}`);
  } else {
    failed++;
    console.log(`FAIL - ${name}: ${detail}`);
  }
}

function skip(name, why) {
  skipped++;
  console.log(`skip - ${name} (${why})`);
}

// ---------------------------------------------------------------- signing
const sigilContextDoc = JSON.parse(fs.readFileSync(SIGIL_CONTEXT_FILE, 'utf8'));

function signingLoader(sigilUrl) {
  return createDocumentLoader({
    contexts: new Map([[sigilUrl, sigilContextDoc]]),
    fetchJson: async url => {
      throw new Error(`no network while signing: ${url}`);
    }
  });
}

function signingSuite(key, proofExtras) {
  const suite = new DataIntegrityProof({
    signer: key.signer(), cryptosuite: createSignCryptosuite()
  });
  if(proofExtras) {
    suite.proof = {...proofExtras};
  }
  return suite;
}

async function issue(credential, key, sigilUrl) {
  return vc.issue({
    credential: structuredClone(credential),
    suite: signingSuite(key),
    documentLoader: signingLoader(sigilUrl)
  });
}

async function prove(presentation, key, {challenge, domain, expires}, sigilUrl) {
  return vc.signPresentation({
    presentation: structuredClone(presentation),
    suite: signingSuite(key, expires ? {expires} : undefined),
    challenge, domain,
    documentLoader: signingLoader(sigilUrl)
  });
}

async function newKey(controller, fragment) {
  const key = await Ed25519Multikey.generate({controller});
  key.id = `${controller}#${fragment ?? key.publicKeyMultibase}`;
  return key;
}

async function didKey() {
  const key = await Ed25519Multikey.generate();
  const did = `did:key:${key.publicKeyMultibase}`;
  key.controller = did;
  key.id = `${did}#${key.publicKeyMultibase}`;
  return {did, key};
}

function isoIn(seconds) {
  return new Date(Date.now() + seconds * 1000).toISOString()
    .replace(/\.\d{3}Z$/, 'Z');
}

// ---------------------------------------------------------------- shapes
function identityShape({issuer, subject, sigilUrl, status}) {
  const c = {
    '@context': [VC2, sigilUrl],
    id: `urn:uuid:${crypto.randomUUID()}`,
    type: ['VerifiableCredential', 'AgentIdentityCredential'],
    issuer,
    validFrom: isoIn(-60),
    credentialSubject: {
      id: subject, type: 'Agent', name: 'refund-bot',
      operator: 'Acme Payments', software: 'refund-bot/1.2',
      created: isoIn(-60)
    }
  };
  if(status) {
    c.credentialStatus = status;
  }
  return c;
}

function delegationShape({issuer, subject, sigilUrl, status}) {
  const c = {
    '@context': [VC2, sigilUrl],
    id: `urn:uuid:${crypto.randomUUID()}`,
    type: ['VerifiableCredential', 'DelegatedAuthorityCredential'],
    issuer,
    validFrom: isoIn(-60),
    validUntil: isoIn(86400),
    credentialSubject: {
      id: subject,
      principal: {identifier: 'alice@example.com', kind: 'person', name: 'Alice'},
      authority: {
        actions: ['refunds:create', 'orders:*'],
        resources: ['orders/*'],
        limits: {amount: {max: '500.00', currency: 'EUR', perDay: '1000.00'}},
        schedule: {
          timezone: 'Europe/Berlin', days: ['mon', 'tue', 'wed', 'thu', 'fri'],
          from: '09:00', to: '17:00'
        }
      }
    }
  };
  if(status) {
    c.credentialStatus = status;
  }
  return c;
}

function presentationShape({holder, credentials, sigilUrl}) {
  return {
    '@context': [VC2, sigilUrl],
    id: `urn:uuid:${crypto.randomUUID()}`,
    type: ['VerifiablePresentation', 'ActionPresentation'],
    holder,
    verifiableCredential: credentials,
    action: {
      name: 'refunds:create', resource: 'orders/123',
      context: {amount: '120.00', currency: 'EUR'}
    }
  };
}

// ---------------------------------------------------------------- part 1
async function w3cVectorTests() {
  const vector = JSON.parse(fs.readFileSync(VECTOR_FILE, 'utf8'));
  const ctx = ['--context', `${EXAMPLES_CONTEXT_URL}=${EXAMPLES_CONTEXT_FILE}`];
  const good = writeJson('w3c-vector', vector.signedDocument);
  await expectCli('W3C eddsa-jcs-2022 vector verifies (--no-issuer-check)',
    ['--kind', 'credential', good, ...ctx, '--no-issuer-check'], 0);
  await expectCli('W3C vector: DB CredentialIssuancePurpose rejects issuer != VM controller',
    ['--kind', 'credential', good, ...ctx], 1, 'issuer must match');
  const tampered = structuredClone(vector.signedDocument);
  const s = tampered.credentialSubject.alumniOf;
  tampered.credentialSubject.alumniOf = (s[0] === 'T' ? 'X' : 'T') + s.slice(1);
  await expectCli('W3C vector with one character of alumniOf flipped fails',
    ['--kind', 'credential', writeJson('w3c-vector-tampered', tampered),
      ...ctx, '--no-issuer-check'], 1, 'invalid signature');
  await expectCli('W3C vector without the examples context mapped fails (offline)',
    ['--kind', 'credential', good, '--no-issuer-check'], 1, 'refusing to load');
  await expectCli('usage error exits 2', ['--kind', 'credential'], 2);
}

// ---------------------------------------------------------------- part 2
async function didKeyTests() {
  const sigilUrl = 'https://sigil.test/ns/v1';
  const ctx = ['--context', `${sigilUrl}=${SIGIL_CONTEXT_FILE}`];
  const issuer = await didKey();
  const agent = await didKey();
  const idVc = await issue(identityShape(
    {issuer: issuer.did, subject: agent.did, sigilUrl}), issuer.key, sigilUrl);
  const dlVc = await issue(delegationShape(
    {issuer: issuer.did, subject: agent.did, sigilUrl}), issuer.key, sigilUrl);

  record('DB eddsa-jcs-2022 signer copies document @context into proof',
    JSON.stringify(idVc.proof['@context']) === JSON.stringify(idVc['@context']),
    JSON.stringify(idVc.proof));

  await expectCli('did:key identity credential (Sigil context) verifies',
    ['--kind', 'credential', writeJson('dk-identity', idVc), ...ctx], 0);
  await expectCli('did:key delegation credential (Sigil context) verifies',
    ['--kind', 'credential', writeJson('dk-delegation', dlVc), ...ctx], 0);
  await expectCli('credential without the Sigil context mapped fails',
    ['--kind', 'credential', writeJson('dk-identity-noctx', idVc)], 1,
    'refusing to load');

  const challenge = crypto.randomUUID();
  const domain = 'https://verifier.example';
  const vp = await prove(presentationShape(
    {holder: agent.did, credentials: [idVc, dlVc], sigilUrl}), agent.key,
  {challenge, domain, expires: isoIn(300)}, sigilUrl);
  const vpFile = writeJson('dk-presentation', vp);
  await expectCli('did:key presentation (challenge, domain, expires) verifies',
    ['--kind', 'presentation', vpFile, ...ctx,
      '--challenge', challenge, '--domain', domain], 0);
  await expectCli('presentation with wrong challenge fails',
    ['--kind', 'presentation', vpFile, ...ctx,
      '--challenge', 'not-the-challenge', '--domain', domain], 1, 'challenge');
  await expectCli('presentation with wrong domain fails',
    ['--kind', 'presentation', vpFile, ...ctx,
      '--challenge', challenge, '--domain', 'https://evil.example'], 1, 'domain');
  await expectCli('presentation without --challenge fails',
    ['--kind', 'presentation', vpFile, ...ctx], 1, 'challenge');
  await expectCli('presentation checked after proof.expires fails',
    ['--kind', 'presentation', vpFile, ...ctx, '--challenge', challenge,
      '--domain', domain, '--now', isoIn(600)], 1, 'proof expired');

  const tamperedVp = structuredClone(vp);
  tamperedVp.action.context.amount = '9999.00';
  await expectCli('presentation with tampered action.context fails',
    ['--kind', 'presentation', writeJson('dk-presentation-tampered', tamperedVp),
      ...ctx, '--challenge', challenge, '--domain', domain], 1, 'invalid signature');

  const tamperedInner = structuredClone(vp);
  tamperedInner.verifiableCredential[1].credentialSubject.authority
    .limits.amount.max = '50000.00';
  await expectCli('presentation with tampered enclosed credential fails',
    ['--kind', 'presentation', writeJson('dk-presentation-inner', tamperedInner),
      ...ctx, '--challenge', challenge, '--domain', domain], 1, 'invalid signature');

  const other = await didKey();
  const stolen = await prove(presentationShape(
    {holder: agent.did, credentials: [idVc, dlVc], sigilUrl}), other.key,
  {challenge, domain}, sigilUrl);
  await expectCli('presentation whose holder is not the signer fails',
    ['--kind', 'presentation', writeJson('dk-presentation-holder', stolen),
      ...ctx, '--challenge', challenge, '--domain', domain], 1, 'holder');

  const undefinedTerm = identityShape(
    {issuer: issuer.did, subject: agent.did, sigilUrl});
  undefinedTerm.credentialSubject.favouriteColour = 'blue';
  await expectCli('signed credential with a term undefined by the contexts fails',
    ['--kind', 'credential',
      writeJson('dk-undefined-term', await issue(undefinedTerm, issuer.key, sigilUrl)),
      ...ctx], 1, 'favouriteColour');

  const expired = delegationShape({issuer: issuer.did, subject: agent.did, sigilUrl});
  expired.validFrom = isoIn(-7200);
  expired.validUntil = isoIn(-3600);
  await expectCli('credential past validUntil fails',
    ['--kind', 'credential',
      writeJson('dk-expired', await issue(expired, issuer.key, sigilUrl)), ...ctx],
    1, 'validUntil');

  const wrongIssuer = await issue(identityShape(
    {issuer: other.did, subject: agent.did, sigilUrl}), issuer.key, sigilUrl);
  await expectCli('credential whose issuer is not the signing key controller fails',
    ['--kind', 'credential', writeJson('dk-wrong-issuer', wrongIssuer), ...ctx],
    1, 'issuer must match');
}

// ---------------------------------------------------------------- part 3
function makeCert() {
  const key = path.join(tmp, 'key.pem');
  const cert = path.join(tmp, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec',
    '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-keyout', key, '-out', cert, '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1',
    '-addext', 'basicConstraints=critical,CA:FALSE'], {stdio: 'ignore'});
  return {key: fs.readFileSync(key), cert: fs.readFileSync(cert), certFile: cert};
}

async function didWebTests() {
  let tls;
  try {
    tls = makeCert();
  } catch(e) {
    skip('did:web + status list tests', `openssl unavailable: ${e.message}`);
    return;
  }
  const routes = new Map();
  const server = https.createServer({key: tls.key, cert: tls.cert}, (req, res) => {
    const body = routes.get(req.url.split('?')[0]);
    if(body === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, {'content-type': 'application/json'});
    res.end(JSON.stringify(body));
  });
  await new Promise(r => server.listen(0, '127.0.0.1', r));
  const {port} = server.address();
  try {
    const base = `https://127.0.0.1:${port}`;
    const sigilUrl = `${base}/ns/v1`;
    const host = `127.0.0.1%3A${port}`;
    const tenantDid = `did:web:${host}:tenants:acme`;
    const agentDid = `${tenantDid}:agents:ab12`;
    const ctx = ['--context', `${sigilUrl}=${SIGIL_CONTEXT_FILE}`];
    const ca = ['--ca', tls.certFile];

    const issuerKey = await newKey(tenantDid, 'issuer-1');
    const agentKey = await newKey(agentDid, 'key-1');
    const rogueKey = await newKey(tenantDid, 'issuer-1');
    const didDoc = (did, key) => ({
      '@context': ['https://www.w3.org/ns/did/v1',
        'https://w3id.org/security/multikey/v1'],
      id: did,
      verificationMethod: [{id: key.id, type: 'Multikey', controller: did,
        publicKeyMultibase: key.publicKeyMultibase}],
      assertionMethod: [key.id],
      authentication: [key.id]
    });
    routes.set('/tenants/acme/did.json', didDoc(tenantDid, issuerKey));
    routes.set('/tenants/acme/agents/ab12/did.json', didDoc(agentDid, agentKey));

    const statusList = async ({name, purpose, set = [], signer = issuerKey,
      length = MIN_STATUS_LIST_BITS}) => {
      const id = `${base}/tenants/acme/status/${name}`;
      const list = await bsl.createList({length});
      for(const i of set) {
        list.setStatus(i, true);
      }
      const c = await bsl.createCredential({id, list, statusPurpose: purpose});
      c.issuer = tenantDid;
      c.validFrom = isoIn(-60);
      c.validUntil = isoIn(3600);
      return issue(c, signer, sigilUrl);
    };
    const publish = async (opts = {}) => {
      routes.set('/tenants/acme/status/r1', await statusList(
        {name: 'r1', purpose: 'revocation', ...opts.r1}));
      routes.set('/tenants/acme/status/s1', await statusList(
        {name: 's1', purpose: 'suspension', ...opts.s1}));
    };
    const status = [
      {id: `${base}/tenants/acme/status/r1#12345`, type: 'BitstringStatusListEntry',
        statusPurpose: 'revocation', statusListIndex: '12345',
        statusListCredential: `${base}/tenants/acme/status/r1`},
      {id: `${base}/tenants/acme/status/s1#777`, type: 'BitstringStatusListEntry',
        statusPurpose: 'suspension', statusListIndex: '777',
        statusListCredential: `${base}/tenants/acme/status/s1`}
    ];
    const idVc = await issue(identityShape(
      {issuer: tenantDid, subject: agentDid, sigilUrl, status}), issuerKey, sigilUrl);
    const dlVc = await issue(delegationShape({issuer: tenantDid, subject: agentDid,
      sigilUrl, status: status.map(s => ({...s,
        id: s.id.replace(/#\d+$/, '#4242'), statusListIndex: '4242'}))}),
    issuerKey, sigilUrl);
    const challenge = crypto.randomUUID();
    const domain = base;
    const vp = await prove(presentationShape(
      {holder: agentDid, credentials: [idVc, dlVc], sigilUrl}), agentKey,
    {challenge, domain, expires: isoIn(300)}, sigilUrl);
    const idFile = writeJson('web-identity', idVc);
    const dlFile = writeJson('web-delegation', dlVc);
    const vpFile = writeJson('web-presentation', vp);
    const vpArgs = ['--kind', 'presentation', vpFile, ...ctx, ...ca,
      '--challenge', challenge, '--domain', domain];

    await publish();
    await expectCli('did:web identity credential with clear status bits verifies',
      ['--kind', 'credential', idFile, ...ctx, ...ca], 0);
    await expectCli('did:web delegation credential verifies',
      ['--kind', 'credential', dlFile, ...ctx, ...ca], 0);
    await expectCli('did:web presentation of both credentials verifies', vpArgs, 0);
    await expectCli('without --ca the self-signed server is not trusted',
      ['--kind', 'credential', idFile, ...ctx], 1);

    await publish({r1: {set: [12345]}});
    await expectCli('revoked identity credential fails',
      ['--kind', 'credential', idFile, ...ctx, ...ca], 1, 'revocation');
    await expectCli('presentation enclosing a revoked credential fails', vpArgs, 1,
      'revocation');
    await expectCli('--no-status skips the status check',
      ['--kind', 'credential', idFile, ...ctx, ...ca, '--no-status'], 0);
    await expectCli('a set bit at another index does not affect the credential',
      ['--kind', 'credential', dlFile, ...ctx, ...ca], 0);

    await publish({s1: {set: [777]}});
    await expectCli('suspended identity credential fails',
      ['--kind', 'credential', idFile, ...ctx, ...ca], 1, 'suspension');

    await publish({r1: {signer: rogueKey}});
    await expectCli('status list signed by a key not in the tenant DID document fails',
      ['--kind', 'credential', idFile, ...ctx, ...ca], 1, 'not verified');

    await publish({r1: {length: 16384}});
    await expectCli(`status list shorter than ${MIN_STATUS_LIST_BITS} bits fails`,
      ['--kind', 'credential', idFile, ...ctx, ...ca], 1, 'bits');

    await publish({r1: {purpose: 'suspension'}});
    await expectCli('status list whose statusPurpose differs from the entry fails',
      ['--kind', 'credential', idFile, ...ctx, ...ca], 1, 'status purpose');

    await publish();
    routes.set('/tenants/acme/did.json', didDoc(tenantDid, rogueKey));
    await expectCli('credential fails when the tenant DID document has another key',
      ['--kind', 'credential', idFile, ...ctx, ...ca], 1, 'invalid signature');
  } finally {
    server.close();
  }
}

try {
  await w3cVectorTests();
  await didKeyTests();
  await didWebTests();
} catch(e) {
  record('selftest crashed', false, e.stack);
} finally {
  fs.rmSync(tmp, {recursive: true, force: true});
}
console.log(`${passed} passed, ${failed} failed` +
  (skipped ? `, ${skipped} skipped` : ''));
process.exit(failed === 0 ? 0 : 1);
