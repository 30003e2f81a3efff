#!/usr/bin/env node
// Third-party verifier CLI for Sigil VCs/VPs (DataIntegrityProof, eddsa-jcs-2022).
//
//   node verify.mjs --kind credential|presentation FILE [--challenge C]
//     [--domain D] [--ca CERT.pem] [--context URL=PATH ...] [--no-status]
//     [--now ISO-8601] [--no-issuer-check]
//
// Prints one JSON line
//   {"verified": bool, "outcome": "verified"|"rejected"|"could_not_check",
//    "reasons": [code, ...], "errors": ["code: message", ...]}
// and exits 0 = verified, 1 = rejected, 3 = could not check (a DID document,
// status list or context could not be obtained: TLS, DNS, HTTP, unmapped
// context; or the verifier itself failed), 2 = usage error (outcome
// "usage_error"). Reason codes: REASONS in lib/verifier.mjs, README.md.
// A presentation requires --challenge.
import fs from 'node:fs';
import {
  UsageError, loadContextPairs, makeHttpsFetchJson, verifyDocument
} from './lib/verifier.mjs';

const USAGE = 'usage: node verify.mjs --kind credential|presentation FILE ' +
  '[--challenge C] [--domain D] [--ca CERT.pem] [--context URL=PATH ...] ' +
  '[--no-status] [--now ISO-8601] [--no-issuer-check]';

const EXIT = {verified: 0, rejected: 1, usage_error: 2, could_not_check: 3};

function out({outcome, reasons, errors}) {
  process.stdout.write(JSON.stringify(
    {verified: outcome === 'verified', outcome, reasons, errors}) + '\n');
  process.exit(EXIT[outcome]);
}

function usage(message) {
  process.stderr.write(USAGE + '\n');
  out({outcome: 'usage_error', reasons: ['usage'],
    errors: [message === 'help' ? USAGE : message]});
}

function parseArgs(argv) {
  const opts = {contexts: [], status: true, issuerCheck: true};
  const takeValue = (i, name) => {
    if(i + 1 >= argv.length || argv[i + 1].startsWith('--')) {
      throw new UsageError(`${name} requires a value`);
    }
    return argv[i + 1];
  };
  for(let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch(a) {
      case '--kind': opts.kind = takeValue(i, a); i++; break;
      case '--challenge': opts.challenge = takeValue(i, a); i++; break;
      case '--domain': opts.domain = takeValue(i, a); i++; break;
      case '--ca': opts.ca = takeValue(i, a); i++; break;
      case '--context': opts.contexts.push(takeValue(i, a)); i++; break;
      case '--now': opts.now = takeValue(i, a); i++; break;
      case '--no-status': opts.status = false; break;
      case '--no-issuer-check': opts.issuerCheck = false; break;
      case '-h': case '--help': throw new UsageError('help');
      default:
        if(a.startsWith('--')) {
          throw new UsageError(`unknown option ${a}`);
        }
        if(opts.file !== undefined) {
          throw new UsageError(`unexpected argument ${a}`);
        }
        opts.file = a;
    }
  }
  if(!['credential', 'presentation'].includes(opts.kind)) {
    throw new UsageError('--kind must be credential or presentation');
  }
  if(opts.file === undefined) {
    throw new UsageError('FILE is required');
  }
  if(opts.kind === 'presentation' && opts.challenge === undefined) {
    throw new UsageError('--challenge is required to verify a presentation');
  }
  if(opts.now !== undefined && isNaN(new Date(opts.now))) {
    throw new UsageError('--now must be an ISO-8601 date-time');
  }
  return opts;
}

async function main() {
  let opts, raw, document, contexts, ca;
  try {
    opts = parseArgs(process.argv.slice(2));
    try {
      raw = fs.readFileSync(opts.file, 'utf8');
    } catch(e) {
      throw new UsageError(`cannot read ${opts.file}: ${e.message}`);
    }
    if(opts.ca) {
      try {
        ca = fs.readFileSync(opts.ca, 'utf8');
      } catch(e) {
        throw new UsageError(`cannot read CA file ${opts.ca}: ${e.message}`);
      }
    }
    contexts = loadContextPairs(opts.contexts);
  } catch(e) {
    return usage(e instanceof UsageError ? e.message : `usage error: ${e.message}`);
  }
  try {
    document = JSON.parse(raw);
  } catch(e) {
    return out({outcome: 'rejected', reasons: ['malformed'],
      errors: [`malformed: ${opts.file} is not valid JSON: ${e.message}`]});
  }
  try {
    return out(await verifyDocument({
      kind: opts.kind, document, challenge: opts.challenge,
      domain: opts.domain, now: opts.now, contexts,
      fetchJson: makeHttpsFetchJson({ca}), checkStatus: opts.status,
      issuerCheck: opts.issuerCheck
    }));
  } catch(e) {
    if(e instanceof UsageError) {
      return usage(e.message);
    }
    // A bug or an unexpected failure in the verifier: nothing was decided
    // about the document, so this is "could not check", never "rejected".
    return out({outcome: 'could_not_check', reasons: ['verifier_error'],
      errors: [`verifier_error: ${e.stack || e.message}`]});
  }
}

main();
