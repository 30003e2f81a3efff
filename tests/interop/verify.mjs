#!/usr/bin/env node
// Third-party verifier CLI for Sigil VCs/VPs (DataIntegrityProof, eddsa-jcs-2022).
//
//   node verify.mjs --kind credential|presentation FILE [--challenge C]
//     [--domain D] [--ca CERT.pem] [--context URL=PATH ...] [--no-status]
//     [--now ISO-8601] [--no-issuer-check]
//
// Prints one JSON line {"verified": bool, "errors": [...]} and exits
// 0 = verified, 1 = not verified, 2 = usage error.
import fs from 'node:fs';
import {
  UsageError, loadContextPairs, makeHttpsFetchJson, verifyDocument
} from './lib/verifier.mjs';

const USAGE = 'usage: node verify.mjs --kind credential|presentation FILE ' +
  '[--challenge C] [--domain D] [--ca CERT.pem] [--context URL=PATH ...] ' +
  '[--no-status] [--now ISO-8601] [--no-issuer-check]';

function out(verified, errors, code) {
  process.stdout.write(JSON.stringify({verified, errors}) + '\n');
  process.exit(code);
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
  if(opts.now !== undefined && isNaN(new Date(opts.now))) {
    throw new UsageError('--now must be an ISO-8601 date-time');
  }
  return opts;
}

async function main() {
  let opts, document, contexts, ca;
  try {
    opts = parseArgs(process.argv.slice(2));
    let text;
    try {
      text = fs.readFileSync(opts.file, 'utf8');
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
    try {
      document = JSON.parse(text);
    } catch(e) {
      return out(false, [`${opts.file} is not valid JSON: ${e.message}`], 1);
    }
  } catch(e) {
    if(e instanceof UsageError) {
      process.stderr.write(USAGE + '\n');
      return out(false, [e.message === 'help' ? USAGE : e.message], 2);
    }
    return out(false, [`usage error: ${e.message}`], 2);
  }
  try {
    const {verified, errors} = await verifyDocument({
      kind: opts.kind, document, challenge: opts.challenge,
      domain: opts.domain, now: opts.now, contexts,
      fetchJson: makeHttpsFetchJson({ca}), checkStatus: opts.status,
      issuerCheck: opts.issuerCheck
    });
    return out(verified, errors, verified ? 0 : 1);
  } catch(e) {
    return out(false, [`verifier error: ${e.message}`], 1);
  }
}

main();
