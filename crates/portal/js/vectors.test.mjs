// Runs the portal's in-browser verifier (../assets/verify.mjs) against
// docs/vectors/, so the JavaScript and the Rust implementations of
// docs/FORMAT.md agree on every vector. Run by `cargo test -p gongkai-portal`
// (tests/js.rs) with `node --test`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as v from '../assets/verify.mjs';
import { ed25519 } from '@noble/curves/ed25519.js';

const dir = new URL('../../../docs/vectors/', import.meta.url);
const vec = JSON.parse(readFileSync(new URL('vectors.json', dir), 'utf8'));
const entries = vec.entries.map((e) => v.fromHex(e.entry));
const genesisKey = v.fromHex(vec.keys[0].public_key);

test('hashes, framing and decoding of every entry', () => {
  for (const [i, e] of vec.entries.entries()) {
    const p = v.parseEntry(entries[i]);
    assert.equal(v.hex(p.body), e.body, `body ${i}`);
    assert.equal(v.hex(p.signature), e.signature, `signature ${i}`);
    assert.equal(v.hex(p.leafHash), e.leaf_hash, `leaf hash ${i}`);
    assert.equal(v.hex(p.bodyHash), e.body_hash, `body hash ${i}`);
    assert.equal(v.hex(p.event.signer), e.signer, `signer ${i}`);
    assert.equal(p.event.kind, e.kind, `kind ${i}`);
    assert.equal(p.event.index, BigInt(e.index));
  }
  assert.equal(v.hex(v.EMPTY_ROOT), vec.empty_root);
});

test('the whole chain verifies, following the key rotation', () => {
  const { key } = v.verifyRun(vec.origin, 0, entries, genesisKey);
  assert.equal(v.hex(key), vec.keys[1].public_key);
});

test('roots at every size', () => {
  const leaves = vec.entries.map((e) => v.fromHex(e.leaf_hash));
  for (const r of vec.roots) assert.equal(v.hex(v.rootOf(leaves.slice(0, r.size))), r.root, `root ${r.size}`);
});

test('inclusion proofs, and a wrong one fails', () => {
  for (const p of vec.inclusion_proofs) {
    const proof = p.proof.map(v.fromHex);
    v.verifyInclusion(p.index, p.size, v.fromHex(p.leaf_hash), proof, v.fromHex(p.root));
    if (proof.length > 0) {
      const bad = proof.map((h, i) => (i === 0 ? v.fromHex(p.leaf_hash) : h));
      assert.throws(() => v.verifyInclusion(p.index, p.size, v.fromHex(p.leaf_hash), bad, v.fromHex(p.root)), { code: 'bad_proof' });
    }
    assert.throws(() => v.verifyInclusion(p.index, p.size, v.fromHex(p.leaf_hash), [...proof, proof[0] ?? v.EMPTY_ROOT], v.fromHex(p.root)), { code: 'bad_proof' });
  }
});

test('consistency proofs, including m = 0 and m = n', () => {
  for (const c of vec.consistency_proofs) {
    const proof = c.proof.map(v.fromHex);
    v.verifyConsistency(c.old_size, c.new_size, v.fromHex(c.old_root), v.fromHex(c.new_root), proof);
    assert.throws(() => v.verifyConsistency(c.old_size, c.new_size, v.fromHex(c.new_root === c.old_root ? vec.empty_root : c.new_root), v.fromHex(c.new_root), proof), { code: 'bad_proof' });
  }
});

test('key fingerprints: the one form the CLI and the portal print (FORMAT.md § 10)', () => {
  for (const k of [...vec.keys, vec.witness]) {
    assert.equal(v.fingerprint(v.parseVkey(k.vkey)), k.fingerprint);
  }
});

test('the checkpoint: both log keys and the witness', () => {
  const note = readFileSync(new URL('checkpoint.txt', dir), 'utf8');
  const keys = [readFileSync(new URL('log-genesis.vkey', dir), 'utf8'), readFileSync(new URL('log-rotated.vkey', dir), 'utf8')].map(v.parseVkey);
  const witness = v.parseVkey(readFileSync(new URL('witness.vkey', dir), 'utf8'));
  for (const k of keys) {
    const cp = v.verifyCheckpoint(note, [k], [witness]);
    assert.equal(cp.size, vec.entries.length);
    assert.equal(v.hex(cp.root), vec.roots[vec.roots.length - 1].root);
    assert.equal(cp.cosignatures.length, 1);
    assert.equal(cp.cosignatures[0].time, vec.checkpoint_cosigned_at);
  }
  // A cosignature is never a log signature, nor the reverse.
  assert.throws(() => v.verifyCheckpoint(note, [{ ...witness, type: 0x01 }], []), { code: 'bad_checkpoint' });
  // One flipped bit in the text breaks every signature.
  const n = vec.entries.length;
  const tampered = note.replace(`\n${n}\n`, `\n${n + 1}\n`);
  assert.notEqual(tampered, note);
  assert.throws(() => v.verifyCheckpoint(tampered, keys, [witness]), { code: 'bad_checkpoint' });
});

test('content digests', () => {
  for (const c of vec.content) {
    assert.equal(v.hex(v.contentDigest(v.fromHex(c.salt), new TextEncoder().encode(c.content_utf8))), c.digest);
  }
});

// Rules this verifier does not check (the catalog rules, §7, need the whole
// catalog fold; the portal leaves them to `gongkai verify`/`audit`).
const NOT_CHECKED_HERE = new Set(['rule:item-id-unique']);

test('every invalid log is rejected at the expected index', () => {
  for (const bad of vec.invalid) {
    const run = () => v.verifyRun(vec.origin, 0, bad.entries.map(v.fromHex), genesisKey);
    if (NOT_CHECKED_HERE.has(bad.expect)) {
      assert.doesNotThrow(run, bad.description);
      continue;
    }
    assert.throws(run, (e) => {
      assert.equal(e.code, bad.expect, bad.description);
      assert.equal(e.index, bad.index, bad.description);
      return true;
    });
  }
});

test('strict base64 and vkeys', () => {
  assert.throws(() => v.fromBase64('YQ'), { code: 'encoding' });
  assert.throws(() => v.fromBase64('YR=='), { code: 'encoding' });
  assert.deepEqual(v.fromBase64('YQ=='), Uint8Array.of(0x61));
  const k = vec.keys[0].vkey;
  assert.throws(() => v.parseVkey(k.replace('+52bd93a4+', '+52bd93a5+')), { code: 'bad_key' });
  // Base64 may hold '+': a key whose encoding has one still parses.
  for (let seed = 0; seed < 64; seed++) {
    const pub = v.fromHex(vec.keys[0].public_key).map((b, i) => (i === 0 ? b : b ^ seed));
    const raw = new Uint8Array([0x01, ...pub]);
    const b64 = v.toBase64(raw);
    const name = 'gongkai.example/510122/finance';
    const vk = `${name}+${v.hex(v.keyId(name, 0x01, pub))}+${b64}`;
    assert.equal(v.hex(v.parseVkey(vk).key), v.hex(pub), vk);
  }
});

test('the proof-bundle vector (FORMAT.md § 18)', () => {
  const bundle = JSON.parse(readFileSync(new URL('proof-bundle.json', dir), 'utf8'));
  const trust = {
    logKeys: [readFileSync(new URL('log-genesis.vkey', dir), 'utf8'), readFileSync(new URL('log-rotated.vkey', dir), 'utf8')],
    witnesses: [readFileSync(new URL('witness.vkey', dir), 'utf8')],
    quorum: 1,
  };
  const r = v.verifyProofBundle(bundle, trust);
  assert.deepEqual(r.entries.map((e) => e.index), bundle.entries.map((e) => e.index));
  // Unknown fields, another item, a flipped proof hash, a missing quorum.
  assert.throws(() => v.verifyProofBundle({ ...bundle, extra: 1 }, trust), { code: 'bad_bundle' });
  assert.throws(() => v.verifyProofBundle({ ...bundle, item_id: 'other' }, trust), { code: 'bad_bundle' });
  const flipped = structuredClone(bundle);
  flipped.entries[0].proof[0] = v.toBase64(v.EMPTY_ROOT);
  assert.throws(() => v.verifyProofBundle(flipped, trust), { code: 'bad_proof' });
  assert.throws(() => v.verifyProofBundle(bundle, { ...trust, quorum: 2 }), { code: 'not_cosigned' });
  assert.throws(() => v.verifyProofBundle(bundle, { ...trust, logKeys: [trust.witnesses[0]] }), { code: 'bad_checkpoint' });
});

test('cosignatures count once per witness name (FORMAT.md § 16.4)', () => {
  const bundle = JSON.parse(readFileSync(new URL('proof-bundle.json', dir), 'utf8'));
  const witness = readFileSync(new URL('witness.vkey', dir), 'utf8').trim();
  const note = bundle.checkpoint;
  const text = note.slice(0, note.indexOf('\n\n') + 1);
  const enc = new TextEncoder();
  // A cosignature line (FORMAT.md § 11.2) by a fresh key under `name`.
  const cosign = (name, seed, t) => {
    const sk = new Uint8Array(32).fill(seed);
    const pub = ed25519.getPublicKey(sk);
    const id = v.keyId(name, 0x04, pub);
    const vkey = `${name}+${v.hex(id)}+${v.toBase64(new Uint8Array([0x04, ...pub]))}`;
    const time = new Uint8Array(8);
    new DataView(time.buffer).setBigUint64(0, BigInt(t));
    const sig = ed25519.sign(enc.encode(`cosignature/v1\ntime ${t}\n${text}`), sk);
    return { vkey, line: `— ${name} ${v.toBase64(new Uint8Array([...id, ...time, ...sig]))}\n` };
  };
  const other = cosign('third-party.example', 7, 1_700_000_000);
  const rotated = cosign(v.parseVkey(witness).name, 8, 1_700_000_001);
  const trust = {
    logKeys: [readFileSync(new URL('log-genesis.vkey', dir), 'utf8'), readFileSync(new URL('log-rotated.vkey', dir), 'utf8')],
    witnesses: [witness, other.vkey, rotated.vkey],
    quorum: 2,
  };
  const short = (e) => e.code === 'not_cosigned' && e.message.includes('2 of 3 witness cosignatures required, 1 present');
  // The witness's old and new key: one witness.
  assert.throws(() => v.verifyProofBundle({ ...bundle, checkpoint: note + rotated.line }, trust), short);
  // A duplicated line: once.
  const last = note.trimEnd().split('\n').pop();
  assert.throws(() => v.verifyProofBundle({ ...bundle, checkpoint: `${note}${last}\n` }, trust), short);
  // A second party: the quorum is met, and both are shown.
  const r = v.verifyProofBundle({ ...bundle, checkpoint: note + other.line }, trust);
  assert.equal(r.steps.filter((s) => s.startsWith('cosigned by')).length, 2);
});

test('a downloaded file checked against the verified commitments (FORMAT.md § 13)', () => {
  const bundle = JSON.parse(readFileSync(new URL('proof-bundle.json', dir), 'utf8'));
  const trust = {
    logKeys: [readFileSync(new URL('log-genesis.vkey', dir), 'utf8'), readFileSync(new URL('log-rotated.vkey', dir), 'utf8')],
    witnesses: [readFileSync(new URL('witness.vkey', dir), 'utf8')],
    quorum: 1,
  };
  const result = v.verifyProofBundle(bundle, trust);
  const enc = new TextEncoder();
  const salts = Object.fromEntries(vec.content.map((c) => [c.digest, v.toBase64(v.fromHex(c.salt))]));
  const refs = result.entries.map(({ parsed }) => v.contentOf(parsed)).filter(Boolean).map((c) => v.hex(c.digest));
  assert.ok(refs.includes(vec.content[0].digest), `the item commits to the vector's document: ${refs}`);
  const m = v.matchContent(result, salts, enc.encode(vec.content[0].content_utf8));
  assert.ok(m && m.kind === 'published', JSON.stringify(m));
  // One byte changed, one byte more, another document: no match.
  assert.equal(v.matchContent(result, salts, enc.encode('budget-2027')), null);
  assert.equal(v.matchContent(result, salts, enc.encode('budget-20266')), null);
  assert.equal(v.matchContent(result, salts, enc.encode('answer')), null);
  // A wrong salt on the page can only make a match fail.
  const wrong = Object.fromEntries(Object.keys(salts).map((d) => [d, v.toBase64(new Uint8Array(32))]));
  assert.equal(v.matchContent(result, wrong, enc.encode(vec.content[0].content_utf8)), null);
});

test('tile and bundle paths (§ 9.1)', () => {
  assert.equal(v.indexPath(0), '000');
  assert.equal(v.indexPath(999), '999');
  assert.equal(v.indexPath(1000), 'x001/000');
  assert.equal(v.indexPath(1234067), 'x001/x234/067');
});

test('an item proof built from the export vector\'s static files verifies like the portal\'s', async () => {
  const expected = JSON.parse(readFileSync(new URL('proof-bundle.json', dir), 'utf8'));
  const root = new URL('export/logs/gongkai.example/510122/finance/', dir);
  const base = 'https://cdn.example/logs/gongkai.example~510122~finance';
  const get = async (url) => new Uint8Array(readFileSync(new URL(url.slice(base.length + 1), root)));
  const indexes = expected.entries.map((e) => e.index);
  const answer = await v.proofFromSite(base, expected.item_id, indexes, get);
  assert.deepEqual(answer.bundle.entries, expected.entries, 'the same entries and proofs as `gongkai prove`');
  const trust = {
    logKeys: [readFileSync(new URL('log-genesis.vkey', dir), 'utf8'), readFileSync(new URL('log-rotated.vkey', dir), 'utf8')],
    witnesses: [readFileSync(new URL('witness.vkey', dir), 'utf8')],
    quorum: 1,
  };
  const r = v.verifyItemBundle(answer, trust, { origin: vec.origin, itemId: expected.item_id });
  assert.deepEqual(r.entries.map((e) => e.index), indexes);
  // An entry beyond the site's checkpoint: nothing to build there.
  assert.equal(await v.proofFromSite(base, expected.item_id, [3, 22], get), null);
  // One flipped byte in entry 5 of the entry bundle: refused.
  const bad = async (url) => {
    const b = await get(url);
    if (url.includes('/tile/entries/')) {
      let at = 0;
      for (let i = 0; i < 5; i++) at += 2 + ((b[at] << 8) | b[at + 1]);
      b[at + 10] ^= 1;
    }
    return b;
  };
  const tampered = await v.proofFromSite(base, expected.item_id, indexes, bad);
  assert.throws(() => v.verifyItemBundle(tampered, trust), v.VerifyError);
});

test('inclusion proofs from hash tiles over three tile levels match the tree', async () => {
  const n = 66_000;
  const entries = [];
  for (let i = 0; i < n; i++) {
    const e = new Uint8Array(8);
    new DataView(e.buffer).setUint32(4, i);
    entries.push(e);
  }
  const leaves = entries.map(v.leafHash);
  // Complete-subtree hashes at tree levels 0, 8 and 16 (tile levels 0-2).
  const levels = [leaves];
  for (let lv = 1; lv <= 16; lv++) {
    const below = levels[lv - 1];
    const up = [];
    for (let i = 0; i + 1 < below.length; i += 2) up.push(v.nodeHash(below[i], below[i + 1]));
    levels.push(up);
  }
  for (const size of [1, 2, 255, 256, 257, 65_536, 66_000]) {
    const root = v.rootOf(leaves.slice(0, size));
    const note = `test.example/log\n${size}\n${v.toBase64(root)}\n\n— test.example/log AAAAAAA=\n`;
    const base = 'https://cdn.example/logs/test.example~log';
    let flip = null;
    const get = async (url) => {
      const rel = url.slice(base.length + 1);
      if (rel === 'checkpoint') return new TextEncoder().encode(note);
      const m = /^tile\/(entries|\d+)\/((?:x\d{3}\/)*\d{3})(?:\.p\/(\d+))?$/.exec(rel);
      assert.ok(m, `a well-formed path: ${rel}`);
      const index = Number(m[2].replaceAll('x', '').replaceAll('/', ''));
      const width = m[3] ? Number(m[3]) : 256;
      if (m[1] === 'entries') {
        const parts = entries.slice(index * 256, index * 256 + width).flatMap((e) => [Uint8Array.of(0, e.length), e]);
        const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
        let at = 0;
        for (const p of parts) { out.set(p, at); at += p.length; }
        return out;
      }
      const row = levels[Number(m[1]) * 8].slice(index * 256, index * 256 + width);
      assert.equal(row.length, width, `${rel} exists in a tree of ${size}`);
      const out = new Uint8Array(width * 32);
      row.forEach((h, i) => out.set(h, i * 32));
      if (flip === rel) out[32] ^= 1;
      return out;
    };
    for (const i of new Set([0, size - 1, Math.floor(size / 2), Math.floor(size / 3)])) {
      const a = await v.proofFromSite(base, 'x', [i], get);
      const e = a.bundle.entries[0];
      v.verifyInclusion(i, size, v.leafHash(v.fromBase64(e.entry)), e.proof.map(v.fromBase64), root);
      if (i > 0) {
        const l = a.links[0];
        v.verifyInclusion(i - 1, size, v.leafHash(v.fromBase64(l.prev_entry)), l.prev_proof.map(v.fromBase64), root);
      }
    }
    if (size > 1) {
      // Leaf 1's hash damaged in the level-0 tile entry 0's proof reads:
      // refused.
      flip = `tile/0/000${size < 256 ? `.p/${size}` : ''}`;
      const a = await v.proofFromSite(base, 'x', [0], get);
      const e = a.bundle.entries[0];
      assert.throws(() => v.verifyInclusion(0, size, v.leafHash(v.fromBase64(e.entry)), e.proof.map(v.fromBase64), root), v.VerifyError);
      flip = null;
    }
  }
});
