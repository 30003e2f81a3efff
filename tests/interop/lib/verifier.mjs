// Independent verifier for Sigil credentials/presentations, built only on
// Digital Bazaar's libraries (DataIntegrityProof + eddsa-jcs-2022).
//
// Everything is offline except: did:web documents and the status list
// credentials named by the document being verified, fetched over HTTPS.
import fs from 'node:fs';
import https from 'node:https';

import * as vc from '@digitalbazaar/vc';
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey';
import * as bsl from '@digitalbazaar/vc-bitstring-status-list';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {createVerifyCryptosuite} from '@digitalbazaar/eddsa-jcs-2022-cryptosuite';
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
 */
export function createDocumentLoader({
  contexts = new Map(), fetchJson, allowedHttpsUrls = new Set()
} = {}) {
  const keyDriver = didKeyDriver();
  keyDriver.use({
    multibaseMultikeyHeader: 'z6Mk',
    fromMultibase: Ed25519Multikey.from
  });
  const cache = new Map();
  const fetchOnce = url => {
    if(!cache.has(url)) {
      const p = fetchJson(url);
      // don't cache failures forever; but one run is short-lived anyway
      cache.set(url, p);
    }
    return cache.get(url);
  };
  const wrap = (url, document) => ({contextUrl: null, documentUrl: url, document});

  async function resolveDidWeb(didUrl) {
    const [did, fragment] = didUrl.split('#');
    const doc = await fetchOnce(didWebToUrl(did));
    if(!doc || typeof doc !== 'object' || doc.id !== did) {
      throw new Error(`DID document id "${doc?.id}" does not match "${did}"`);
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
      throw new Error(`verification method "${didUrl}" not found in DID document`);
    }
    const controller = typeof vm.controller === 'object' ?
      vm.controller.id : vm.controller;
    if(controller !== did) {
      throw new Error(`verification method "${didUrl}" controller ` +
        `"${controller}" is not "${did}"`);
    }
    // Ed25519Multikey.from wants type Multikey + the multikey/v1 context.
    return {'@context': doc['@context'], ...vm, id: didUrl};
  }

  return async function documentLoader(url) {
    if(contexts.has(url)) {
      return wrap(url, contexts.get(url));
    }
    if(BUILTIN_CONTEXTS.has(url)) {
      return wrap(url, BUILTIN_CONTEXTS.get(url));
    }
    if(url.startsWith('did:key:')) {
      const document = await keyDriver.get({url});
      if(url.includes('#') && document?.id !== url) {
        throw new Error(`verification method "${url}" not found`);
      }
      return wrap(url, document);
    }
    if(url.startsWith('did:web:')) {
      return wrap(url, await resolveDidWeb(url));
    }
    if(allowedHttpsUrls.has(url)) {
      return wrap(url, await fetchOnce(url));
    }
    throw new Error(`documentLoader: refusing to load "${url}" ` +
      '(unknown context or URL; contexts are never fetched, map them with ' +
      '--context URL=PATH)');
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

function makeSuite() {
  return new DataIntegrityProof({cryptosuite: createVerifyCryptosuite()});
}

/**
 * checkStatus for vc.verifyCredential. DB `checkStatus` only reports whether
 * the status *could be checked* (`verified`) and the bit value (`status`);
 * it does not fail on a set bit, so this wrapper does.
 */
function makeStatusChecker({documentLoader, suite}) {
  return async function checkStatus({credential}) {
    const result = await bsl.checkStatus({
      credential, documentLoader, suite,
      verifyBitstringStatusListCredential: true,
      verifyMatchingIssuers: true
    });
    if(!result.verified) {
      return result;
    }
    const problems = [];
    for(const {credentialStatus, status} of result.results) {
      const {statusPurpose, statusListIndex, statusListCredential} =
        credentialStatus;
      if(status !== false) {
        problems.push(`credential status "${statusPurpose}" is set ` +
          `(index ${statusListIndex} of ${statusListCredential})`);
      }
      try {
        const {document: slc} = await documentLoader(statusListCredential);
        const list = await bsl.decodeList(
          {encodedList: slc.credentialSubject.encodedList});
        if(list.length < MIN_STATUS_LIST_BITS) {
          problems.push(`status list ${statusListCredential} has ` +
            `${list.length} bits (< ${MIN_STATUS_LIST_BITS})`);
        }
        await jsonld.expand(slc, {documentLoader, safe: true});
      } catch(e) {
        problems.push(`status list ${statusListCredential}: ${e.message}`);
      }
    }
    if(problems.length > 0) {
      return {verified: false, error: new Error(problems.join('; ')),
        results: result.results};
    }
    return result;
  };
}

/** Collects short error strings from a DB verification result tree. */
function collectErrors(node, out, seen = new Set()) {
  if(!node || typeof node !== 'object' || seen.has(node)) {
    return out;
  }
  seen.add(node);
  if(node instanceof Error || (typeof node.message === 'string' &&
    typeof node.name === 'string')) {
    out.push(shorten(node.message || String(node)));
    if(node.cause) {
      collectErrors(node.cause, out, seen);
    }
    if(Array.isArray(node.errors)) {
      node.errors.forEach(e => collectErrors(e, out, seen));
    }
    return out;
  }
  if(Array.isArray(node)) {
    node.forEach(e => collectErrors(e, out, seen));
    return out;
  }
  for(const key of ['error', 'results', 'credentialResults',
    'presentationResult', 'statusResult', 'purposeResult']) {
    if(node[key] !== undefined) {
      collectErrors(node[key], out, seen);
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
 * Verifies a credential or presentation.
 *
 * @returns {Promise<{verified: boolean, errors: string[]}>}
 */
export async function verifyDocument({
  kind, document, challenge, domain, now, contexts = new Map(),
  fetchJson = makeHttpsFetchJson(), checkStatus = true, issuerCheck = true
}) {
  const errors = [];
  if(!document || typeof document !== 'object' || Array.isArray(document)) {
    return {verified: false, errors: ['document is not a JSON object']};
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
  const documentLoader = createDocumentLoader(
    {contexts, fetchJson, allowedHttpsUrls});
  const suite = makeSuite();

  // 1) JSON-LD: every term must be defined by the (offline) contexts and no
  //    protected term may be redefined. The JCS suite itself never expands,
  //    so this is an extra check done here.
  try {
    await jsonld.expand(document, {documentLoader, safe: true});
  } catch(e) {
    errors.push(shorten(jsonldErrorMessage(e)));
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
        errors.push(`proof expired at ${p.expires}`);
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
      if(typeof challenge !== 'string') {
        errors.push('a challenge is required to verify a presentation');
      }
      result = await vc.verify({...common, presentation: document,
        challenge: challenge ?? '', domain});
    }
  } catch(e) {
    result = {verified: false, error: e};
  }
  if(!result.verified) {
    const dbErrors = collectErrors(result, [])
      .filter(m => m !== 'Verification error(s).');
    errors.push(...(dbErrors.length ? dbErrors : ['not verified']));
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
      errors.push(`presentation holder "${holder}" is not the controller ` +
        'of the proof verification method');
    }
  }

  return {verified: result.verified === true && errors.length === 0,
    errors: [...new Set(errors)]};
}
