// The item page's "verify" button: fetches the proof bundle and checks it
// with verify.mjs against the keys embedded in the page (their fingerprints
// are shown, so a reader can compare them with keys published elsewhere).
// Where the county publishes to a bucket, the proof is first built here
// from the log's static files there (checkpoint, entry bundles, tiles).
import { verifyItemBundle, parseVkey, fingerprint, matchContent, proofFromSite } from './verify.mjs';

const zh = document.documentElement.lang.startsWith('zh');
const T = zh
  ? { running: '正在验证…', ok: '已验证', failed: '验证失败：发现与签名记录不符之处', failedDo: '这可能是篡改的证据。请保存本页（截图或打印）并报告本县纪委监委或政务公开监督部门；也可用 gongkai verify 独立核对。', unavailable: '暂时无法验证', unavailableDo: '未能取得证明（网络或服务器暂时故障），这不是篡改的证据。请稍后重试；如持续无法验证，请联系本县政务公开办公室。', inclusion: '已证明这些条目包含在县级副署的检查点中。完整性（没有遗漏之后的变更）需要对照最新检查点检查该信息的完整历史。', pending: '尚未副署的条目：', fp: '密钥指纹', match: (i, k) => `此文件正是第 ${i} 条记录（${KIND_ZH[k] ?? k}）所承诺的内容：长度与摘要均相符。`, mismatch: '此文件与本条信息任何已验证版本的内容都不一致：它不是机关发布的文件，或已被改动。', mismatchDo: '请从本页重新下载后再核对。若从本站下载的文件仍不一致，请保存该文件并报告本县纪委监委或政务公开监督部门。', tooBig: '文件超过 64 MiB，不可能是本站发布的文件。', reading: '正在计算摘要…' }
  : { running: 'Verifying…', ok: 'Verified', failed: 'Verification failed: the records do not match their signatures', failedDo: 'This may be evidence of tampering. Keep this page (screenshot or print) and report it to the county discipline inspection office or the open-government supervisor; gongkai verify can check it independently.', unavailable: 'Could not check right now', unavailableDo: 'The proof could not be fetched (a network or server outage); this is not evidence of tampering. Try again later; if it persists, contact the county open-government office.', inclusion: 'Inclusion of these entries in the county-cosigned checkpoint is proven. Completeness (no later change left out) needs the item\'s full history against the newest checkpoint.', pending: 'Entries not yet cosigned: ', fp: 'Key fingerprints', match: (i, k) => `This file is exactly the content entry ${i} (${k}) commits to: length and digest match.`, mismatch: 'This file matches no verified version of this item: it is not the file the agency published, or it was changed.', mismatchDo: 'Download it again from this page and check again. If a file downloaded from this site still does not match, keep it and report it to the county discipline inspection office or the open-government supervisor.', tooBig: 'The file is over 64 MiB: no document here can be that large.', reading: 'Computing the digest…' };

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

const KIND_ZH = {
  genesis: '建立日志', matter_defined: '设立事项', matter_changed: '变更事项', matter_retired: '停止事项',
  published: '发布', amended: '更正', withdrawn: '撤回', redacted: '删除内容',
  request_received: '收到申请', request_clarification: '补正', third_party_consultation: '征求第三方意见',
  request_extended: '延期答复', request_answered: '答复申请', key_rotated: '更换签名密钥',
  challenge_filed: '复议/诉讼立案', challenge_concluded: '复议/诉讼结案',
};

/** Unix seconds as China Standard Time, the time the rest of the portal shows. */
function cst(secs) {
  const t = new Date((secs + 8 * 3600) * 1000).toISOString();
  return `${t.slice(0, 10)} ${t.slice(11, 16)}` + (zh ? '（北京时间）' : ' (China time)');
}

/** What was checked, in the page's language (verify.mjs's own steps are English). */
function steps(result) {
  const cp = result.checkpoint;
  const out = [];
  out.push(zh
    ? `检查点：${cp.origin} 的前 ${cp.size} 条，由 ${cp.signedBy.name} 签名（密钥指纹 ${fingerprint(cp.signedBy)}）`
    : `checkpoint of ${cp.origin} at size ${cp.size}: signed by ${cp.signedBy.name} (key ${fingerprint(cp.signedBy)})`);
  for (const c of cp.cosignatures) {
    out.push(zh
      ? `见证方 ${c.witness.name} 于 ${cst(c.time)}副署（密钥指纹 ${fingerprint(c.witness)}）`
      : `cosigned by ${c.witness.name} (key ${fingerprint(c.witness)}) at ${cst(c.time)}`);
  }
  for (const { index, parsed } of result.entries) {
    const kind = parsed.event.kind;
    out.push(zh
      ? `第 ${index} 条（${KIND_ZH[kind] ?? kind}）：签名有效，${index > 0 ? `与第 ${index - 1} 条相连` : '为日志第一条'}，包含在前 ${cp.size} 条的树中`
      : `entry ${index} (${kind}): signature valid, ${index > 0 ? `linked to entry ${index - 1}` : 'the first entry'}, included in the tree of size ${cp.size}`);
  }
  return out;
}

/** A failure to fetch the proof: an outage, not evidence. */
class Unavailable extends Error {}

/** The proof from the county's proof endpoint. */
async function fromCounty(button) {
  let res;
  try {
    res = await fetch(button.dataset.proof, { cache: 'no-store' });
  } catch (e) {
    throw new Unavailable(String(e.message ?? e));
  }
  // Overload, outage, a proxy that cannot reach the county: nothing is
  // proven either way.
  if (res.status >= 500 || res.status === 429 || res.status === 408) {
    throw new Unavailable(`HTTP ${res.status}`);
  }
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${(await res.json().catch(() => ({}))).error ?? ''}`);
  return res.json();
}

/**
 * The proof built here from the log's static files on the county's bucket
 * or CDN (`data-static`), or null when they cannot be read or do not
 * cover the item yet. What is read and does not verify is not retried
 * elsewhere: it fails, as tampering would.
 */
async function fromSite(button) {
  const base = button.dataset.static;
  if (!base) return null;
  const get = async (url) => {
    let res;
    try {
      // The checkpoint changes; tiles and bundles never do.
      res = await fetch(url, { cache: url.endsWith('/checkpoint') ? 'no-store' : 'default', credentials: 'omit' });
    } catch (e) {
      throw new Unavailable(String(e.message ?? e));
    }
    if (!res.ok) throw new Unavailable(`${url}: HTTP ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  };
  try {
    const indexes = button.dataset.indexes.split(',').map(Number);
    return await proofFromSite(base, button.dataset.item, indexes, get);
  } catch (e) {
    if (e instanceof Unavailable) return null;
    throw e;
  }
}

async function run(button, out) {
  const trust = JSON.parse(document.getElementById('gk-trust').textContent);
  out.replaceChildren(el('p', T.running));
  out.className = '';
  try {
    // From the bucket or CDN when the county publishes there; from the
    // county's proof endpoint when those files cannot be read (not
    // published yet, an outage, a CDN that refuses cross-origin reads).
    const expected = { origin: button.dataset.origin, itemId: button.dataset.item };
    let answer = await fromSite(button);
    let result = null;
    if (answer) {
      try {
        result = verifyItemBundle(answer, trust, expected);
      } catch (e) {
        // The bucket's copy of the checkpoint may not carry every
        // witness's cosignature yet: not tampering; ask the county.
        if (e.code !== 'not_cosigned') throw e;
        answer = null;
      }
    }
    if (!answer) {
      answer = await fromCounty(button);
      result = verifyItemBundle(answer, trust, expected);
    }
    const list = el('ul');
    for (const s of steps(result)) list.append(el('li', s));
    const keys = el('p', `${T.fp}: ` + [...trust.logKeys, ...trust.witnesses].map((k) => fingerprint(parseVkey(k))).join(' · '), 'note');
    const parts = [el('strong', `✔ ${T.ok}`), list, el('p', T.inclusion), keys];
    if (answer.pending?.length) parts.push(el('p', T.pending + answer.pending.join(', '), 'note'));
    out.replaceChildren(...parts);
    out.className = 'verified';
    out.dataset.state = 'verified';
    verified = result;
    const check = document.getElementById('check-file');
    if (check) check.hidden = false;
  } catch (e) {
    if (e instanceof Unavailable) {
      out.replaceChildren(el('strong', `⚠ ${T.unavailable}`), el('p', T.unavailableDo), el('p', e.message, 'note'));
      out.className = 'unavailable';
      out.dataset.state = 'unavailable';
      return;
    }
    const why = e.index !== undefined && !e.message.includes(`entry ${e.index}`) ? `${e.message} (entry ${e.index})` : e.message;
    out.replaceChildren(el('strong', `✘ ${T.failed}`), el('p', T.failedDo), el('p', why, 'note'));
    out.className = 'failed';
    out.dataset.state = 'failed';
  }
}

/** The newest successful verification of this page's item. */
let verified = null;

/** Checks a downloaded file against the verified commitments (FORMAT.md § 13). */
async function checkFile(file, out) {
  const salts = JSON.parse(document.getElementById('gk-salts').textContent);
  out.dataset.state = '';
  if (!verified) return;
  if (file.size > 64 * 1024 * 1024) {
    out.replaceChildren(el('strong', `✘ ${T.tooBig}`));
    out.className = 'failed';
    out.dataset.state = 'mismatch';
    return;
  }
  out.replaceChildren(el('p', T.reading));
  out.className = '';
  const bytes = new Uint8Array(await file.arrayBuffer());
  const m = matchContent(verified, salts, bytes);
  if (m) {
    out.replaceChildren(el('strong', `✔ ${T.match(m.index, m.kind)}`));
    out.className = 'verified';
    out.dataset.state = 'match';
  } else {
    out.replaceChildren(el('strong', `✘ ${T.mismatch}`), el('p', T.mismatchDo));
    out.className = 'failed';
    out.dataset.state = 'mismatch';
  }
}

const button = document.getElementById('verify');
if (button) {
  const out = document.getElementById('verify-result');
  button.addEventListener('click', () => run(button, out));
}
const check = document.getElementById('check-file');
if (check) {
  const input = document.getElementById('gk-file');
  const result = document.getElementById('check-file-result');
  input.addEventListener('change', () => {
    if (input.files.length) checkFile(input.files[0], result);
  });
  check.addEventListener('dragover', (e) => e.preventDefault());
  check.addEventListener('drop', (e) => {
    e.preventDefault();
    if (e.dataTransfer.files.length) checkFile(e.dataTransfer.files[0], result);
  });
}
