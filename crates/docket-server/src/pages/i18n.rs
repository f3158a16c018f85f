//! The pages' two languages: Chinese (the default for a browser that
//! prefers it) and English. Every string a template shows is a key of
//! [`STRINGS`]; a test checks that every key the templates use is there.
//! Data (case numbers, agency ids, rule ids, what a finding says) is shown
//! as the ledger holds it, in neither language's words.

use std::collections::BTreeMap;

use axum::http::HeaderMap;

/// A page's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    Zh,
    En,
}

/// The cookie that keeps the language chosen with the switch.
pub(crate) const LANG_COOKIE: &str = "docket_lang";

impl Lang {
    /// The language code, as in `?lang=` and the `lang` attribute.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    /// The other language (the switch's target).
    pub(crate) fn other(self) -> Self {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }

    fn parse(code: &str) -> Option<Self> {
        match code {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The language of a request: `?lang=`, else the switch's cookie, else
    /// the browser's first preference between the two, else Chinese.
    pub(crate) fn of(asked: Option<&str>, headers: &HeaderMap) -> Self {
        if let Some(lang) = asked.and_then(Self::parse) {
            return lang;
        }
        if let Some(lang) = super::cookie(headers, LANG_COOKIE).and_then(Self::parse) {
            return lang;
        }
        let accept = headers.get("accept-language").and_then(|v| v.to_str().ok()).unwrap_or("");
        let first = accept
            .split(',')
            .map(|p| p.trim().to_ascii_lowercase())
            .find(|p| p.starts_with("zh") || p.starts_with("en"));
        match first {
            Some(p) if p.starts_with("en") => Lang::En,
            _ => Lang::Zh,
        }
    }

    /// Every string of the pages in this language, by key.
    pub(crate) fn strings(self) -> BTreeMap<&'static str, &'static str> {
        STRINGS.iter().map(|(key, zh, en)| (*key, if self == Lang::Zh { *zh } else { *en })).collect()
    }
}

/// (key, Chinese, English).
pub(crate) const STRINGS: &[(&str, &str, &str)] = &[
    ("site", "docket 监督台", "docket oversight desk"),
    ("switch", "English", "中文"),
    ("public_list", "公示名单", "Public list"),
    ("audit_desk", "审计台", "Audit desk"),
    ("worklist", "工作清单", "Worklist"),
    ("sign_in", "登录", "Sign in"),
    ("sign_out", "退出", "Sign out"),
    ("signed_in_as", "已登录机构", "Signed in as"),
    ("search", "搜索", "Search"),
    ("search_hint", "统一社会信用代码、身份证号或案号", "Credit code, identity number or case number"),
    ("list", "名单", "List"),
    ("authority", "认定机关", "Authority"),
    ("status", "状态", "Status"),
    ("any", "全部", "Any"),
    ("active", "有效", "Active"),
    ("contested", "异议中", "Contested"),
    ("subject", "主体", "Subject"),
    ("case_number", "案号", "Case number"),
    ("listing_date", "列入日期", "Listed on"),
    ("recorded_date", "记录日期", "Recorded on"),
    ("start_date", "起始日期", "In force from"),
    ("end_date", "截止日期", "Until"),
    ("severity", "严重程度", "Severity"),
    ("legal_basis", "法律依据", "Legal basis"),
    ("basis_document", "决定文书", "Decision document"),
    ("entries", "条", "entries"),
    ("shown", "显示", "showing"),
    ("previous", "上一页", "Previous"),
    ("next", "下一页", "Next"),
    ("no_entries", "没有符合条件的条目。", "No entries match."),
    ("changes_since", "变动（自记录序号）", "What changed since record"),
    ("changes_now", "当前游标", "Cursor now"),
    ("bookmark_hint", "保存此链接，以后查看此后的变动：", "Keep this link to see what changes after now:"),
    ("op_add", "新增", "Added"),
    ("op_mod", "变更", "Changed"),
    ("op_del", "移出", "Removed"),
    ("no_changes", "没有变动。", "No changes."),
    ("public_case", "公示条目", "Public entry"),
    ("not_public", "此案不在公示名单上（未生效、已移出，或依法不予公示）。", "This case is not on the public list (not in force, removed, or not published by law)."),
    ("timeline_link", "案件时间线（需登录）", "Case timeline (sign-in needed)"),
    ("signin_title", "以机构身份登录", "Sign in as an agency"),
    ("signin_help", "用机构密钥签名 POST /v1/session 取得会话令牌，粘贴于此。令牌保存在仅限 HTTP 的 Cookie 中，到期后需重新登录。", "Sign POST /v1/session with your agency key for a session token and paste it here. It is kept in an HttpOnly cookie until it expires."),
    ("token", "会话令牌", "Session token"),
    ("signed_out", "已退出。", "Signed out."),
    ("timeline", "案件时间线", "Case timeline"),
    ("as_of", "记录截至", "As recorded at"),
    ("valid_at", "效力时点", "In force at"),
    ("as_of_hint", "序号或时间；留空为现在", "seq or time; empty for now"),
    ("show", "查看", "Show"),
    ("valid_time", "生效时间", "Valid time"),
    ("record_time", "记录时间", "Recorded"),
    ("backdated", "倒签", "back-dated"),
    ("step", "步骤", "Step"),
    ("by", "机关", "By"),
    ("findings", "审计发现", "Findings"),
    ("no_findings", "无审计发现。", "No findings."),
    ("rule", "规则", "Rule"),
    ("evidence", "证据", "Evidence"),
    ("deadline", "期限", "Deadline"),
    ("due", "届满", "due"),
    ("provisional", "暂定", "provisional"),
    ("periods", "期间", "Periods"),
    ("holidays", "节假日", "Holidays"),
    ("adjusted_days", "调休上班日", "Adjusted working days"),
    ("rolled_from", "顺延自", "rolled from"),
    ("measures", "联合惩戒措施", "Measures"),
    ("agency", "机构", "Agency"),
    ("measure", "措施", "Measure"),
    ("applied", "已实施", "Applied"),
    ("lifted", "已解除", "Lifted"),
    ("in_place", "仍在实施", "in place"),
    ("proof", "证明", "Proof"),
    ("signed_form", "签名原件", "signed form"),
    ("verify", "验证", "verify"),
    ("verified", "已验证", "verified"),
    ("failed", "验证失败", "failed"),
    ("proof_help", "浏览器用 WebCrypto（SHA-256、Ed25519）在本页校验：事件签名、Merkle 包含证明、检查点签名。日志公钥：", "Your browser checks here, with WebCrypto (SHA-256, Ed25519): the event's signature, its Merkle inclusion proof and the checkpoint's signature. Log key:"),
    ("findings_not_on_step", "未对应到具体步骤的发现（逾期或待办）", "Findings on no recorded step (overdue or pending)"),
    ("audit_title", "审计：按规则与机构统计", "Audit: findings by rule and agency"),
    ("total", "合计", "Total"),
    ("cases_audited", "审计案件数", "Cases audited"),
    ("violated", "违反", "violated"),
    ("late", "迟延", "late"),
    ("overdue", "逾期", "overdue"),
    ("pending", "待办", "pending"),
    ("upcoming", "未来工作日内到期", "Due within the next working days"),
    ("working_days", "工作日", "working days"),
    ("drill_down", "明细", "Details"),
    ("case", "案件", "Case"),
    ("what", "情况", "What"),
    ("to_apply", "应实施", "To apply"),
    ("must_lift", "应解除", "Must lift"),
    ("since", "起始", "Since"),
    ("why", "原因", "Why"),
    ("mou", "合作备忘录", "MOU"),
    ("error", "出错了", "Something is wrong"),
    ("rule_set", "规则集", "Rule set"),
    ("calendar", "日历", "Calendar"),
    ("notice_served", "告知送达", "Notice served"),
    ("objection_window", "异议期", "Objection window"),
    ("answer_due", "异议答复期限", "Answer due"),
    ("decision", "认定决定", "Decision"),
    ("restoration", "信用修复", "Restoration"),
    ("removal_due", "移出期限", "Removal due"),
    ("restoration_processing", "信用修复申请办理期限", "Restoration application: decision due"),
    ("revocation", "撤销认定", "Revocation"),
    ("done_on", "办结于", "done on"),
    ("term_end", "期限届满", "Term ends"),
];
