// Signing with Digital Bazaar's libraries only (Data Integrity proofs with
// eddsa-jcs-2022 or eddsa-rdfc-2022, Ed25519 Multikey): shared by
// selftest.mjs, forge.mjs and sign.mjs. Nothing here shares code with Sigil's
// Rust implementation.
import fs from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

import * as vc from '@digitalbazaar/vc';
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {createSignCryptosuite} from '@digitalbazaar/eddsa-jcs-2022-cryptosuite';
import {cryptosuite as rdfcCryptosuite} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import {createDocumentLoader} from './verifier.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const SIGIL_CONTEXT_FILE =
  path.resolve(HERE, '../../../src/vc/contexts/sigil-v1.jsonld');
export const VC2 = 'https://www.w3.org/ns/credentials/v2';
export const DID_CONTEXTS = ['https://www.w3.org/ns/did/v1',
  'https://w3id.org/security/multikey/v1'];

let sigilContextDoc;
function sigilContext() {
  sigilContextDoc ??= JSON.parse(fs.readFileSync(SIGIL_CONTEXT_FILE, 'utf8'));
  return sigilContextDoc;
}

/** The cryptosuites signing supports; the first is the default. */
export const CRYPTOSUITES = ['eddsa-jcs-2022', 'eddsa-rdfc-2022'];

/**
 * Offline loader for signing: built-in contexts, Sigil's at `sigilUrl` (none
 * when undefined) and `extra` (a Map of URL → context document).
 * eddsa-rdfc-2022 expands the document, so every context it uses must be
 * here; eddsa-jcs-2022 needs none.
 */
export function signingLoader(sigilUrl, extra = new Map()) {
  const sigil = sigilUrl === undefined ? [] : [[sigilUrl, sigilContext()]];
  return createDocumentLoader({
    contexts: new Map([...sigil, ...extra]),
    fetchJson: async url => {
      throw new Error(`no network while signing: ${url}`);
    }
  });
}

function signingSuite(key, proofExtras, cryptosuite = CRYPTOSUITES[0]) {
  const suites = {
    'eddsa-jcs-2022': createSignCryptosuite,
    'eddsa-rdfc-2022': () => rdfcCryptosuite
  };
  if(!suites[cryptosuite]) {
    throw new TypeError(`unsupported cryptosuite "${cryptosuite}"`);
  }
  const suite = new DataIntegrityProof({
    signer: key.signer(), cryptosuite: suites[cryptosuite]()
  });
  if(proofExtras) {
    suite.proof = {...proofExtras};
  }
  return suite;
}

/**
 * Issues `credential` (proofPurpose assertionMethod) with `key`, with
 * `cryptosuite` (default eddsa-jcs-2022) and extra contexts `contexts`.
 */
export async function issue(credential, key, sigilUrl,
  {cryptosuite, contexts} = {}) {
  return vc.issue({
    credential: structuredClone(credential),
    suite: signingSuite(key, undefined, cryptosuite),
    documentLoader: signingLoader(sigilUrl, contexts)
  });
}

/**
 * Signs `presentation` (proofPurpose authentication) with `key`, with
 * `challenge`, `domain` and, when given, `expires` in the proof.
 */
export async function prove(presentation, key,
  {challenge, domain, expires}, sigilUrl, {cryptosuite, contexts} = {}) {
  return vc.signPresentation({
    presentation: structuredClone(presentation),
    suite: signingSuite(key, expires ? {expires} : undefined, cryptosuite),
    challenge, domain,
    documentLoader: signingLoader(sigilUrl, contexts)
  });
}

/** An Ed25519 Multikey controlled by `controller`, id `controller#fragment`. */
export async function newKey(controller, fragment, seed) {
  const key = await Ed25519Multikey.generate({controller, seed});
  key.id = `${controller}#${fragment ?? key.publicKeyMultibase}`;
  return key;
}

/** A did:key and its key (verification method `did#z6Mk...`). */
export async function didKey(seed) {
  const key = await Ed25519Multikey.generate({seed});
  const did = `did:key:${key.publicKeyMultibase}`;
  key.controller = did;
  key.id = `${did}#${key.publicKeyMultibase}`;
  return {did, key};
}

/** A DID document listing `key` for authentication and assertionMethod. */
export function didDocument(did, key) {
  return {
    '@context': DID_CONTEXTS,
    id: did,
    verificationMethod: [{id: key.id, type: 'Multikey', controller: did,
      publicKeyMultibase: key.publicKeyMultibase}],
    assertionMethod: [key.id],
    authentication: [key.id]
  };
}

/** Now + `seconds` as an RFC 3339 UTC time to the second. */
export function isoIn(seconds, from = Date.now()) {
  return new Date(from + seconds * 1000).toISOString()
    .replace(/\.\d{3}Z$/, 'Z');
}
