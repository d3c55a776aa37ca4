// The item page's "verify" button: fetches the proof bundle and checks it
// with verify.mjs against the keys embedded in the page (their fingerprints
// are shown, so a reader can compare them with keys published elsewhere).
import { verifyItemBundle, parseVkey, fingerprint } from './verify.mjs';

const zh = document.documentElement.lang.startsWith('zh');
const T = zh
  ? { running: '正在验证…', ok: '已验证', failed: '验证失败', inclusion: '已证明这些条目包含在县级副署的检查点中。完整性（没有遗漏之后的变更）需要对照最新检查点检查该信息的完整历史。', pending: '尚未副署的条目：', fp: '密钥指纹' }
  : { running: 'Verifying…', ok: 'Verified', failed: 'Verification failed', inclusion: 'Inclusion of these entries in the county-cosigned checkpoint is proven. Completeness (no later change left out) needs the item\'s full history against the newest checkpoint.', pending: 'Entries not yet cosigned: ', fp: 'Key fingerprints' };

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

async function run(button, out) {
  const trust = JSON.parse(document.getElementById('gk-trust').textContent);
  out.replaceChildren(el('p', T.running));
  out.className = '';
  try {
    const res = await fetch(button.dataset.proof, { cache: 'no-store' });
    if (!res.ok) throw new Error(`HTTP ${res.status}: ${(await res.json().catch(() => ({}))).error ?? ''}`);
    const answer = await res.json();
    const result = verifyItemBundle(answer, trust, { origin: button.dataset.origin, itemId: button.dataset.item });
    const list = el('ul');
    for (const s of result.steps) list.append(el('li', s));
    const keys = el('p', `${T.fp}: ` + [...trust.logKeys, ...trust.witnesses].map((k) => fingerprint(parseVkey(k))).join(' · '), 'note');
    const parts = [el('strong', `✔ ${T.ok}`), list, el('p', T.inclusion), keys];
    if (answer.pending?.length) parts.push(el('p', T.pending + answer.pending.join(', '), 'note'));
    out.replaceChildren(...parts);
    out.className = 'verified';
    out.dataset.state = 'verified';
  } catch (e) {
    const why = e.index !== undefined && !e.message.includes(`entry ${e.index}`) ? `${e.message} (entry ${e.index})` : e.message;
    out.replaceChildren(el('strong', `✘ ${T.failed}`), el('p', why));
    out.className = 'failed';
    out.dataset.state = 'failed';
  }
}

const button = document.getElementById('verify');
if (button) {
  const out = document.getElementById('verify-result');
  button.addEventListener('click', () => run(button, out));
}
