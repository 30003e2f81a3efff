#!/usr/bin/env node
// An attacker's tool: forges a perfectly signed action presentation whose
// authority is SELF-ISSUED. Signed with Digital Bazaar's libraries only (not
// Sigil's Rust code), so Sigil's integration tests can show that its verifier
// refuses authority from an issuer it does not trust, even when every
// signature, challenge, domain, lifetime and delegation scope checks out.
//
//   node forge.mjs --challenge C --domain D --action A [--resource R]
//     [--amount X --currency EUR] [--status-url URL]... [--holder DID]
//     [--issuer-seed HEX32] [--holder-seed HEX32] [--expires-in SECONDS]
//     [--no-identity] [--context-url URL] [--issuer DID]
//     [--cryptosuite eddsa-jcs-2022|eddsa-rdfc-2022]
//   node forge.mjs --generic --challenge C --domain D [--subject ID]
//     [--no-holder] [--status-url URL]... [--issuer-seed HEX32]
//     [--holder-seed HEX32] [--expires-in SECONDS] [--issuer DID]
//     [--cryptosuite eddsa-jcs-2022|eddsa-rdfc-2022]
//
// - issuer: a did:key (Ed25519 Multikey), from --issuer-seed when given;
//   --issuer DID names another DID (e.g. a did:web) whose `${DID}#key-1` is
//   that key (its DID document is printed as issuer_did_document)
// - --cryptosuite: every proof's cryptosuite (default eddsa-jcs-2022)
// - holder: a did:key from --holder-seed (or fresh); --holder DID overrides
//   the holder id (e.g. did:web:127.0.0.1%3A4567, which a verifier will try
//   to resolve) and the holder proof is then made by `${DID}#key-1` with the
//   holder key (the same key; its DID document is printed for serving it)
// - credentials (issuer → holder, proofPurpose assertionMethod):
//   DelegatedAuthorityCredential granting exactly the action A on every
//   resource ("**"), with an amount limit equal to --amount when given, and
//   (unless --no-identity) an AgentIdentityCredential; each --status-url
//   adds a revocation BitstringStatusListEntry to both
// - presentation: VC 2.0, type [VerifiablePresentation, ActionPresentation],
//   action {name, resource, context}, proofPurpose authentication with
//   challenge, domain, created and expires (now + --expires-in, default 300)
// - --context-url: where Sigil's context is said to live (the presentation's
//   second @context entry; default https://sigil.example/ns/v1). Verify with
//   verify.mjs --context URL=src/vc/contexts/sigil-v1.jsonld.
// - --generic: an ordinary VC 2.0 presentation instead, for verifiers of any
//   presentation (no Sigil terms): @context [VC 2.0] only, type
//   [VerifiablePresentation], one credential of type
//   https://example.org/vocab#MembershipCredential (each --status-url adds a
//   revocation entry to it) from the issuer about --subject (default
//   did:example:ebfeb1f712ebc6f1c276e12ec21, someone other than the holder),
//   no action, and a proof with challenge and domain but no expires unless
//   --expires-in is given. --no-holder leaves the holder property out (the
//   proof is still made with the holder's did:key).
//
// Prints one JSON object:
//   {"presentation": {...}, "issuer": "did:key:...", "holder": "...",
//    "holder_did_document": {...}, "issuer_did_document": {...}}
//   (--generic adds "subject")
// Exit 0, or 2 with a message on stderr for a usage error.
import crypto from 'node:crypto';

import {
  CRYPTOSUITES, VC2, didDocument, didKey, isoIn, issue as issueWith, newKey,
  prove as proveWith
} from './lib/signing.mjs';

const USAGE = 'usage: node forge.mjs --challenge C --domain D --action A ' +
  '[--resource R] [--amount X --currency EUR] [--status-url URL]... ' +
  '[--holder DID] [--issuer-seed HEX32] [--holder-seed HEX32] ' +
  '[--expires-in SECONDS] [--no-identity] [--context-url URL] ' +
  '[--issuer DID] [--cryptosuite eddsa-jcs-2022|eddsa-rdfc-2022]\n' +
  '   or: node forge.mjs --generic --challenge C --domain D [--subject ID] ' +
  '[--no-holder] [--status-url URL]... [--issuer-seed HEX32] ' +
  '[--holder-seed HEX32] [--expires-in SECONDS] [--issuer DID] ' +
  '[--cryptosuite eddsa-jcs-2022|eddsa-rdfc-2022]';

class UsageError extends Error {}

function parseArgs(argv) {
  const o = {statusUrls: [], identity: true, expiresIn: 300,
    contextUrl: 'https://sigil.example/ns/v1', generic: false,
    namedHolder: true, subject: 'did:example:ebfeb1f712ebc6f1c276e12ec21',
    cryptosuite: CRYPTOSUITES[0]};
  const value = (i, name) => {
    if(i + 1 >= argv.length || argv[i + 1].startsWith('--')) {
      throw new UsageError(`${name} requires a value`);
    }
    return argv[i + 1];
  };
  for(let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch(a) {
      case '--challenge': o.challenge = value(i, a); i++; break;
      case '--domain': o.domain = value(i, a); i++; break;
      case '--action': o.action = value(i, a); i++; break;
      case '--resource': o.resource = value(i, a); i++; break;
      case '--amount': o.amount = value(i, a); i++; break;
      case '--currency': o.currency = value(i, a); i++; break;
      case '--status-url': o.statusUrls.push(value(i, a)); i++; break;
      case '--holder': o.holder = value(i, a); i++; break;
      case '--issuer': o.issuer = value(i, a); i++; break;
      case '--cryptosuite': o.cryptosuite = value(i, a); i++; break;
      case '--issuer-seed': o.issuerSeed = seed(value(i, a), a); i++; break;
      case '--holder-seed': o.holderSeed = seed(value(i, a), a); i++; break;
      case '--expires-in':
        o.expiresIn = Number(value(i, a)); o.expiresGiven = true; i++; break;
      case '--context-url': o.contextUrl = value(i, a); i++; break;
      case '--no-identity': o.identity = false; break;
      case '--generic': o.generic = true; break;
      case '--no-holder': o.namedHolder = false; break;
      case '--subject': o.subject = value(i, a); o.subjectGiven = true; i++; break;
      case '-h': case '--help': throw new UsageError(USAGE);
      default: throw new UsageError(`unknown argument ${a}`);
    }
  }
  for(const k of o.generic ? ['challenge', 'domain'] : ['challenge', 'domain', 'action']) {
    if(o[k] === undefined) {
      throw new UsageError(`--${k} is required`);
    }
  }
  if((o.amount === undefined) !== (o.currency === undefined)) {
    throw new UsageError('--amount and --currency go together');
  }
  if(o.amount !== undefined && !/^\d+(\.\d+)?$/.test(o.amount)) {
    throw new UsageError('--amount must be a decimal string like 120.00');
  }
  if(!Number.isInteger(o.expiresIn) || o.expiresIn <= 0) {
    throw new UsageError('--expires-in must be a positive whole number of seconds');
  }
  if(!o.generic && (!o.namedHolder || o.subjectGiven)) {
    throw new UsageError('--no-holder and --subject go with --generic');
  }
  for(const k of ['holder', 'issuer']) {
    if(o[k] !== undefined && !/^did:[a-z0-9]+:[^\s#?]+$/.test(o[k])) {
      throw new UsageError(`--${k} must be a DID`);
    }
  }
  if(!CRYPTOSUITES.includes(o.cryptosuite)) {
    throw new UsageError(`--cryptosuite must be one of ${CRYPTOSUITES.join(', ')}`);
  }
  for(const u of [...o.statusUrls, o.contextUrl]) {
    try {
      new URL(u);
    } catch(e) {
      throw new UsageError(`not a URL: ${u}`);
    }
  }
  return o;
}

function seed(hex, name) {
  if(!/^[0-9a-fA-F]{64}$/.test(hex)) {
    throw new UsageError(`${name} must be 32 bytes in hex (64 digits)`);
  }
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

/** The issuer: a did:key, or the --issuer DID with `${DID}#key-1`. */
async function forgeIssuer(o) {
  if(o.issuer === undefined) {
    return didKey(o.issuerSeed);
  }
  return {did: o.issuer, key: await newKey(o.issuer, 'key-1', o.issuerSeed)};
}

// Every proof of one run is made with the cryptosuite asked for.
let cryptosuite = CRYPTOSUITES[0];
const issue = (c, key, sigilUrl) => issueWith(c, key, sigilUrl, {cryptosuite});
const prove = (p, key, options, sigilUrl) =>
  proveWith(p, key, options, sigilUrl, {cryptosuite});

function statusEntries(urls, base) {
  return urls.map((url, i) => ({
    id: `${url}#${base + i}`,
    type: 'BitstringStatusListEntry',
    statusPurpose: 'revocation',
    statusListIndex: String(base + i),
    statusListCredential: url
  }));
}

/** An ordinary VC 2.0 presentation: nothing of Sigil's in it (see --generic). */
async function forgeGeneric(o) {
  const now = Date.now();
  const issuer = await forgeIssuer(o);
  const {did: holder, key: holderKey} = await didKey(o.holderSeed);
  const credential = {
    '@context': [VC2],
    id: `urn:uuid:${crypto.randomUUID()}`,
    // An absolute URL: the base context defines no such term.
    type: ['VerifiableCredential', 'https://example.org/vocab#MembershipCredential'],
    issuer: issuer.did,
    validFrom: isoIn(-60, now),
    credentialSubject: {id: o.subject, name: 'A member of the Example Club'}
  };
  if(o.statusUrls.length > 0) {
    credential.credentialStatus = statusEntries(o.statusUrls, 3000);
  }
  const presentation = {
    '@context': [VC2],
    id: `urn:uuid:${crypto.randomUUID()}`,
    type: ['VerifiablePresentation'],
    verifiableCredential: [await issue(credential, issuer.key)]
  };
  if(o.namedHolder) {
    presentation.holder = holder;
  }
  const expires = o.expiresGiven ? isoIn(o.expiresIn, now) : undefined;
  return {
    presentation: await prove(presentation, holderKey,
      {challenge: o.challenge, domain: o.domain, expires}),
    issuer: issuer.did, holder, subject: o.subject,
    holder_did_document: didDocument(holder, holderKey),
    issuer_did_document: didDocument(issuer.did, issuer.key)
  };
}

async function forge(o) {
  if(o.generic) {
    return forgeGeneric(o);
  }
  const now = Date.now();
  const issuer = await forgeIssuer(o);
  let holder = o.holder;
  let holderKey;
  if(holder === undefined) {
    const k = await didKey(o.holderSeed);
    holder = k.did;
    holderKey = k.key;
  } else {
    holderKey = await newKey(holder, 'key-1', o.holderSeed);
  }
  const ctx = [VC2, o.contextUrl];
  const withStatus = (c, base) => {
    if(o.statusUrls.length > 0) {
      c.credentialStatus = statusEntries(o.statusUrls, base);
    }
    return c;
  };

  const authority = {actions: [o.action], resources: ['**']};
  if(o.amount !== undefined) {
    authority.limits = {amount: {max: o.amount, currency: o.currency}};
  }
  const credentials = [];
  if(o.identity) {
    credentials.push(await issue(withStatus({
      '@context': ctx,
      id: `urn:uuid:${crypto.randomUUID()}`,
      type: ['VerifiableCredential', 'AgentIdentityCredential'],
      issuer: issuer.did,
      validFrom: isoIn(-60, now),
      credentialSubject: {
        id: holder, type: 'Agent', name: 'forged-bot',
        operator: 'Mallory', created: isoIn(-60, now)
      }
    }, 1000), issuer.key, o.contextUrl));
  }
  credentials.push(await issue(withStatus({
    '@context': ctx,
    id: `urn:uuid:${crypto.randomUUID()}`,
    type: ['VerifiableCredential', 'DelegatedAuthorityCredential'],
    issuer: issuer.did,
    validFrom: isoIn(-60, now),
    validUntil: isoIn(86400, now),
    credentialSubject: {
      id: holder,
      // Sigil's shape (src/vc/credential.rs, src/policy/authority.rs): the
      // principal beside the authority, not inside it.
      principal: {identifier: 'mallory@evil.example', kind: 'person',
        name: 'Mallory'},
      authority
    }
  }, 2000), issuer.key, o.contextUrl));

  const action = {name: o.action};
  if(o.resource !== undefined) {
    action.resource = o.resource;
  }
  action.context = o.amount === undefined ? {} :
    {amount: o.amount, currency: o.currency};
  const presentation = await prove({
    '@context': ctx,
    id: `urn:uuid:${crypto.randomUUID()}`,
    type: ['VerifiablePresentation', 'ActionPresentation'],
    holder,
    verifiableCredential: credentials,
    action
  }, holderKey, {challenge: o.challenge, domain: o.domain,
    expires: isoIn(o.expiresIn, now)}, o.contextUrl);
  return {presentation, issuer: issuer.did, holder,
    holder_did_document: didDocument(holder, holderKey),
    issuer_did_document: didDocument(issuer.did, issuer.key)};
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch(e) {
  if(!(e instanceof UsageError)) {
    throw e;
  }
  process.stderr.write(`forge.mjs: ${e.message}\n${e.message === USAGE ? '' : USAGE + '\n'}`);
  process.exit(2);
}
cryptosuite = opts.cryptosuite;
process.stdout.write(JSON.stringify(await forge(opts)) + '\n');
