//! The portal's words, Chinese first, English available (`?lang=en`).

/// A page language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// 中文 (default).
    Zh,
    /// English.
    En,
}

impl Lang {
    /// From the `lang` query parameter; Chinese unless `en`.
    pub fn from_param(p: &str) -> Lang {
        if p == "en" { Lang::En } else { Lang::Zh }
    }

    /// The `lang` attribute of `<html>`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The query suffix that keeps this language on links (`""` or `lang=en`).
    pub fn query(self) -> &'static str {
        match self {
            Lang::Zh => "",
            Lang::En => "lang=en",
        }
    }

    /// Translates a message key; unknown keys come back as themselves.
    /// An event kind (FORMAT.md names such as `amended`) in words.
    pub fn kind(self, name: &str) -> String {
        let (zh, en) = match name {
            "genesis" => ("建立日志", "log created"),
            "matter_defined" => ("设立事项", "matter defined"),
            "matter_changed" => ("变更事项", "matter changed"),
            "matter_retired" => ("停止事项", "matter retired"),
            "published" => ("发布", "published"),
            "amended" => ("更正", "amended"),
            "withdrawn" => ("撤回", "withdrawn"),
            "redacted" => ("删除内容", "content removed"),
            "request_received" => ("收到申请", "request received"),
            "request_clarification" => ("补正", "clarification"),
            "third_party_consultation" => ("征求第三方意见", "third-party consultation"),
            "request_extended" => ("延期答复", "deadline extended"),
            "request_answered" => ("答复申请", "request answered"),
            "key_rotated" => ("更换签名密钥", "signing key rotated"),
            "challenge_filed" => ("复议/诉讼立案", "review or lawsuit filed"),
            "challenge_concluded" => ("复议/诉讼结案", "review or lawsuit concluded"),
            other => return other.to_owned(),
        };
        match self {
            Lang::Zh => zh.to_owned(),
            Lang::En => en.to_owned(),
        }
    }

    pub fn t(self, key: &'static str) -> &'static str {
        let (zh, en) = match key {
            "portal" => ("政务公开门户", "Disclosure portal"),
            "home" => ("首页", "Home"),
            "inspection" => ("监督检查", "Inspection"),
            "departments" => ("部门", "Departments"),
            "department" => ("部门", "Department"),
            "origin" => ("日志标识", "Log origin"),
            "size" => ("台账记录数", "Log entries"),
            "cosigned" => ("已副署记录数", "Entries cosigned"),
            "glossary" => ("术语说明", "Glossary"),
            "fingerprint" => ("密钥指纹", "Key fingerprint"),
            "recorded" => ("记录于", "recorded"),
            "changed_on" => ("变更日期", "changed on"),
            "formed_on" => ("形成日期", "formed on"),
            "digest" => (
                "内容摘要（用于核对下载的文件）",
                "Content digest (to check a downloaded file)",
            ),
            "cosigned_at" => ("最近副署时间", "Last cosigned"),
            "alerts" => ("警报", "Alerts"),
            "none" => ("无", "none"),
            "never" => ("从未", "never"),
            "catalog" => ("公开目录", "Disclosure catalog"),
            "matters" => ("标准目录事项", "Standard catalog of matters"),
            "matter" => ("事项", "Matter"),
            "category" => ("类别", "Category"),
            "basis" => ("依据", "Legal basis"),
            "deadline" => ("时限", "Deadline"),
            "working_days" => ("个工作日", "working days"),
            "audience" => ("公开对象", "Audience"),
            "public" => ("社会公众", "the public"),
            "periodicity" => ("周期", "Periodicity"),
            "items" => ("信息", "Items"),
            "item" => ("信息", "Item"),
            "late" => ("逾期", "late"),
            "missing" => ("缺失期次", "Missing periods"),
            "obligations_met" => ("已履行", "met"),
            "retired" => ("已废止", "retired"),
            "changes" => ("变更次数", "Changes"),
            "title" => ("标题", "Title"),
            "status" => ("状态", "Status"),
            "current" => ("现行", "current"),
            "amended" => ("已更正", "amended"),
            "withdrawn" => ("已撤回", "withdrawn"),
            "redacted" => ("已删除内容", "redacted"),
            "date_formed" => ("形成日期", "Formed"),
            "date_published" => ("发布日期", "Published"),
            "period" => ("期次", "Period"),
            "search" => ("搜索标题", "Search titles"),
            "filter" => ("筛选", "Filter"),
            "all" => ("全部", "all"),
            "from" => ("起", "from"),
            "to" => ("止", "to"),
            "next_page" => ("下一页", "Next page"),
            "prev_page" => ("上一页", "Previous page"),
            "sort" => ("排序", "Order"),
            "newest" => ("最新发布在前", "Newest first"),
            "oldest" => ("最早发布在前", "Oldest first"),
            "by_title" => ("按标题", "By title"),
            "inverted_range" => (
                "起始日期晚于截止日期：请交换两个日期。",
                "The start date is after the end date: swap the two dates.",
            ),
            "no_matching_items" => (
                "没有符合条件的条目。请放宽筛选条件（事项、状态、日期或关键词）。",
                "No item matches. Loosen the filters (matter, status, dates or words).",
            ),
            "no_items_yet" => (
                "本部门尚未发布任何条目。",
                "This department has not published any item yet.",
            ),
            "latest" => ("最新公开", "Latest disclosures"),
            "feed_county" => ("最新公开（Atom 订阅）", "Latest disclosures (Atom feed)"),
            "feed_alerts" => ("监督提醒（Atom 订阅）", "Alerts (Atom feed)"),
            "feed_department" => (
                "本部门最新公开（Atom 订阅）",
                "This department's disclosures (Atom feed)",
            ),
            "withdrawn_banner" => ("本信息已撤回，撤回日期", "This item was withdrawn on"),
            "withdrawn_explained" => (
                "撤回不等于删除：为保证公开记录完整，原文与全部历史仍可查阅和核验（依法删除的个人信息等内容除外）。",
                "Withdrawn is not deleted: so that the public record stays complete, the document and its whole history stay public and verifiable (except content removed by law, such as personal data).",
            ),
            "versions" => ("各版本", "Versions"),
            "changes_between" => ("版本间的改动", "Changes between versions"),
            "requests" => ("依申请公开", "Disclosure requests"),
            "request" => ("申请", "Request"),
            "subject" => ("申请内容", "Subject"),
            "received" => ("收到日期", "Received"),
            "answered" => ("答复日期", "Answered"),
            "decision" => ("答复", "Decision"),
            "annual_report" => ("政府信息公开工作年度报告", "Annual disclosure report"),
            "extended" => ("已延期", "extended"),
            "overdue" => ("超期未答复", "overdue"),
            "on_time" => ("按时", "on time"),
            "not_judged" => ("暂无法判断", "cannot judge yet"),
            "history" => ("历史记录", "History"),
            "index" => ("序号", "Index"),
            "event" => ("事件", "Event"),
            "reason" => ("理由", "Reason"),
            "date" => ("日期", "Date"),
            "due" => ("应公开日期", "Due"),
            "related" => ("相关信息", "Related items"),
            "content" => ("正文", "Content"),
            "download" => ("下载", "Download"),
            "restricted" => (
                "本事项仅向特定对象公开，正文不在此网上提供；其内容摘要见下，可用于核对您取得的文件。",
                "This matter is for a specific group; its content is not served here. Its digest is below, to check a copy you obtain.",
            ),
            "content_gone" => (
                "该版本正文已依法删除，内容摘要保留。",
                "This version's content was redacted; the commitment stays.",
            ),
            "imported" => ("批量导入（不计逾期）", "imported (not counted as late)"),
            "verify" => ("在浏览器中验证", "Verify in this browser"),
            "verify_note" => (
                "验证在您的浏览器中进行：检查条目签名、链式哈希和在县级副署检查点中的包含证明。它证明这些条目在日志中；证明“之后没有遗漏的变更”需要对照最新检查点检查完整历史。它能发现被篡改的缓存、镜像或数据块，但不能防范同时提供脚本和密钥的恶意门户——请将下列密钥指纹与其他渠道公布的指纹核对。",
                "Verification runs in your browser: entry signatures, chain links and inclusion in the county-cosigned checkpoint. It proves these entries are in the log; that no later change was left out needs the item's full history against the newest checkpoint. It catches tampered caches, mirrors or tiles, not a malicious portal serving both this script and the keys — compare the key fingerprints below with ones published elsewhere.",
            ),
            "keys" => ("验证所用密钥", "Keys verified against"),
            "root" => ("根哈希", "Root hash"),
            "guide" => ("政府信息公开指南", "Guide to open government information"),
            "host" => ("主办单位", "Run by"),
            "contact" => ("联系方式", "Contact"),
            "office" => ("受理机构", "Where to ask"),
            "address" => ("地址", "Address"),
            "phone" => ("电话", "Telephone"),
            "hours" => ("办公时间", "Hours"),
            "email" => ("电子邮箱", "E-mail"),
            "supervisor" => ("监督部门", "Supervising office"),
            "leaf_hash" => ("叶哈希", "Leaf hash"),
            "proof_link" => ("打印/分享证明", "Printable proof"),
            "proof_title" => ("公开信息存证", "Proof of publication"),
            "proof_size" => ("台账记录数", "Log entries"),
            "proof_entries" => ("本条信息的全部记录", "Every record of this item"),
            "proof_pending" => (
                "以下记录尚未被副署的检查点包含，稍后再打印可一并证明：",
                "Not yet in a cosigned checkpoint (print again later to include them):",
            ),
            "proof_checkpoint_note" => (
                "签名检查点（部门签名与见证方副署，原文）",
                "The signed checkpoint (department signature and witness cosignatures, verbatim)",
            ),
            "proof_how" => ("任何人都可以离线核对", "Anyone can check it offline"),
            "proof_download" => (
                "下载证明文件（.proof.json）",
                "Download the proof file (.proof.json)",
            ),
            "proof_how_trust" => (
                "取得本县公布的信任文件（trust.toml），核对其中密钥指纹与下方一致；",
                "Get the county's published trust file (trust.toml) and compare its key fingerprints with those below;",
            ),
            "proof_statement" => (
                "证明文件包含上述每条记录的原文、签名，以及它们包含在该检查点中的证明；gongkai check-proof 逐一核对。本页只是说明，证明文件才是证据。它证明这些记录存在于日志中，不证明此后没有新的更正或撤回：请对照最新的检查点。",
                "The proof file holds each record above verbatim, its signature and its inclusion proof in that checkpoint; gongkai check-proof checks them all. This page describes; the file proves. It shows these records are in the log, not that no later amendment or withdrawal exists: check against the newest checkpoint.",
            ),
            "check_file" => (
                "核对已下载的文件（选择文件或拖放到此处）：",
                "Check a downloaded file (choose it, or drop it here):",
            ),
            "check_file_note" => (
                "文件不会上传：您的浏览器用本页公布的盐值计算它的摘要，并与上面已验证的记录所承诺的摘要和长度比较。一致即说明它正是机关发布的那一版。",
                "The file is not uploaded: your browser computes its digest with the salt this page gives and compares it with the digest and length the verified entries above commit to. A match means it is exactly the version the agency published.",
            ),
            "witnesses" => ("独立见证方", "Independent witnesses"),
            "witnesses_note" => (
                "县以外的见证方（如纪委监委、第三方）只副署与其此前所见一致的检查点：县无法向不同的人展示不同的历史。下表为每个见证方最近副署的规模及落后条目数。",
                "Parties outside the county (the inspection office, third parties) cosign only checkpoints consistent with what they saw before, so the county cannot show different histories to different people. The table shows what each last cosigned and how far it lags.",
            ),
            "witness" => ("见证方", "Witness"),
            "log" => ("日志", "Log"),
            "lag" => ("落后条目", "Lag (entries)"),
            "unreachable" => ("无法连接", "unreachable"),
            "refused" => ("拒绝", "refused"),
            "department_key" => ("部门密钥", "Department key"),
            "county_key" => (
                "见证方密钥（副署检查点）",
                "Witness key (cosigns checkpoints)",
            ),
            "evidence" => ("不当行为证据", "Evidence of misbehaviour"),
            "late_items" => ("逾期公开", "Late disclosures"),
            "late_requests" => ("逾期或超期的申请", "Late or overdue requests"),
            "item_changes" => ("更正、撤回与删除", "Amendments, withdrawals and redactions"),
            "catalog_changes" => ("目录变更", "Catalog changes"),
            "no_findings" => ("无", "none"),
            "checkpoint" => ("检查点", "Checkpoint"),
            "tiles" => ("日志文件（tlog-tiles）", "Log files (tlog-tiles)"),
            "not_found" => ("未找到", "Not found"),
            "bad_request" => ("请求有误", "Bad request"),
            "cleared" => ("已处理", "cleared"),
            "kind" => ("类型", "Kind"),
            _ => (key, key),
        };
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }
}
