// Independent verifier for Sigil credentials/presentations, built only on
// Digital Bazaar's libraries (DataIntegrityProof with eddsa-jcs-2022 or
// eddsa-rdfc-2022).
//
// Everything is offline except: did:web documents and the status list
// credentials named by the document being verified, fetched over HTTPS.
//
// Every failure carries a stable reason code (see REASONS) and is either a
// rejection (the document is wrong) or "could not check" (a DID document,
// status list or context could not be obtained: TLS, DNS, HTTP, unmapped
// context). Only rejections make the outcome "rejected".
import fs from 'node:fs';
import https from 'node:https';

import * as vc from '@digitalbazaar/vc';
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey';
import * as bsl from '@digitalbazaar/vc-bitstring-status-list';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {createVerifyCryptosuite} from '@digitalbazaar/eddsa-jcs-2022-cryptosuite';
import {cryptosuite as rdfcCryptosuite} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import {driver as didKeyDriver} from '@digitalbazaar/did-method-key';
import {contexts as credentialsContexts} from '@digitalbazaar/credentials-context';
import {contexts as dataIntegrityContexts} from '@digitalbazaar/data-integrity-context';
import {contexts as multikeyContexts} from '@digitalbazaar/multikey-context';
import {contexts as bslContexts} from '@digitalbazaar/vc-bitstring-status-list-context';
import didContext from 'did-context';
import jsigs from 'jsonld-signatures';
import jsonld from 'jsonld';

const {purposes: {AssertionProofPurpose}} = jsigs;

// Bitstring Status List v1.0: "a minimum of 131,072 entries".
export const MIN_STATUS_LIST_BITS = 131072;
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

/** Contexts that ship inside npm packages (never fetched). */
export const BUILTIN_CONTEXTS = new Map([
  ...credentialsContexts,
  ...dataIntegrityContexts,
  ...multikeyContexts,
  ...bslContexts,
  ...didContext.contexts
]);

/** Parses `URL=PATH` pairs and reads each PATH as a JSON-LD context document. */
export function loadContextPairs(pairs = []) {
  const map = new Map();
  for(const pair of pairs) {
    const i = pair.lastIndexOf('=');
    if(i <= 0 || i === pair.length - 1) {
      throw new UsageError(`--context expects URL=PATH, got "${pair}"`);
    }
    const url = pair.slice(0, i);
    const path = pair.slice(i + 1);
    let text;
    try {
      text = fs.readFileSync(path, 'utf8');
    } catch(e) {
      throw new UsageError(`cannot read context file "${path}": ${e.message}`);
    }
    map.set(url, JSON.parse(text));
  }
  return map;
}

export class UsageError extends Error {}

/**
 * Stable reason codes. `unavailable: true` means "could not check": the
 * verifier lacked something it needed, which says nothing about the document.
 */
export const REASONS = Object.freeze({
  // could not check
  context_unavailable: {unavailable: true,
    about: 'a JSON-LD context is neither built in nor mapped with --context'},
  did_unresolvable: {unavailable: true,
    about: 'a did:web DID document could not be fetched (TLS, DNS, HTTP, not JSON)'},
  status_unavailable: {unavailable: true,
    about: 'a status list credential could not be fetched'},
  verifier_error: {unavailable: true,
    about: 'the verifier itself failed unexpectedly'},
  // rejected
  invalid_signature: {about: 'a proof does not verify over the document'},
  expired: {about: 'a credential is past its validUntil (at --now)'},
  not_yet_valid: {about: 'a credential is before its validFrom (at --now)'},
  proof_expired: {about: 'a proof is past its "expires" (at --now)'},
  challenge_mismatch: {about: 'the presentation proof has another challenge'},
  domain_mismatch: {about: 'the presentation proof has another domain'},
  holder_mismatch: {about: 'the presentation holder does not control the proof key'},
  issuer_mismatch: {about: 'the credential issuer does not control the proof key'},
  wrong_key: {about: 'the verification method is not in the DID document, ' +
    'has another controller or is not authorized for the proof purpose'},
  invalid_did: {about: 'a DID (or its document) is malformed or names another DID'},
  unsupported_did_method: {about: 'a DID method other than did:key and did:web'},
  unsupported_url: {about: 'a URL that is neither a DID, a context nor a status list'},
  proof_missing: {about: 'the document has no proof'},
  no_matching_proof: {about: 'no proof has a supported type/cryptosuite and the required purpose'},
  invalid_jsonld: {about: 'JSON-LD expansion in safe mode failed (undefined term, protected term redefined)'},
  revoked: {about: 'the revocation bit is set'},
  suspended: {about: 'the suspension bit is set'},
  status_set: {about: 'a status bit of another purpose is set'},
  status_list_invalid: {about: 'the status list credential does not verify (signature, issuer, type, JSON-LD)'},
  status_list_too_short: {about: `the status list has fewer than 131072 entries`},
  status_purpose_mismatch: {about: 'the status list purpose differs from the entry'},
  malformed: {about: 'the document is not a well-formed VC 2.0 credential/presentation'},
  not_verified: {about: 'rejected for a reason without its own code (see errors)'}
});

/** A failure with a reason code from REASONS. */
export class CheckError extends Error {
  constructor(code, message, {cause} = {}) {
    super(message, cause === undefined ? undefined : {cause});
    if(!REASONS[code]) {
      throw new TypeError(`unknown reason code "${code}"`);
    }
    this.name = 'CheckError';
    this.code = code;
  }

  get unavailable() {
    return REASONS[this.code].unavailable === true;
  }
}

/** The first CheckError in an error, its causes or nested error lists. */
export function findCheckError(node, seen = new Set()) {
  if(!node || typeof node !== 'object' || seen.has(node)) {
    return undefined;
  }
  seen.add(node);
  if(node instanceof CheckError) {
    return node;
  }
  if(Array.isArray(node)) {
    for(const n of node) {
      const f = findCheckError(n, seen);
      if(f) {
        return f;
      }
    }
    return undefined;
  }
  for(const next of [node.cause, node.details?.cause, node.errors]) {
    const f = findCheckError(next, seen);
    if(f) {
      return f;
    }
  }
  return undefined;
}

/** Collects the string `@context` URLs used anywhere in `node`. */
function noteContexts(node, out, depth = 0) {
  if(!node || typeof node !== 'object' || depth > 64) {
    return out;
  }
  if(Array.isArray(node)) {
    node.forEach(n => noteContexts(n, out, depth + 1));
    return out;
  }
  for(const [k, v] of Object.entries(node)) {
    if(k === '@context' || k === '@import') {
      for(const c of toArray(v)) {
        if(typeof c === 'string') {
          out.add(c);
        } else {
          noteContexts(c, out, depth + 1);
        }
      }
    } else if(v && typeof v === 'object') {
      noteContexts(v, out, depth + 1);
    }
  }
  return out;
}

/**
 * did:web → HTTPS URL of its DID document (did:web method spec §3.2.1).
 * `did:web:host%3Aport:a:b` → `https://host:port/a/b/did.json`,
 * `did:web:host` → `https://host/.well-known/did.json`.
 */
export function didWebToUrl(did) {
  const base = did.split('#')[0].split('?')[0];
  if(!base.startsWith('did:web:')) {
    throw new Error(`not a did:web DID: "${did}"`);
  }
  const [rawHost, ...path] = base.slice('did:web:'.length).split(':');
  const host = decodeURIComponent(rawHost);
  if(!host || /[/?#@\s]/.test(host)) {
    throw new Error(`invalid did:web host in "${did}"`);
  }
  if(path.some(p => !p || /[/?#\s]/.test(p))) {
    throw new Error(`invalid did:web path in "${did}"`);
  }
  return path.length ?
    `https://${host}/${path.join('/')}/did.json` :
    `https://${host}/.well-known/did.json`;
}

/** GET an https URL and parse JSON, trusting only `ca` when given. */
export function makeHttpsFetchJson({ca} = {}) {
  const agent = new https.Agent(ca ? {ca, keepAlive: false} : {keepAlive: false});
  return function fetchJson(url) {
    return new Promise((resolve, reject) => {
      let u;
      try {
        u = new URL(url);
      } catch(e) {
        return reject(new Error(`invalid URL "${url}"`));
      }
      if(u.protocol !== 'https:') {
        return reject(new Error(`refusing non-https URL "${url}"`));
      }
      const req = https.get(u, {
        agent,
        timeout: 10000,
        headers: {accept: 'application/did+json, application/vc+ld+json, ' +
          'application/ld+json, application/json;q=0.9'}
      }, res => {
        if(res.statusCode !== 200) {
          res.resume();
          return reject(new Error(`GET ${url}: HTTP ${res.statusCode}`));
        }
        const chunks = [];
        let size = 0;
        res.on('data', c => {
          size += c.length;
          if(size > MAX_RESPONSE_BYTES) {
            req.destroy(new Error(`GET ${url}: response too large`));
          } else {
            chunks.push(c);
          }
        });
        res.on('end', () => {
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
          } catch(e) {
            reject(new Error(`GET ${url}: body is not JSON`));
          }
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`GET ${url}: timeout`)));
      req.on('error', e => reject(new Error(`GET ${url}: ${e.message}`)));
    });
  };
}

/**
 * documentLoader:
 * - contexts: built-in npm packages + explicit --context files; anything else
 *   is an error (contexts are NEVER fetched).
 * - did:key: DB did-method-key driver (Ed25519 Multikey).
 * - did:web: HTTPS fetch of the DID document; a DID URL with a fragment
 *   returns the matching verificationMethod with the DID document's @context.
 * - https URLs: only those listed in `allowedHttpsUrls` (status lists).
 *
 * Every failure is a CheckError: fetch failures are "could not check"
 * (did_unresolvable, status_unavailable), an unmapped URL that some loaded
 * document uses as a context is context_unavailable, anything else the
 * loader refuses or finds wrong is a rejection.
 */
export function createDocumentLoader({
  contexts = new Map(), fetchJson, allowedHttpsUrls = new Set(),
  contextUrls = new Set()
} = {}) {
  const keyDriver = didKeyDriver();
  keyDriver.use({
    multibaseMultikeyHeader: 'z6Mk',
    fromMultibase: Ed25519Multikey.from
  });
  const cache = new Map();
  const fetchOnce = url => {
    if(!cache.has(url)) {
      const p = Promise.resolve().then(() => fetchJson(url)).then(doc => {
        noteContexts(doc, contextUrls);
        return doc;
      });
      // one run is short-lived: a failure is remembered too
      cache.set(url, p);
    }
    return cache.get(url);
  };
  const wrap = (url, document) => {
    noteContexts(document, contextUrls);
    return {contextUrl: null, documentUrl: url, document};
  };

  async function resolveDidWeb(didUrl) {
    const [did, fragment] = didUrl.split('#');
    let url;
    try {
      url = didWebToUrl(did);
    } catch(e) {
      throw new CheckError('invalid_did', e.message);
    }
    let doc;
    try {
      doc = await fetchOnce(url);
    } catch(e) {
      throw new CheckError('did_unresolvable',
        `cannot resolve ${did}: ${e.message}`, {cause: e});
    }
    if(!doc || typeof doc !== 'object' || doc.id !== did) {
      throw new CheckError('invalid_did',
        `DID document id "${doc?.id}" does not match "${did}"`);
    }
    if(fragment === undefined) {
      return doc;
    }
    const candidates = [
      ...toArray(doc.verificationMethod),
      ...toArray(doc.assertionMethod), ...toArray(doc.authentication)
    ].filter(x => x && typeof x === 'object');
    const vm = candidates.find(
      m => m.id === didUrl || m.id === `#${fragment}`);
    if(!vm) {
      throw new CheckError('wrong_key',
        `verification method "${didUrl}" not found in DID document`);
    }
    const controller = typeof vm.controller === 'object' ?
      vm.controller.id : vm.controller;
    if(controller !== did) {
      throw new CheckError('wrong_key', `verification method "${didUrl}" ` +
        `controller "${controller}" is not "${did}"`);
    }
    // Ed25519Multikey.from wants type Multikey + the multikey/v1 context.
    return {'@context': doc['@context'], ...vm, id: didUrl};
  }

  async function resolveDidKey(url) {
    const [did, fragment] = url.split('#');
    let document;
    try {
      document = await keyDriver.get({did});
    } catch(e) {
      throw new CheckError('invalid_did',
        `cannot read did:key "${did}": ${e.message}`, {cause: e});
    }
    if(fragment === undefined) {
      return document;
    }
    const vm = toArray(document?.verificationMethod).find(m => m?.id === url);
    if(!vm) {
      throw new CheckError('wrong_key', `verification method "${url}" not found`);
    }
    return {'@context': document['@context'], ...vm};
  }

  return async function documentLoader(url) {
    if(contexts.has(url)) {
      return wrap(url, contexts.get(url));
    }
    if(BUILTIN_CONTEXTS.has(url)) {
      return wrap(url, BUILTIN_CONTEXTS.get(url));
    }
    if(typeof url === 'string' && url.startsWith('did:key:')) {
      return wrap(url, await resolveDidKey(url));
    }
    if(typeof url === 'string' && url.startsWith('did:web:')) {
      return wrap(url, await resolveDidWeb(url));
    }
    if(typeof url === 'string' && url.startsWith('did:')) {
      throw new CheckError('unsupported_did_method',
        `documentLoader: "${url}": only did:key and did:web are supported`);
    }
    if(allowedHttpsUrls.has(url)) {
      try {
        return wrap(url, await fetchOnce(url));
      } catch(e) {
        throw new CheckError('status_unavailable',
          `cannot fetch status list ${url}: ${e.message}`, {cause: e});
      }
    }
    if(contextUrls.has(url)) {
      throw new CheckError('context_unavailable',
        `documentLoader: refusing to load context "${url}" (contexts are ` +
        'never fetched; map it with --context URL=PATH)');
    }
    throw new CheckError('unsupported_url',
      `documentLoader: refusing to load "${url}" (not a DID, a known ` +
      'context or a status list of the document)');
  };
}

function toArray(x) {
  return x === undefined ? [] : Array.isArray(x) ? x : [x];
}

function statusEntries(credential) {
  return toArray(credential?.credentialStatus).filter(
    cs => cs && cs.type === 'BitstringStatusListEntry');
}

function credentialsOf(kind, document) {
  return kind === 'presentation' ?
    toArray(document.verifiableCredential).filter(c => c && typeof c === 'object') :
    [document];
}

/**
 * Both eddsa cryptosuites: jsonld-signatures picks, for each proof, the suite
 * whose type and cryptosuite match it (a proof of any other kind matches
 * none: no_matching_proof).
 */
function makeSuite() {
  return [
    new DataIntegrityProof({cryptosuite: createVerifyCryptosuite()}),
    new DataIntegrityProof({cryptosuite: rdfcCryptosuite})
  ];
}

/**
 * checkStatus for vc.verifyCredential. DB `checkStatus` only reports whether
 * the status *could be checked* (`verified`) and the bit value (`status`);
 * it does not fail on a set bit, so this wrapper does. Every failure is
 * returned as CheckError(s) with a status reason code.
 */
function makeStatusChecker({documentLoader, suite}) {
  return async function checkStatus({credential}) {
    let result;
    try {
      result = await bsl.checkStatus({
        credential, documentLoader, suite,
        verifyBitstringStatusListCredential: true,
        verifyMatchingIssuers: true
      });
    } catch(e) {
      result = {verified: false, error: e};
    }
    if(!result.verified) {
      return {verified: false, error: statusFailure(result.error)};
    }
    const problems = [];
    for(const {credentialStatus, status} of result.results) {
      const {statusPurpose, statusListIndex, statusListCredential} =
        credentialStatus;
      if(status !== false) {
        const code = {revocation: 'revoked', suspension: 'suspended'}[
          statusPurpose] ?? 'status_set';
        problems.push(new CheckError(code, `credential status ` +
          `"${statusPurpose}" is set (index ${statusListIndex} of ` +
          `${statusListCredential})`));
      }
      try {
        const {document: slc} = await documentLoader(statusListCredential);
        const list = await bsl.decodeList(
          {encodedList: slc.credentialSubject.encodedList});
        if(list.length < MIN_STATUS_LIST_BITS) {
          problems.push(new CheckError('status_list_too_short',
            `status list ${statusListCredential} has ` +
            `${list.length} bits (< ${MIN_STATUS_LIST_BITS})`));
        }
        await jsonld.expand(slc, {documentLoader, safe: true});
      } catch(e) {
        const found = findCheckError(e);
        problems.push(found?.unavailable ? found : new CheckError(
          'status_list_invalid',
          `status list ${statusListCredential}: ${errorText(e)}`, {cause: e}));
      }
    }
    if(problems.length > 0) {
      return {verified: false, error: problems, results: result.results};
    }
    return result;
  };
}

/** The reason a DB status check failed: could-not-check passes through. */
function statusFailure(error) {
  const found = findCheckError(error);
  if(found?.unavailable) {
    return found;
  }
  const message = deepText(error) || 'status check failed';
  const code = /status purpose .* does not match/i.test(message) ?
    'status_purpose_mismatch' : 'status_list_invalid';
  return new CheckError(code, message, {cause: error});
}

/** An error's message followed by those of its causes and nested errors. */
function deepText(e, seen = new Set()) {
  if(!e || typeof e !== 'object' || seen.has(e)) {
    return '';
  }
  seen.add(e);
  const parts = Array.isArray(e) ? e.map(x => deepText(x, seen)) : [
    typeof e.message === 'string' && e.message !== 'Verification error(s).' ?
      e.message : '',
    deepText(e.cause, seen), deepText(e.details?.cause, seen),
    deepText(e.errors, seen)];
  return [...new Set(parts.filter(Boolean))].join(' <- ');
}

function errorText(e) {
  if(Array.isArray(e)) {
    return e.map(errorText).join('; ');
  }
  if(e && typeof e === 'object' && typeof e.message === 'string') {
    return e.message;
  }
  return e === undefined ? '' : String(e);
}

/** Reason code of a DB (or jsonld) error message that is not a CheckError. */
const MESSAGE_REASONS = [
  [/^Invalid signature\.?$/, 'invalid_signature'],
  [/is after "validUntil"|is after "expirationDate"|Credential has expired/,
    'expired'],
  [/is before "validFrom"|is before the "issuanceDate"/, 'not_yet_valid'],
  [/challenge is not as expected/, 'challenge_mismatch'],
  [/domain is not as expected/, 'domain_mismatch'],
  [/issuer must match the verification method controller/, 'issuer_mismatch'],
  [/not authorized by controller for proof purpose/, 'wrong_key'],
  [/No matching proofs found/, 'proof_missing'],
  [/Did not verify any proofs/, 'no_matching_proof'],
  [/^"[^"]+" (property|must|can)|^property "|must be a URI|"@context"|"type" must include|credentialSubject/,
    'malformed']
];

const RUNTIME_ERROR = new RegExp('^Cannot (read|set) propert|is not a function$|' +
  'is not defined$|is not iterable|Maximum call stack');

function classify(error) {
  const found = findCheckError(error);
  if(found) {
    return {code: found.code, message: shorten(found.message)};
  }
  const message = shorten(errorText(error));
  if(RUNTIME_ERROR.test(message)) {
    // a JavaScript runtime error inside a library: nothing was decided
    return {code: 'verifier_error', message};
  }
  const hit = MESSAGE_REASONS.find(([re]) => re.test(message));
  return {code: hit ? hit[1] : 'not_verified', message};
}

/** Collects {code, message} findings from a DB verification result tree. */
function collectFindings(node, out, seen = new Set()) {
  if(!node || typeof node !== 'object' || seen.has(node)) {
    return out;
  }
  seen.add(node);
  if(node instanceof Error || (typeof node.message === 'string' &&
    typeof node.name === 'string')) {
    // its causes are summarized by classify(), not listed again
    if(node.message !== 'Verification error(s).') {
      out.push(classify(node));
    }
    if(Array.isArray(node.errors)) {
      node.errors.forEach(e => collectFindings(e, out, seen));
    }
    return out;
  }
  if(Array.isArray(node)) {
    node.forEach(e => collectFindings(e, out, seen));
    return out;
  }
  for(const key of ['error', 'results', 'credentialResults',
    'presentationResult', 'statusResult', 'purposeResult']) {
    if(node[key] !== undefined) {
      collectFindings(node[key], out, seen);
    }
  }
  return out;
}

function jsonldErrorMessage(e) {
  const d = e.details || {};
  const detail = d.cause?.message || d.event?.message ||
    (d.event?.details?.property ?
      `property "${d.event.details.property}"` : undefined);
  const what = d.code || e.name;
  return `JSON-LD expansion (safe mode) failed: ${what}: ` +
    `${detail ? detail : e.message}` +
    (d.event?.details?.property && d.cause === undefined ?
      ` ("${d.event.details.property}")` : '');
}

function shorten(s) {
  s = String(s).replace(/\s+/g, ' ').trim();
  return s.length > 300 ? s.slice(0, 297) + '...' : s;
}

/**
 * The outcome of a list of findings: "verified" when there are none,
 * "rejected" when at least one is a rejection, else "could_not_check".
 */
export function outcomeOf(findings) {
  if(findings.length === 0) {
    return 'verified';
  }
  return findings.some(f => !REASONS[f.code]?.unavailable) ?
    'rejected' : 'could_not_check';
}

/**
 * Verifies a credential or presentation.
 *
 * @returns {Promise<{verified: boolean,
 *   outcome: 'verified'|'rejected'|'could_not_check',
 *   reasons: string[], errors: string[]}>} `reasons` are REASONS codes,
 *   `errors` the matching human-readable "code: message" lines.
 */
export async function verifyDocument({
  kind, document, challenge, domain, now, contexts = new Map(),
  fetchJson = makeHttpsFetchJson(), checkStatus = true, issuerCheck = true
}) {
  if(kind === 'presentation' && typeof challenge !== 'string') {
    throw new UsageError('a challenge is required to verify a presentation');
  }
  const findings = [];
  if(!document || typeof document !== 'object' || Array.isArray(document)) {
    findings.push({code: 'malformed', message: 'document is not a JSON object'});
    return report(findings);
  }
  const nowDate = now ? new Date(now) : new Date();
  const allowedHttpsUrls = new Set();
  const credentials = credentialsOf(kind, document);
  if(checkStatus) {
    for(const c of credentials) {
      for(const cs of statusEntries(c)) {
        if(typeof cs.statusListCredential === 'string') {
          allowedHttpsUrls.add(cs.statusListCredential);
        }
      }
    }
  }
  const documentLoader = createDocumentLoader({contexts, fetchJson,
    allowedHttpsUrls, contextUrls: noteContexts(document, new Set())});
  const suite = makeSuite();

  // 1) JSON-LD: every term must be defined by the (offline) contexts and no
  //    protected term may be redefined. The JCS suite itself never expands,
  //    so this is an extra check done here (the RDFC suite canonicalizes in
  //    safe mode too, and then reports the same fault as a failed proof).
  try {
    await jsonld.expand(document, {documentLoader, safe: true});
  } catch(e) {
    const found = findCheckError(e);
    findings.push(found ?
      {code: found.code, message: shorten(found.message)} :
      {code: 'invalid_jsonld', message: shorten(jsonldErrorMessage(e))});
  }

  // 2) proof.expires: DB only checks its format, not the time.
  const proofs = [
    ...toArray(document.proof),
    ...(kind === 'presentation' ? credentials.flatMap(c => toArray(c.proof)) : [])
  ];
  for(const p of proofs) {
    if(p && p.expires !== undefined) {
      const t = new Date(p.expires);
      if(!isNaN(t) && t.getTime() < nowDate.getTime()) {
        findings.push({code: 'proof_expired',
          message: `proof expired at ${p.expires}`});
      }
    }
  }

  // 3) DB verification.
  const statusChecker = checkStatus ?
    makeStatusChecker({documentLoader, suite}) :
    async () => ({verified: true});
  const common = {suite, documentLoader, checkStatus: statusChecker,
    now: nowDate};
  if(!issuerCheck) {
    // Only checks that the VM is an assertionMethod of its controller, not
    // that the controller is the credential issuer (needed for the W3C
    // vector whose issuer is https://vc.example/... but signs with did:key).
    common.purpose = new AssertionProofPurpose();
  }
  let result;
  try {
    if(kind === 'credential') {
      result = await vc.verifyCredential({...common, credential: document});
    } else {
      result = await vc.verify({...common, presentation: document,
        challenge, domain});
    }
  } catch(e) {
    // DB's vc.verify lets _checkPresentation errors escape as exceptions.
    // A recognized one is a finding like any other; an unrecognized
    // exception says nothing about the document: could not check.
    const f = classify(e);
    findings.push(f.code === 'not_verified' ?
      {code: 'verifier_error', message: f.message} : f);
    return report(findings);
  }
  if(!result.verified) {
    const dbFindings = collectFindings(result, []);
    findings.push(...(dbFindings.length ? dbFindings :
      [{code: 'not_verified', message: 'not verified'}]));
  }

  // 4) presentation holder must be the controller of the VP proof's key.
  if(kind === 'presentation' && result.verified && document.holder) {
    const holder = typeof document.holder === 'object' ?
      document.holder.id : document.holder;
    const vpResults = toArray(result.presentationResult?.results)
      .filter(r => r.verified);
    const ok = vpResults.some(r => {
      const c = r.verificationMethod?.controller;
      return (typeof c === 'object' ? c.id : c) === holder;
    });
    if(!ok) {
      findings.push({code: 'holder_mismatch',
        message: `presentation holder "${holder}" is not the controller ` +
          'of the proof verification method'});
    }
  }
  return report(findings);
}

function report(findings) {
  const outcome = outcomeOf(findings);
  return {
    verified: outcome === 'verified',
    outcome,
    reasons: [...new Set(findings.map(f => f.code))],
    errors: [...new Set(findings.map(f => `${f.code}: ${f.message}`))]
  };
}
