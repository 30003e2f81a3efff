#!/usr/bin/env node
// Independent check of Sigil's VC-JOSE-COSE JWTs (`jwt_vp` presentations and
// the `vc+jwt` credentials enveloped in them) with panva's `jose` library,
// which shares no code with Sigil's own JOSE module (src/vc/jose.rs).
//
//   node jose-verify.mjs --kind presentation|credential FILE
//     [--ca CERT.pem] [--did-document FILE ...] [--nonce N] [--aud A]
//     [--now ISO-8601]
//
// FILE holds one compact JWS. Keys come from DID documents: those given with
// --did-document (offline), otherwise did:web resolved over HTTPS trusting
// only --ca. For every JWS (the presentation, then each enveloped credential)
// it checks, besides the EdDSA signature (jose `jwtVerify`, Ed25519 only):
//   - typ is `vp+jwt` / `vc+jwt` and cty, when present, `vp` / `vc`
//     (VC-JOSE-COSE, "Securing JSON-LD Verifiable Presentations/Credentials
//     with JOSE"); alg is EdDSA;
//   - kid is a DID URL of the holder (presentation) / issuer (credential),
//     naming a verification method that DID controls and lists under
//     `authentication` / `assertionMethod`;
//   - the payload is a VC 2.0 presentation / credential; a presentation's
//     credentials are all `EnvelopedVerifiableCredential`s whose id is
//     `data:application/vc+jwt,<JWS>`; `exp` (required for a presentation),
//     `nbf`, `iat` at --now (jose's claim checks); `aud` and `nonce` when
//     --aud / --nonce are given.
//
// Prints one JSON line
//   {"verified": bool, "outcome": "verified"|"rejected"|"could_not_check",
//    "reasons": [code, ...], "errors": ["where: code: message", ...],
//    "jws": [{"part", "alg", "typ", "cty", "kid", "verified"}, ...]}
// A reason from an enveloped credential is prefixed with its place,
// e.g. "credential[1].invalid_signature". Exits 0 = verified, 1 = rejected,
// 3 = could not check (a DID document could not be obtained), 2 = usage error.
import fs from 'node:fs';

import * as jose from 'jose';
import {didWebToUrl, makeHttpsFetchJson} from './lib/verifier.mjs';

const USAGE = 'usage: node jose-verify.mjs --kind presentation|credential ' +
  'FILE [--ca CERT.pem] [--did-document FILE ...] [--nonce N] [--aud A] ' +
  '[--now ISO-8601]';
const EXIT = {verified: 0, rejected: 1, usage_error: 2, could_not_check: 3};
const VC2 = 'https://www.w3.org/ns/credentials/v2';
const VC_JWT_DATA_URL = 'data:application/vc+jwt,';
const MAX_JWS_CHARS = 256 * 1024;

/** What each kind of JWS must look like. */
const PROFILE = {
  presentation: {typ: 'vp+jwt', cty: 'vp', relationship: 'authentication',
    signer: 'holder', signerCode: 'holder_mismatch', requiredClaims: ['exp']},
  credential: {typ: 'vc+jwt', cty: 'vc', relationship: 'assertionMethod',
    signer: 'issuer', signerCode: 'issuer_mismatch', requiredClaims: []}
};

/** Reason codes; `unavailable` ones mean "could not check" (exit 3). */
const UNAVAILABLE = new Set(['did_unresolvable', 'verifier_error']);

class Finding extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

function out(result) {
  process.stdout.write(JSON.stringify(
    {verified: result.outcome === 'verified', ...result}) + '\n');
  process.exit(EXIT[result.outcome]);
}

function usage(message) {
  process.stderr.write(USAGE + '\n');
  out({outcome: 'usage_error', reasons: ['usage'], errors: [message], jws: []});
}

function parseArgs(argv) {
  const opts = {didDocuments: []};
  const value = i => {
    if(i + 1 >= argv.length || argv[i + 1].startsWith('--')) {
      usage(`${argv[i]} requires a value`);
    }
    return argv[i + 1];
  };
  for(let i = 0; i < argv.length; i++) {
    switch(argv[i]) {
      case '--kind': opts.kind = value(i++); break;
      case '--ca': opts.ca = value(i++); break;
      case '--did-document': opts.didDocuments.push(value(i++)); break;
      case '--nonce': opts.nonce = value(i++); break;
      case '--aud': opts.aud = value(i++); break;
      case '--now': opts.now = value(i++); break;
      default:
        if(argv[i].startsWith('--') || opts.file !== undefined) {
          usage(`unexpected argument ${argv[i]}`);
        }
        opts.file = argv[i];
    }
  }
  if(!PROFILE[opts.kind]) {
    usage('--kind must be presentation or credential');
  }
  if(opts.file === undefined) {
    usage('FILE is required');
  }
  if(opts.now !== undefined && isNaN(new Date(opts.now))) {
    usage('--now must be an ISO-8601 date-time');
  }
  return opts;
}

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

/** base58btc → bytes (leading '1's are zero bytes). */
function base58Decode(s) {
  let n = 0n;
  for(const ch of s) {
    const d = B58.indexOf(ch);
    if(d < 0) {
      throw new Error(`not base58btc: "${ch}"`);
    }
    n = n * 58n + BigInt(d);
  }
  const bytes = [];
  while(n > 0n) {
    bytes.unshift(Number(n & 0xffn));
    n >>= 8n;
  }
  const zeros = s.length - s.replace(/^1+/, '').length;
  return Uint8Array.from([...new Array(zeros).fill(0), ...bytes]);
}

/** A verification method's Ed25519 public key as a JWK. */
function vmToJwk(vm) {
  if(vm.publicKeyJwk) {
    const {kty, crv, x} = vm.publicKeyJwk;
    if(kty !== 'OKP' || crv !== 'Ed25519' || typeof x !== 'string') {
      throw new Finding('wrong_key', `${vm.id}: publicKeyJwk is not an Ed25519 key`);
    }
    return {kty, crv, x};
  }
  const mb = vm.publicKeyMultibase;
  if(vm.type !== 'Multikey' || typeof mb !== 'string' || !mb.startsWith('z')) {
    throw new Finding('wrong_key', `${vm.id}: neither publicKeyJwk nor a base58btc Multikey`);
  }
  let raw;
  try {
    raw = base58Decode(mb.slice(1));
  } catch(e) {
    throw new Finding('wrong_key', `${vm.id}: ${e.message}`);
  }
  // multicodec ed25519-pub is 0xed 0x01 (varint), then 32 key bytes.
  if(raw.length !== 34 || raw[0] !== 0xed || raw[1] !== 0x01) {
    throw new Finding('wrong_key', `${vm.id}: not an Ed25519 Multikey`);
  }
  return {kty: 'OKP', crv: 'Ed25519', x: jose.base64url.encode(raw.slice(2))};
}

const toArray = x => x === undefined ? [] : Array.isArray(x) ? x : [x];
const idOf = x => typeof x === 'string' ? x : x?.id;

/** DID documents: the offline ones first, else did:web over HTTPS. */
function makeResolver({ca, didDocuments}) {
  const offline = new Map();
  for(const file of didDocuments) {
    const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
    offline.set(doc.id, doc);
  }
  const fetchJson = makeHttpsFetchJson({ca: ca && fs.readFileSync(ca)});
  const cache = new Map();
  return async did => {
    if(offline.has(did)) {
      return offline.get(did);
    }
    if(!did.startsWith('did:web:')) {
      throw new Finding('unsupported_did_method', `${did}: only did:web is resolved`);
    }
    let url;
    try {
      url = didWebToUrl(did);
    } catch(e) {
      throw new Finding('invalid_did', e.message);
    }
    if(!cache.has(url)) {
      cache.set(url, fetchJson(url));
    }
    let doc;
    try {
      doc = await cache.get(url);
    } catch(e) {
      throw new Finding('did_unresolvable', `cannot resolve ${did}: ${e.message}`);
    }
    if(doc?.id !== did) {
      throw new Finding('invalid_did', `DID document id "${doc?.id}" is not "${did}"`);
    }
    return doc;
  };
}

/** The key `kid` names, if `did` controls it and lists it under `relationship`. */
function keyFor(doc, did, kid, relationship) {
  const fragment = kid.slice(did.length);
  const matches = m => m === kid || m === fragment;
  const vm = [...toArray(doc.verificationMethod), ...toArray(doc[relationship])]
    .find(m => typeof m === 'object' && matches(m.id));
  if(!vm) {
    throw new Finding('wrong_key', `${kid} is not in the DID document`);
  }
  if(idOf(vm.controller) !== did) {
    throw new Finding('wrong_key', `${kid} is controlled by ${idOf(vm.controller)}, not ${did}`);
  }
  if(!toArray(doc[relationship]).some(r => matches(idOf(r)))) {
    throw new Finding('wrong_key', `${kid} is not listed under ${relationship}`);
  }
  return vmToJwk(vm);
}

/** jose's error → a reason code. */
function joseCode(e) {
  switch(e?.code) {
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED': return 'invalid_signature';
    case 'ERR_JWT_EXPIRED': return 'expired';
    case 'ERR_JOSE_ALG_NOT_ALLOWED': return 'wrong_alg';
    case 'ERR_JWS_INVALID': case 'ERR_JWT_INVALID': return 'malformed';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if(e.reason === 'missing') {
        return 'claim_missing';
      }
      return {typ: 'wrong_typ', aud: 'aud_mismatch', nbf: 'not_yet_valid',
        iat: 'not_yet_valid'}[e.claim] ?? 'claim_invalid';
    default: return 'not_verified';
  }
}

/**
 * Checks one compact JWS of `kind`; pushes findings (prefixed with `place`)
 * into `findings` and a summary into `summaries`. Returns the payload when
 * jose verified the signature, else undefined.
 */
async function checkJws(jws, kind, place, ctx) {
  const profile = PROFILE[kind];
  const summary = {part: place || kind, verified: false};
  ctx.summaries.push(summary);
  const fail = (code, message) => ctx.findings.push(
    {code: place ? `${place}.${code}` : code, message: `${summary.part}: ${code}: ${message}`});
  if(typeof jws !== 'string' || jws.length > MAX_JWS_CHARS || jws.split('.').length !== 3) {
    fail('malformed', 'not a compact JWS');
    return undefined;
  }
  let header;
  let claims;
  try {
    header = jose.decodeProtectedHeader(jws);
    claims = jose.decodeJwt(jws);
  } catch(e) {
    fail('malformed', e.message);
    return undefined;
  }
  Object.assign(summary, {alg: header.alg, typ: header.typ, cty: header.cty, kid: header.kid});
  // Header conventions (VC-JOSE-COSE).
  if(header.alg !== 'EdDSA') {
    fail('wrong_alg', `alg is ${JSON.stringify(header.alg)}, not EdDSA`);
  }
  if(header.typ !== profile.typ) {
    fail('wrong_typ', `typ is ${JSON.stringify(header.typ)}, not ${profile.typ}`);
  }
  if(header.cty !== undefined && header.cty !== profile.cty) {
    fail('wrong_cty', `cty is ${JSON.stringify(header.cty)}, not ${profile.cty}`);
  }
  // The payload is the unsecured VC 2.0 document.
  const types = toArray(claims.type);
  const wantType = kind === 'presentation' ? 'VerifiablePresentation' : 'VerifiableCredential';
  const signer = idOf(claims[profile.signer]);
  if(toArray(claims['@context'])[0] !== VC2 || !types.includes(wantType) ||
    typeof signer !== 'string') {
    fail('malformed', `the payload is not a VC 2.0 ${kind} with a ${profile.signer}`);
    return undefined;
  }
  // kid: a DID URL of the holder / issuer, listed under the relationship.
  const kid = header.kid;
  const did = typeof kid === 'string' && kid.startsWith('did:') && kid.includes('#') ?
    kid.slice(0, kid.indexOf('#')) : undefined;
  if(!did) {
    fail('wrong_kid', `kid ${JSON.stringify(kid)} is not a DID URL`);
    return undefined;
  }
  if(did !== signer) {
    fail(profile.signerCode, `kid ${kid} is not a key of the ${profile.signer} ${signer}`);
    return undefined;
  }
  let key;
  try {
    const jwk = keyFor(await ctx.resolve(did), did, kid, profile.relationship);
    key = await jose.importJWK(jwk, 'EdDSA');
  } catch(e) {
    fail(e instanceof Finding ? e.code : 'verifier_error', e.message);
    return undefined;
  }
  // The signature and the JWT claims, by jose.
  let verified;
  try {
    verified = await jose.jwtVerify(jws, key, {
      algorithms: ['EdDSA'], typ: profile.typ, currentDate: ctx.now,
      requiredClaims: profile.requiredClaims,
      ...(kind === 'presentation' && ctx.aud !== undefined ? {audience: ctx.aud} : {})
    });
  } catch(e) {
    fail(joseCode(e), e.message);
    return undefined;
  }
  summary.verified = true;
  if(kind === 'presentation' && ctx.nonce !== undefined &&
    verified.payload.nonce !== ctx.nonce) {
    fail('nonce_mismatch', `nonce is ${JSON.stringify(verified.payload.nonce)}`);
  }
  return verified.payload;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  let jws;
  try {
    jws = fs.readFileSync(opts.file, 'utf8').trim();
  } catch(e) {
    usage(`cannot read ${opts.file}: ${e.message}`);
  }
  const ctx = {
    resolve: makeResolver(opts), findings: [], summaries: [],
    now: opts.now === undefined ? new Date() : new Date(opts.now),
    nonce: opts.nonce, aud: opts.aud
  };
  if(opts.kind === 'credential') {
    await checkJws(jws, 'credential', '', ctx);
  } else {
    // The credentials are checked even when the presentation's own signature
    // fails: each one says for itself whether it holds.
    await checkJws(jws, 'presentation', '', ctx);
    let claims;
    try {
      claims = jose.decodeJwt(jws);
    } catch {
      claims = {};
    }
    const creds = toArray(claims.verifiableCredential);
    if(creds.length === 0 && ctx.findings.length === 0) {
      ctx.findings.push({code: 'malformed', message: 'presentation: malformed: no credential'});
    }
    for(const [i, c] of creds.entries()) {
      const place = `credential[${i}]`;
      const id = c?.id;
      if(toArray(c?.['@context'])[0] !== VC2 ||
        !toArray(c?.type).includes('EnvelopedVerifiableCredential') ||
        typeof id !== 'string' || !id.startsWith(VC_JWT_DATA_URL)) {
        ctx.findings.push({code: `${place}.malformed`, message: `${place}: malformed: ` +
          `not an EnvelopedVerifiableCredential with a ${VC_JWT_DATA_URL} id`});
        continue;
      }
      await checkJws(id.slice(VC_JWT_DATA_URL.length), 'credential', place, ctx);
    }
  }
  const reasons = [...new Set(ctx.findings.map(f => f.code))];
  const unavailable = reasons.length > 0 &&
    reasons.every(r => UNAVAILABLE.has(r.split('.').pop()));
  out({
    outcome: reasons.length === 0 ? 'verified' :
      unavailable ? 'could_not_check' : 'rejected',
    reasons, errors: ctx.findings.map(f => f.message), jws: ctx.summaries
  });
}

main().catch(e => out({outcome: 'could_not_check', reasons: ['verifier_error'],
  errors: [`verifier_error: ${e.stack ?? e}`], jws: []}));
