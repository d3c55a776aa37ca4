// gongkai in-browser verifier: a second, independent implementation of the
// parts of docs/FORMAT.md that a reader of one item needs — entries (§5),
// chain links (§6 rules 1–4, 6, 7), the BLAKE3 Merkle tree and inclusion
// proofs (§8), signed notes, checkpoints and cosignatures (§10, §11) and
// content commitments (§13). Written from the spec, not from the Rust code;
// the cryptographic primitives are the noble libraries (noble.mjs), with
// Ed25519 verified under ZIP-215 as §5.1 requires.
//
// Every function throws a VerifyError with a precise reason, or returns.
// Nothing here trusts the server: keys come from the caller.

import { blake3, sha256, ed25519 } from './noble.mjs';

export class VerifyError extends Error {
  constructor(code, message, index) {
    super(message);
    this.code = code;
    if (index !== undefined) this.index = index;
  }
}

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

// ---------------------------------------------------------------- encodings

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export function fromHex(s) {
  if (typeof s !== 'string' || s.length % 2 !== 0 || /[^0-9a-f]/.test(s)) {
    throw new VerifyError('encoding', 'not lowercase hex');
  }
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Strict standard base64 with padding (FORMAT.md §1): non-canonical input is rejected. */
export function fromBase64(s) {
  if (typeof s !== 'string' || s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) {
    throw new VerifyError('encoding', 'malformed base64');
  }
  const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
  const out = new Uint8Array((s.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < s.length; i += 4) {
    const v = [0, 1, 2, 3].map((k) => (s[i + k] === '=' ? 0 : B64.indexOf(s[i + k])));
    const n = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    const bytes = [(n >> 16) & 255, (n >> 8) & 255, n & 255];
    for (let k = 0; k < 3 && o < out.length; k++) out[o++] = bytes[k];
  }
  if (toBase64(out) !== s) throw new VerifyError('encoding', 'non-canonical base64');
  return out;
}

export function toBase64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    s += B64[(n >> 18) & 63] + B64[(n >> 12) & 63];
    s += i + 1 < bytes.length ? B64[(n >> 6) & 63] : '=';
    s += i + 2 < bytes.length ? B64[n & 63] : '=';
  }
  return s;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function equal(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

function u64be(n) {
  const out = new Uint8Array(8);
  let v = BigInt(n);
  for (let i = 7; i >= 0; i--) {
    out[i] = Number(v & 255n);
    v >>= 8n;
  }
  return out;
}

// ------------------------------------------------------------------- hashes (§2)

export const leafHash = (entry) => blake3(concat(Uint8Array.of(0x00), entry));
export const nodeHash = (l, r) => blake3(concat(Uint8Array.of(0x01), l, r));
export const bodyHash = (body) => blake3(concat(Uint8Array.of(0x02), body));
export const EMPTY_ROOT = blake3(new Uint8Array(0));
export const contentDigest = (salt, content) => blake3(content, { key: salt });

/**
 * The content commitment (§ 13, ContentRef) of a parsed published or
 * amended entry: { digest: Uint8Array(32), length: bigint }, or null.
 */
export function contentOf(parsed) {
  const field = { published: 4, amended: 3 }[parsed.event.kind];
  if (!field) return null;
  const ref = fields(parsed.event.kindBytes).find((x) => x.num === field && x.wire === 2);
  if (!ref) return null;
  const r = fields(ref.value);
  const digest = r.find((x) => x.num === 1 && x.wire === 2)?.value;
  const length = r.find((x) => x.num === 2 && x.wire === 0)?.value ?? 0n;
  return digest && digest.length === 32 ? { digest, length } : null;
}

/**
 * Which of the verified entries (`result.entries` of verifyItemBundle)
 * commits to `bytes`, given `salts` ({digest hex: salt base64}, as the
 * item page gives them; a wrong salt can only make a match fail): the
 * entry's index and kind, or null.
 */
export function matchContent(result, salts, bytes) {
  for (const { index, parsed } of result.entries) {
    const c = contentOf(parsed);
    if (!c || c.length !== BigInt(bytes.length)) continue;
    const salt = salts[hex(c.digest)];
    if (!salt) continue;
    if (equal(contentDigest(fromBase64(salt), bytes), c.digest)) return { index, kind: parsed.event.kind };
  }
  return null;
}

// ----------------------------------------------------------- entries (§4, §5)

const EVENT_CONTEXT = enc.encode('gongkai/event/v1\0');
const KINDS = {
  16: 'genesis', 17: 'matter_defined', 18: 'matter_changed', 19: 'matter_retired',
  20: 'published', 21: 'amended', 22: 'withdrawn', 23: 'redacted',
  24: 'request_received', 25: 'request_clarification', 26: 'third_party_consultation',
  27: 'request_extended', 28: 'request_answered', 29: 'key_rotated',
  30: 'challenge_filed', 31: 'challenge_concluded',
};

function varint(buf, pos) {
  let v = 0n;
  for (let shift = 0n; shift < 70n; shift += 7n) {
    if (pos >= buf.length) throw new VerifyError('non_canonical_body', 'truncated varint');
    const b = buf[pos++];
    v |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) {
      if (b === 0 && shift > 0n) throw new VerifyError('non_canonical_body', 'over-long varint');
      return [v, pos];
    }
  }
  throw new VerifyError('non_canonical_body', 'varint too long');
}

/** Reads the fields of one protobuf message: [{num, wire, value(bigint|Uint8Array)}]. */
function fields(buf) {
  const out = [];
  let pos = 0;
  while (pos < buf.length) {
    let key;
    [key, pos] = varint(buf, pos);
    const num = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      let v;
      [v, pos] = varint(buf, pos);
      out.push({ num, wire, value: v });
    } else if (wire === 2) {
      let len;
      [len, pos] = varint(buf, pos);
      const end = pos + Number(len);
      if (end > buf.length) throw new VerifyError('non_canonical_body', 'field runs past the body');
      out.push({ num, wire, value: buf.subarray(pos, end) });
      pos = end;
    } else {
      throw new VerifyError('non_canonical_body', `unexpected wire type ${wire}`);
    }
  }
  return out;
}

/**
 * Decodes the envelope fields of an EventBody (§4). Checks what makes the
 * top level canonical: known field numbers in ascending order, each at most
 * once, no default values written, exactly one kind.
 */
export function decodeBody(body) {
  const ev = { origin: '', index: 0n, prevHash: new Uint8Array(32), timeMs: 0n, signer: null, kind: null, kindBytes: null };
  let last = 0;
  for (const f of fields(body)) {
    if (f.num <= last) throw new VerifyError('non_canonical_body', `field ${f.num} out of order or repeated`);
    last = f.num;
    const want = f.num === 2 || f.num === 4 ? 0 : 2;
    if (f.wire !== want) throw new VerifyError('non_canonical_body', `field ${f.num} has the wrong wire type`);
    if ((f.wire === 0 && f.value === 0n) || (f.wire === 2 && f.value.length === 0 && f.num < 16)) {
      throw new VerifyError('non_canonical_body', `field ${f.num} holds a default value`);
    }
    switch (f.num) {
      case 1: ev.origin = dec.decode(f.value); break;
      case 2: ev.index = f.value; break;
      case 3: ev.prevHash = f.value; break;
      case 4: ev.timeMs = f.value; break;
      case 5: ev.signer = f.value; break;
      default:
        if (!KINDS[f.num]) throw new VerifyError('non_canonical_body', `unknown field ${f.num}`);
        if (ev.kind) throw new VerifyError('non_canonical_body', 'more than one kind');
        ev.kind = KINDS[f.num];
        ev.kindBytes = f.value;
    }
  }
  if (!ev.kind) throw new VerifyError('non_canonical_body', 'no event kind');
  if (ev.prevHash.length !== 32) throw new VerifyError('non_canonical_body', 'prev_hash is not 32 bytes');
  if (!ev.signer || ev.signer.length !== 32) throw new VerifyError('non_canonical_body', 'signer is not 32 bytes');
  return ev;
}

/** The next key named by a key_rotated event (§12), or null. */
export function rotatedKey(ev) {
  if (ev.kind !== 'key_rotated') return null;
  const f = fields(ev.kindBytes).find((x) => x.num === 1 && x.wire === 2);
  if (!f || f.value.length !== 32) throw new VerifyError('non_canonical_body', 'key_rotated without a 32-byte next_key');
  return f.value;
}

/** Splits an entry (§5) into body and signature and decodes the body. */
export function parseEntry(entry) {
  if (!(entry instanceof Uint8Array) || entry.length < 3 + 64) {
    throw new VerifyError('malformed_entry', 'entry too short');
  }
  if (entry[0] !== 0x01) throw new VerifyError('malformed_entry', `unknown entry version ${entry[0]}`);
  const len = (entry[1] << 8) | entry[2];
  if (3 + len + 64 !== entry.length) throw new VerifyError('malformed_entry', 'length field does not match the entry');
  const body = entry.subarray(3, 3 + len);
  const signature = entry.subarray(3 + len);
  return { body, signature, event: decodeBody(body), leafHash: leafHash(entry), bodyHash: bodyHash(body) };
}

/** Ed25519 under ZIP-215 (§5.1). */
export function verifySignature(signature, message, publicKey) {
  try {
    return ed25519.verify(signature, message, publicKey, { zip215: true });
  } catch {
    return false;
  }
}

/** Checks the entry's signature under `key` (the key in force at its index). */
export function verifyEntrySignature(parsed, key, index) {
  if (!equal(parsed.event.signer, key)) {
    throw new VerifyError('wrong_signer', `entry ${index} names signer ${hex(parsed.event.signer)}, but the key in force is ${hex(key)}`, index);
  }
  if (!verifySignature(parsed.signature, concat(EVENT_CONTEXT, parsed.body), key)) {
    throw new VerifyError('bad_signature', `entry ${index}: the signature does not verify`, index);
  }
}

/**
 * Verifies a contiguous run of entries starting at index `start` (§6 rules
 * 1–4, 6, 7): origin, index, prev_hash links, non-decreasing time, signer and
 * signature, following key rotations. `prev` is the parsed entry before
 * `start` (needed when start > 0), `key` the key in force at `start`.
 * Returns the parsed entries and the key in force after them.
 */
export function verifyRun(origin, start, entries, key, prev = null) {
  const out = [];
  let before = prev;
  for (let i = 0; i < entries.length; i++) {
    const index = start + i;
    let p;
    try {
      p = parseEntry(entries[i]);
    } catch (e) {
      e.index = index;
      throw e;
    }
    const ev = p.event;
    if (ev.origin !== origin) throw new VerifyError('chain_broken:origin', `entry ${index} is of origin ${ev.origin}, not ${origin}`, index);
    if (ev.index !== BigInt(index)) throw new VerifyError('chain_broken:index', `entry at position ${index} says index ${ev.index}`, index);
    if (index === 0) {
      if (!equal(ev.prevHash, new Uint8Array(32))) throw new VerifyError('chain_broken:prev_hash', 'entry 0 must have a zero prev_hash', 0);
      if (ev.kind !== 'genesis') throw new VerifyError('chain_broken:genesis', 'entry 0 is not genesis', 0);
    } else {
      if (ev.kind === 'genesis') throw new VerifyError('chain_broken:genesis', `entry ${index} is a second genesis`, index);
      if (before) {
        if (!equal(ev.prevHash, before.bodyHash)) throw new VerifyError('chain_broken:prev_hash', `entry ${index} does not link to entry ${index - 1}`, index);
        if (ev.timeMs < before.event.timeMs) throw new VerifyError('chain_broken:time_ms', `entry ${index} is older than entry ${index - 1}`, index);
      }
    }
    verifyEntrySignature(p, key, index);
    const next = rotatedKey(ev);
    if (next) {
      const pop = concat(enc.encode('gongkai/key-rotation/v1\0'), enc.encode(origin), Uint8Array.of(0), u64be(index), next);
      const proof = fields(ev.kindBytes).find((x) => x.num === 2 && x.wire === 2);
      if (!proof || !verifySignature(proof.value, pop, next)) {
        throw new VerifyError('bad_rotation', `entry ${index}: the next key's proof of possession does not verify`, index);
      }
      key = next;
    }
    out.push(p);
    before = p;
  }
  return { parsed: out, key };
}

// --------------------------------------------------------------- Merkle (§8)

/** RFC 9162 MTH of a list of leaf hashes (for tests and small logs). */
export function rootOf(leaves) {
  if (leaves.length === 0) return EMPTY_ROOT;
  if (leaves.length === 1) return leaves[0];
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(rootOf(leaves.slice(0, k)), rootOf(leaves.slice(k)));
}

/** RFC 9162 §2.1.3.2: the root an inclusion proof leads to. */
export function rootFromInclusion(index, size, leaf, proof) {
  if (!(index < size)) throw new VerifyError('bad_proof', `index ${index} is not in a tree of size ${size}`);
  let fn = BigInt(index);
  let sn = BigInt(size) - 1n;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0n) throw new VerifyError('bad_proof', 'inclusion proof is too long');
    if ((fn & 1n) === 1n || fn === sn) {
      r = nodeHash(p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new VerifyError('bad_proof', 'inclusion proof is too short');
  return r;
}

export function verifyInclusion(index, size, leaf, proof, root) {
  if (!equal(rootFromInclusion(index, size, leaf, proof), root)) {
    throw new VerifyError('bad_proof', `entry ${index} is not included in the tree of size ${size} with this root`, index);
  }
}

/** RFC 9162 §2.1.4.2 with FORMAT.md §8's extra cases. */
export function verifyConsistency(m, n, oldRoot, newRoot, proof) {
  const fail = (why) => { throw new VerifyError('bad_proof', `consistency ${m} → ${n}: ${why}`); };
  if (m > n) fail('old size is larger');
  if (m === n) {
    if (proof.length !== 0) fail('proof must be empty');
    if (!equal(oldRoot, newRoot)) fail('roots differ');
    return;
  }
  if (m === 0) {
    if (proof.length !== 0) fail('proof must be empty');
    if (!equal(oldRoot, EMPTY_ROOT)) fail('old root is not the empty root');
    return;
  }
  let path = proof.slice();
  if ((m & (m - 1)) === 0) path = [oldRoot, ...path];
  if (path.length === 0) fail('proof is empty');
  let fn = BigInt(m - 1);
  let sn = BigInt(n - 1);
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0n) fail('proof is too long');
    if ((fn & 1n) === 1n || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) fail('proof is too short');
  if (!equal(fr, oldRoot)) fail('old root does not match');
  if (!equal(sr, newRoot)) fail('new root does not match');
}

// ----------------------------------------------- signed notes (§10, §11)

/** Parses a verifier key string `<name>+<hex id>+<base64(type || key)>`. */
export function parseVkey(vkey) {
  // `<name>+<hex id>+<base64>`: the name and the id hold no '+', the
  // base64 may.
  const text = String(vkey).trim();
  const a = text.indexOf('+');
  const b = a < 0 ? -1 : text.indexOf('+', a + 1);
  if (a <= 0 || b < 0) throw new VerifyError('bad_key', `malformed verifier key ${vkey}`);
  const [name, idHex, b64] = [text.slice(0, a), text.slice(a + 1, b), text.slice(b + 1)];
  if (!/^[0-9a-f]{8}$/.test(idHex)) throw new VerifyError('bad_key', `malformed key id in ${vkey}`);
  const raw = fromBase64(b64);
  if (raw.length !== 33 || (raw[0] !== 0x01 && raw[0] !== 0x04)) throw new VerifyError('bad_key', `verifier key ${name}: not an Ed25519 (0x01) or cosignature (0x04) key`);
  const type = raw[0];
  const key = raw.subarray(1);
  const id = keyId(name, type, key);
  if (hex(id) !== idHex) throw new VerifyError('bad_key', `verifier key ${name}: the key id does not match the key`);
  return { name, type, key, id, vkey: text };
}

export function keyId(name, type, key) {
  return sha256(concat(enc.encode(name), Uint8Array.of(0x0a, type), key)).subarray(0, 4);
}

/** A key fingerprint people can compare with keys published elsewhere. */
export function fingerprint(k) {
  return hex(sha256(concat(Uint8Array.of(k.type), k.key))).slice(0, 16).replace(/(.{4})(?!$)/g, '$1 ');
}

/** Splits a signed note into text and signature lines (§10). */
export function parseNote(note) {
  if (note.includes('\r')) throw new VerifyError('bad_note', 'note contains \\r');
  const split = note.lastIndexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) throw new VerifyError('bad_note', 'not a signed note');
  const text = note.slice(0, split + 1);
  const sigs = [];
  for (const line of note.slice(split + 2, -1).split('\n')) {
    const m = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!m) throw new VerifyError('bad_note', `malformed signature line: ${line}`);
    const raw = fromBase64(m[2]);
    if (raw.length < 5) throw new VerifyError('bad_note', 'signature too short');
    sigs.push({ name: m[1], id: raw.subarray(0, 4), sig: raw.subarray(4) });
  }
  if (sigs.length === 0 || sigs.length > 100) throw new VerifyError('bad_note', 'a note needs 1 to 100 signatures');
  return { text, sigs };
}

/** Parses the checkpoint body (§11.1). */
export function parseCheckpointText(text) {
  const lines = text.split('\n');
  if (lines.length < 4 || !/^(0|[1-9][0-9]*)$/.test(lines[1])) throw new VerifyError('bad_checkpoint', 'malformed checkpoint');
  const root = fromBase64(lines[2]);
  if (root.length !== 32) throw new VerifyError('bad_checkpoint', 'root is not 32 bytes');
  return { origin: lines[0], size: Number(lines[1]), root };
}

/**
 * Verifies a checkpoint note: a valid signature by one of `logKeys` (type
 * 0x01, named as the origin) and cosignatures by `witnesses` (type 0x04).
 * Signatures by unknown keys are ignored; a bad signature by a known key is
 * an error. Returns the checkpoint and the witnesses that cosigned (with time).
 */
export function verifyCheckpoint(note, logKeys, witnesses = []) {
  const { text, sigs } = parseNote(note);
  const cp = parseCheckpointText(text);
  const msg = enc.encode(text);
  let signedBy = null;
  const cosigned = new Map();
  for (const s of sigs) {
    for (const k of logKeys) {
      if (k.type === 0x01 && k.name === s.name && equal(k.id, s.id)) {
        if (!verifySignature(s.sig, msg, k.key)) throw new VerifyError('bad_checkpoint', `bad signature by ${k.name}`);
        if (k.name !== cp.origin) throw new VerifyError('bad_checkpoint', `signed by ${k.name}, not by the log ${cp.origin}`);
        signedBy = k;
      }
    }
    for (const w of witnesses) {
      if (w.type === 0x04 && w.name === s.name && equal(w.id, s.id)) {
        if (s.sig.length !== 72) throw new VerifyError('bad_checkpoint', `cosignature by ${w.name} is not 76 bytes`);
        const time = s.sig.subarray(0, 8);
        const t = time.reduce((a, b) => (a << 8n) | BigInt(b), 0n);
        if (t >= 1n << 63n) throw new VerifyError('bad_checkpoint', 'cosignature time out of range');
        const m = concat(enc.encode(`cosignature/v1\ntime ${t}\n`), msg);
        if (!verifySignature(s.sig.subarray(8), m, w.key)) throw new VerifyError('bad_checkpoint', `bad cosignature by ${w.name}`);
        // One cosigner per name (FORMAT.md § 16.4): a duplicated line, or a
        // witness's old and new key both trusted, count once.
        cosigned.set(w.name, { witness: w, time: Number(t) });
      }
    }
  }
  if (!signedBy) throw new VerifyError('bad_checkpoint', `no valid signature of ${cp.origin} by a trusted key`);
  return { ...cp, signedBy, cosignatures: [...cosigned.values()] };
}

// ------------------------------------------- proofs from static files (§9.4)

/** The path of tile or bundle index `n` (§ 9.1): three-digit groups, all but the last prefixed with `x`. */
export function indexPath(n) {
  const parts = [];
  do {
    parts.unshift(String(n % 1000).padStart(3, '0'));
    n = Math.floor(n / 1000);
  } while (n > 0);
  return parts.map((p, i) => (i < parts.length - 1 ? `x${p}` : p)).join('/');
}

function largestPowerBelow(n) {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * Builds what the portal's proof endpoint answers for the entries
 * `indexes` of item `itemId` — the § 18 bundle and, for each entry, the
 * entry before it — from the log's static files at `base` (`…/logs/<log>`
 * on a portal, a bucket or a CDN): its checkpoint, entry bundles, and
 * inclusion proofs computed from its hash tiles. `get(url)` resolves to
 * the bytes. Nothing read is trusted: `verifyItemBundle` checks it all
 * against the signed checkpoint. Resolves to null when an entry is beyond
 * the checkpoint there (not published to the site yet).
 */
export async function proofFromSite(base, itemId, indexes, get) {
  const note = dec.decode(await get(`${base}/checkpoint`));
  const { origin, size } = parseCheckpointText(parseNote(note).text);
  if (indexes.length === 0 || indexes.some((i) => !(Number.isSafeInteger(i) && i >= 0 && i < size))) return null;
  const files = new Map();
  const file = (path, check) => {
    if (!files.has(path)) files.set(path, get(`${base}/${path}`).then(check));
    return files.get(path);
  };
  // A hash tile of tile level `level` (§ 9.1), partial only at the right edge.
  const tile = (level, n) => {
    const width = Math.min(256, Math.floor(size / 256 ** level) - n * 256);
    const path = `tile/${level}/${indexPath(n)}${width < 256 ? `.p/${width}` : ''}`;
    return file(path, (b) => {
      if (b.length !== width * 32) throw new VerifyError('bad_tile', `${path}: ${b.length} bytes, not ${width * 32}`);
      return b;
    });
  };
  // The hash of the complete subtree at tree level `lv`, index `k`:
  // hashed up from its tile's row (levels 8L+1 … 8L+7 are not stored).
  const subtree = async (lv, k) => {
    const level = Math.floor(lv / 8);
    const span = 2 ** (lv % 8);
    const first = k * span;
    const t = await tile(level, Math.floor(first / 256));
    let row = [];
    for (let i = first % 256; i < (first % 256) + span; i++) row.push(t.subarray(i * 32, i * 32 + 32));
    while (row.length > 1) {
      const up = [];
      for (let i = 0; i < row.length; i += 2) up.push(nodeHash(row[i], row[i + 1]));
      row = up;
    }
    return row[0];
  };
  // RFC 9162 MTH of leaves [a, b) (a power of two aligned, or split).
  const mth = async (a, b) => {
    const n = b - a;
    const k = largestPowerBelow(n);
    if (k * 2 === n || n === 1) {
      let lv = 0;
      while (2 ** lv < n) lv++;
      return subtree(lv, a / n);
    }
    return nodeHash(await mth(a, a + k), await mth(a + k, b));
  };
  // RFC 9162 § 2.1.3.1 PATH(m, D[a:b]).
  const path = async (m, a, b) => {
    if (b - a === 1) return [];
    const k = largestPowerBelow(b - a);
    return m < a + k
      ? [...(await path(m, a, a + k)), await mth(a + k, b)]
      : [...(await path(m, a + k, b)), await mth(a, a + k)];
  };
  const entry = async (i) => {
    const n = Math.floor(i / 256);
    const width = Math.min(256, size - n * 256);
    const p = `tile/entries/${indexPath(n)}${width < 256 ? `.p/${width}` : ''}`;
    const entries = await file(p, (b) => {
      const out = [];
      let at = 0;
      while (at < b.length) {
        if (at + 2 > b.length) throw new VerifyError('bad_bundle', `${p}: truncated`);
        const len = (b[at] << 8) | b[at + 1];
        if (at + 2 + len > b.length) throw new VerifyError('bad_bundle', `${p}: truncated`);
        out.push(b.subarray(at + 2, at + 2 + len));
        at += 2 + len;
      }
      if (out.length !== width) throw new VerifyError('bad_bundle', `${p}: ${out.length} entries, not ${width}`);
      return out;
    });
    return entries[i % 256];
  };
  const proven = async (i) => [toBase64(await entry(i)), (await path(i, 0, size)).map(toBase64)];
  const entries = [];
  const links = [];
  for (const i of indexes) {
    const [e, proof] = await proven(i);
    entries.push({ index: i, entry: e, proof });
    if (i > 0) {
      const [prev, prevProof] = await proven(i - 1);
      links.push({ index: i, prev_entry: prev, prev_proof: prevProof });
    }
  }
  return {
    bundle: { format: 'gongkai-proof/v1', origin, item_id: itemId, checkpoint: note, entries, statement: 'built in the browser from the log\'s static files' },
    links,
  };
}

// ------------------------------------------------------------ one item

const BUNDLE_FIELDS = ['checkpoint', 'entries', 'format', 'item_id', 'origin', 'statement'];
const ITEM_KINDS = new Set(['published', 'amended', 'withdrawn', 'redacted']);

/** The item id an item event concerns (field 1 of its message), or null. */
function itemOf(ev) {
  if (!ITEM_KINDS.has(ev.kind)) return null;
  const f = fields(ev.kindBytes).find((x) => x.num === 1 && x.wire === 2);
  return f ? dec.decode(f.value) : '';
}

/**
 * Verifies a proof bundle (FORMAT.md § 18, `gongkai-proof/v1`): the
 * checkpoint (a trusted department signature and `quorum` witness
 * cosignatures), then every entry — parsed, naming the origin and its
 * index, concerning the item, signed by the signer its body names, and
 * included in the checkpoint's tree. `trust` is { logKeys: [vkey],
 * witnesses: [vkey], quorum }.
 *
 * Returns { checkpoint, steps: [string], entries: [parsed] }; throws VerifyError.
 */
export function verifyProofBundle(bundle, trust) {
  const keys = Object.keys(bundle).sort();
  if (keys.join() !== BUNDLE_FIELDS.join()) throw new VerifyError('bad_bundle', `unexpected fields: ${keys.join(', ')}`);
  if (bundle.format !== 'gongkai-proof/v1') throw new VerifyError('bad_bundle', `format ${bundle.format}`);
  const steps = [];
  const logKeys = trust.logKeys.map(parseVkey);
  const witnesses = (trust.witnesses ?? []).map(parseVkey);
  const quorum = trust.quorum ?? witnesses.length;
  const cp = verifyCheckpoint(bundle.checkpoint, logKeys, witnesses);
  if (cp.origin !== bundle.origin) throw new VerifyError('bad_checkpoint', `checkpoint is of ${cp.origin}, not ${bundle.origin}`);
  steps.push(`checkpoint of ${cp.origin} at size ${cp.size}: signed by ${cp.signedBy.name} (key ${fingerprint(cp.signedBy)})`);
  if (cp.cosignatures.length < quorum) {
    throw new VerifyError('not_cosigned', `${quorum} of ${witnesses.length} witness cosignatures required, ${cp.cosignatures.length} present`);
  }
  for (const c of cp.cosignatures) {
    steps.push(`cosigned by ${c.witness.name} (key ${fingerprint(c.witness)}) at ${new Date(c.time * 1000).toISOString()}`);
  }
  if (!Array.isArray(bundle.entries) || bundle.entries.length === 0) throw new VerifyError('bad_bundle', 'no entries');
  const entries = [];
  let last = -1;
  for (const e of bundle.entries) {
    const index = e.index;
    if (!Number.isSafeInteger(index) || index <= last) throw new VerifyError('bad_bundle', 'entries are not in increasing index order', index);
    last = index;
    let p;
    try {
      p = parseEntry(fromBase64(e.entry));
    } catch (err) {
      throw new VerifyError(err.code ?? 'malformed_entry', `entry ${index} does not decode: ${err.message}`, index);
    }
    if (p.event.origin !== cp.origin) throw new VerifyError('chain_broken:origin', `entry ${index} is of another log`, index);
    if (p.event.index !== BigInt(index)) throw new VerifyError('chain_broken:index', `entry at ${index} says index ${p.event.index}`, index);
    let about;
    try {
      about = itemOf(p.event);
    } catch (err) {
      throw new VerifyError(err.code ?? 'malformed_entry', `entry ${index} does not decode: ${err.message}`, index);
    }
    if (about !== bundle.item_id) throw new VerifyError('bad_bundle', `entry ${index} is not about item ${bundle.item_id}`, index);
    verifyEntrySignature(p, p.event.signer, index);
    verifyInclusion(index, cp.size, p.leafHash, e.proof.map(fromBase64), cp.root);
    entries.push({ index, parsed: p });
  }
  return { checkpoint: cp, steps, entries };
}

/**
 * What the portal's proof endpoint returns: a § 18 bundle, plus for each
 * entry the entry before it with its inclusion proof, so the chain link
 * (prev_hash) is checked too. With `expected` ({ origin, itemId }: what
 * the page shows), a bundle about another item or log is refused: a
 * genuine proof of the wrong item proves nothing about this one.
 * Returns { checkpoint, steps, entries }.
 */
export function verifyItemBundle(answer, trust, expected = null) {
  const bundle = answer?.bundle ?? {};
  if (expected && (bundle.origin !== expected.origin || bundle.item_id !== expected.itemId)) {
    throw new VerifyError('wrong_item', `the proof is about item ${bundle.item_id} of ${bundle.origin}, not item ${expected.itemId} of ${expected.origin} shown on this page`);
  }
  const result = verifyProofBundle(answer.bundle, trust);
  const cp = result.checkpoint;
  const links = new Map((answer.links ?? []).map((l) => [l.index, l]));
  for (const { index, parsed } of result.entries) {
    if (index > 0) {
      const l = links.get(index);
      if (!l) throw new VerifyError('chain_broken:prev_hash', `no entry before ${index} to check the link`, index);
      const prev = parseEntry(fromBase64(l.prev_entry));
      if (prev.event.index !== BigInt(index - 1)) throw new VerifyError('chain_broken:index', `the entry before ${index} has index ${prev.event.index}`, index);
      verifyInclusion(index - 1, cp.size, prev.leafHash, l.prev_proof.map(fromBase64), cp.root);
      if (!equal(parsed.event.prevHash, prev.bodyHash)) throw new VerifyError('chain_broken:prev_hash', `entry ${index} does not link to entry ${index - 1}`, index);
    }
    const link = index > 0 ? `linked to entry ${index - 1}` : 'the first entry';
    result.steps.push(`entry ${index} (${parsed.event.kind}): signature valid, ${link}, included in the tree of size ${cp.size}`);
  }
  return result;
}
