// The item page's "verify" button: fetches the proof bundle and checks it
// with verify.mjs against the keys embedded in the page (their fingerprints
// are shown, so a reader can compare them with keys published elsewhere).
import { verifyItemBundle, parseVkey, fingerprint } from './verify.mjs';

const zh = document.documentElement.lang.startsWith('zh');
const T = zh
  ? { running: '正在验证…', ok: '已验证', failed: '验证失败：发现与签名记录不符之处', failedDo: '这可能是篡改的证据。请保存本页（截图或打印）并报告本县纪委监委或政务公开监督部门；也可用 gongkai verify 独立核对。', unavailable: '暂时无法验证', unavailableDo: '未能取得证明（网络或服务器暂时故障），这不是篡改的证据。请稍后重试；如持续无法验证，请联系本县政务公开办公室。', inclusion: '已证明这些条目包含在县级副署的检查点中。完整性（没有遗漏之后的变更）需要对照最新检查点检查该信息的完整历史。', pending: '尚未副署的条目：', fp: '密钥指纹' }
  : { running: 'Verifying…', ok: 'Verified', failed: 'Verification failed: the records do not match their signatures', failedDo: 'This may be evidence of tampering. Keep this page (screenshot or print) and report it to the county discipline inspection office or the open-government supervisor; gongkai verify can check it independently.', unavailable: 'Could not check right now', unavailableDo: 'The proof could not be fetched (a network or server outage); this is not evidence of tampering. Try again later; if it persists, contact the county open-government office.', inclusion: 'Inclusion of these entries in the county-cosigned checkpoint is proven. Completeness (no later change left out) needs the item\'s full history against the newest checkpoint.', pending: 'Entries not yet cosigned: ', fp: 'Key fingerprints' };

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

async function run(button, out) {
  const trust = JSON.parse(document.getElementById('gk-trust').textContent);
  out.replaceChildren(el('p', T.running));
  out.className = '';
  try {
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
    const answer = await res.json();
    const result = verifyItemBundle(answer, trust, { origin: button.dataset.origin, itemId: button.dataset.item });
    const list = el('ul');
    for (const s of steps(result)) list.append(el('li', s));
    const keys = el('p', `${T.fp}: ` + [...trust.logKeys, ...trust.witnesses].map((k) => fingerprint(parseVkey(k))).join(' · '), 'note');
    const parts = [el('strong', `✔ ${T.ok}`), list, el('p', T.inclusion), keys];
    if (answer.pending?.length) parts.push(el('p', T.pending + answer.pending.join(', '), 'note'));
    out.replaceChildren(...parts);
    out.className = 'verified';
    out.dataset.state = 'verified';
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

const button = document.getElementById('verify');
if (button) {
  const out = document.getElementById('verify-result');
  button.addEventListener('click', () => run(button, out));
}
