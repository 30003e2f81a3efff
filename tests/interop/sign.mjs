#!/usr/bin/env node
// An independent signer: signs the credential or presentation in FILE with
// Digital Bazaar's libraries only (not Sigil's Rust code), with either eddsa
// cryptosuite and a did:key or did:web key, so Sigil's integration tests can
// show that Sigil verifies what other implementations sign.
//
//   node sign.mjs --kind credential|presentation FILE
//     [--cryptosuite eddsa-jcs-2022|eddsa-rdfc-2022] [--seed HEX32]
//     [--did did:web:...] [--challenge C] [--domain D] [--expires-in SECONDS]
//     [--context URL=PATH ...]
//   node sign.mjs --describe [--seed HEX32] [--did did:web:...]
//
// - the key: an Ed25519 Multikey from --seed (fresh without it). Its DID is
//   the did:key of that key (verification method `did:key:z…#z…`) or, with
//   --did, that did:web (verification method `${DID}#key-1`; its DID document
//   is printed for the caller to host at the did:web URL).
// - the document is signed as it is: the caller names the `issuer` (or
//   `holder`) it wants, so a test can also sign for someone else's name.
// - credential: proofPurpose assertionMethod. presentation: proofPurpose
//   authentication, with --challenge and --domain (and `expires` = now +
//   --expires-in) in the proof; its credentials are left as they are.
// - --cryptosuite: eddsa-jcs-2022 (default) or eddsa-rdfc-2022. RDFC
//   expands the document offline: contexts other than the built-in ones
//   (VC 2.0 and 1.1, data integrity, multikey, DID, status list) must be
//   mapped with --context.
// - --describe: prints the DID and DID document of the key, signs nothing.
//
// Prints one JSON object:
//   {"document": {...signed...}, "did": "...", "verification_method": "...",
//    "did_document": {...}}            (--describe: without "document")
// Exit 0, or 2 with a message on stderr for a usage error (1: signing failed).
import fs from 'node:fs';

import {CRYPTOSUITES, didDocument, didKey, isoIn, issue, newKey, prove}
  from './lib/signing.mjs';
import {UsageError, loadContextPairs} from './lib/verifier.mjs';

const USAGE = 'usage: node sign.mjs --kind credential|presentation FILE ' +
  '[--cryptosuite eddsa-jcs-2022|eddsa-rdfc-2022] [--seed HEX32] ' +
  '[--did did:web:...] [--challenge C] [--domain D] [--expires-in SECONDS] ' +
  '[--context URL=PATH ...]\n' +
  '   or: node sign.mjs --describe [--seed HEX32] [--did did:web:...]';

function parseArgs(argv) {
  const o = {cryptosuite: CRYPTOSUITES[0], contexts: [], describe: false};
  const value = (i, name) => {
    if(i + 1 >= argv.length || argv[i + 1].startsWith('--')) {
      throw new UsageError(`${name} requires a value`);
    }
    return argv[i + 1];
  };
  for(let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch(a) {
      case '--kind': o.kind = value(i, a); i++; break;
      case '--cryptosuite': o.cryptosuite = value(i, a); i++; break;
      case '--seed': o.seed = value(i, a); i++; break;
      case '--did': o.did = value(i, a); i++; break;
      case '--challenge': o.challenge = value(i, a); i++; break;
      case '--domain': o.domain = value(i, a); i++; break;
      case '--expires-in': o.expiresIn = Number(value(i, a)); i++; break;
      case '--context': o.contexts.push(value(i, a)); i++; break;
      case '--describe': o.describe = true; break;
      case '-h': case '--help': throw new UsageError(USAGE);
      default:
        if(a.startsWith('--')) {
          throw new UsageError(`unknown option ${a}`);
        }
        if(o.file !== undefined) {
          throw new UsageError(`unexpected argument ${a}`);
        }
        o.file = a;
    }
  }
  if(o.seed !== undefined) {
    if(!/^[0-9a-fA-F]{64}$/.test(o.seed)) {
      throw new UsageError('--seed must be 32 bytes in hex (64 digits)');
    }
    o.seed = Uint8Array.from(Buffer.from(o.seed, 'hex'));
  }
  if(o.did !== undefined && !/^did:web:[^\s#?/]+$/.test(o.did)) {
    throw new UsageError('--did must be a did:web DID (no fragment, query or /)');
  }
  if(o.describe) {
    if(o.file !== undefined || o.kind !== undefined) {
      throw new UsageError('--describe signs nothing: no --kind or FILE');
    }
    return o;
  }
  if(!['credential', 'presentation'].includes(o.kind)) {
    throw new UsageError('--kind must be credential or presentation');
  }
  if(o.file === undefined) {
    throw new UsageError('FILE is required');
  }
  if(!CRYPTOSUITES.includes(o.cryptosuite)) {
    throw new UsageError(`--cryptosuite must be one of ${CRYPTOSUITES.join(', ')}`);
  }
  const vpOnly = ['challenge', 'domain', 'expiresIn'].filter(k => o[k] !== undefined);
  if(o.kind === 'credential' && vpOnly.length > 0) {
    throw new UsageError('--challenge, --domain and --expires-in go with --kind presentation');
  }
  if(o.expiresIn !== undefined &&
    (!Number.isInteger(o.expiresIn) || o.expiresIn <= 0)) {
    throw new UsageError('--expires-in must be a positive whole number of seconds');
  }
  let text;
  try {
    text = fs.readFileSync(o.file, 'utf8');
  } catch(e) {
    throw new UsageError(`cannot read ${o.file}: ${e.message}`);
  }
  try {
    o.document = JSON.parse(text);
  } catch(e) {
    throw new UsageError(`${o.file} is not JSON: ${e.message}`);
  }
  o.contextMap = loadContextPairs(o.contexts);
  return o;
}

async function signer(o) {
  if(o.did === undefined) {
    return didKey(o.seed);
  }
  return {did: o.did, key: await newKey(o.did, 'key-1', o.seed)};
}

async function main(o) {
  const {did, key} = await signer(o);
  const out = {did, verification_method: key.id,
    did_document: didDocument(did, key)};
  if(o.describe) {
    return out;
  }
  const options = {cryptosuite: o.cryptosuite, contexts: o.contextMap};
  const document = o.kind === 'credential' ?
    await issue(o.document, key, undefined, options) :
    await prove(o.document, key, {
      challenge: o.challenge, domain: o.domain,
      expires: o.expiresIn === undefined ? undefined : isoIn(o.expiresIn)
    }, undefined, options);
  return {document, ...out};
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch(e) {
  if(!(e instanceof UsageError)) {
    throw e;
  }
  process.stderr.write(`sign.mjs: ${e.message}\n${e.message === USAGE ? '' : USAGE + '\n'}`);
  process.exit(2);
}
try {
  process.stdout.write(JSON.stringify(await main(opts)) + '\n');
} catch(e) {
  process.stderr.write(`sign.mjs: signing failed: ${e.stack || e.message}\n`);
  process.exit(1);
}
