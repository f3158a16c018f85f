//! The oversight desk's pages (`src/pages`), over a demo ledger with
//! planted violations and an oversight agency: first as a browser without
//! JavaScript sees them (plain HTTP), then in headless Chromium
//! (`tests/browser/run.mjs`, playwright-core driving Debian's `chromium`):
//! the public list search, the language switch, a planted violation's
//! timeline with its finding on the right step, the in-page proof check
//! ("verified", and "failed" once a served byte is altered), and the audit
//! desk's counts against the audit report `docket audit --format json`
//! prints (the same `docket_audit::audit` over the same ledger).

// Tests panic on failure.
#![allow(clippy::unwrap_used)]

mod support;

use docket_client::query_value as encode;
use std::collections::BTreeMap;
use std::path::Path;

use docket_fold::{query, Store, StoreLimits};
use docket_model::event::{Body, RegistryEvent, Role};
use docket_model::{Name, PublicKey};
use docket_server::ServerLimits;
use docket_world::Violation;
use ed25519_dalek::SigningKey;
use support::*;

const OVERSIGHT: &str = "audit-office";
const SUBJECTS: u64 = 40;
/// The valid time the audit desk is judged at in these tests.
const VALID_AT: &str = "2025-06-01";

fn oversight_key() -> SigningKey {
    SigningKey::from_bytes(&[0x41; 32])
}

/// A case of the demo: its list, subject and number.
#[derive(Debug, Clone)]
struct Case {
    list: String,
    subject: String,
    number: String,
}

impl Case {
    fn timeline(&self) -> String {
        format!(
            "/desk/case?subject={}&list={}&number={}",
            encode(&self.subject),
            encode(&self.list),
            encode(&self.number)
        )
    }
}

/// The demo, the audit report as `docket audit --format json` computes it
/// (before the server takes the directory), the server with an oversight
/// agency, and that agency's session token.
struct Desk {
    server: Running,
    planted: Vec<(Case, Violation)>,
    /// Restoration applications: the case, when received and when decided (RFC 3339).
    applications: Vec<(Case, String, String)>,
    report: docket_audit::Report,
    token: String,
}

fn setup(dir: &Path, subjects: u64) -> Desk {
    let (demo, _) = docket_world::write_ledger(dir, subjects, SEED).unwrap();
    let planted = demo
        .planted
        .iter()
        .map(|(number, violation)| {
            let case = demo
                .events
                .iter()
                .find_map(|e| match &e.event().body {
                    Body::Case(c) if c.number.as_str() == number => {
                        Some(Case { list: c.list.to_string(), subject: c.subject.to_string(), number: number.clone() })
                    }
                    _ => None,
                })
                .unwrap();
            (case, *violation)
        })
        .collect();
    let applications = applications(&demo.events);
    let report = {
        let (store, _) = Store::open(dir, StoreLimits::default()).unwrap();
        store.catch_up().unwrap();
        let as_of = query::resolve(&store, None, Some(VALID_AT)).unwrap();
        let (rules, calendar) = (docket_audit::RuleSet::bundled(), docket_audit::Calendar::bundled());
        docket_audit::audit::audit(&store, as_of, &Default::default(), &rules, &calendar).unwrap()
    };
    let server = start(dir, ServerLimits::default());
    let register = registry_event(
        &demo.registry_root,
        RegistryEvent::AgencyRegistered {
            agency: Name::parse(OVERSIGHT).unwrap(),
            name: "National Audit Office".into(),
            roles: vec![Role::Oversight],
            keys: vec![PublicKey(oversight_key().verifying_key().to_bytes())],
        },
    );
    let reply = post(server.addr, "/v1/events", &body_of(&register));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let seq = reply.json()["seq"].as_u64().unwrap();
    assert_eq!(get(server.addr, &format!("/v1/views/registry?min_seq={seq}")).status, 200);
    let session = open_session(server.addr, OVERSIGHT, &oversight_key());
    assert_eq!(session.status, 200, "{}", session.body);
    let token = session.json()["token"].as_str().unwrap().to_owned();
    Desk { server, planted, applications, report, token }
}

/// The demo's restoration applications that were decided: the case, the
/// application's receipt and the decision's valid time.
fn applications(events: &[docket_model::SignedEvent]) -> Vec<(Case, String, String)> {
    use docket_model::event::CaseAction;
    let decided = |id| {
        events.iter().find_map(|e| match &e.event().body {
            Body::Case(c) => match &c.action {
                CaseAction::RestorationDecision { application, .. } if *application == id => {
                    Some(e.event().effective_at.to_string())
                }
                _ => None,
            },
            _ => None,
        })
    };
    events
        .iter()
        .filter_map(|e| match &e.event().body {
            Body::Case(c) => match &c.action {
                CaseAction::RestorationApplication { received_at, .. } => {
                    let case =
                        Case { list: c.list.to_string(), subject: c.subject.to_string(), number: c.number.to_string() };
                    Some((case, received_at.to_string(), decided(e.id())?))
                }
                _ => None,
            },
            _ => None,
        })
        .collect()
}

impl Desk {
    fn page(&self, path: &str) -> Reply {
        request(self.server.addr, "GET", path, b"", &format!("Cookie: docket_session={}\r\n", self.token))
    }

    fn case_with(&self, violation: Violation) -> &Case {
        &self.planted.iter().find(|(_, v)| *v == violation).unwrap().0
    }

    /// The audit's counts by "rule agency status", as the desk's cells are compared.
    fn counts(&self) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        for f in &self.report.findings {
            let status = serde_json::to_value(f.status).unwrap();
            *counts.entry(format!("{} {} {}", f.rule.id(), f.agency, status.as_str().unwrap())).or_default() += 1;
        }
        counts
    }

    /// Where the planted notice-less designation's finding must be: its
    /// case, the finding's rule and the seq of the designation it names.
    fn planted_finding(&self) -> (Case, &'static str, u64) {
        let case = self.case_with(Violation::NoNotice).clone();
        let rule = "notice-before-designation";
        let finding = self
            .report
            .findings
            .iter()
            .find(|f| f.number.as_str() == case.number && f.rule.id() == rule)
            .unwrap_or_else(|| panic!("the audit finds {rule} on {}", case.number));
        (case, rule, finding.evidence.last().unwrap().seq)
    }
}

/// The values of attribute `name` of every element of `html` with class `class`, in order.
fn attribute_values(html: &str, marker: &str, name: &str) -> Vec<String> {
    html.match_indices(marker)
        .filter_map(|(at, _)| {
            let tag = &html[at..at + html[at..].find('>').unwrap_or(0)];
            let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
            Some(tag[start..start + tag[start..].find('"')?].to_owned())
        })
        .collect()
}

#[test]
fn pages_work_without_javascript() {
    let dir = tempfile::tempdir().unwrap();
    let desk = setup(dir.path(), SUBJECTS);
    let addr = desk.server.addr;
    public_list_searches_filters_and_masks(&desk);

    // The language switch: English on asking, kept in a cookie, the switch leading back.
    let english = get(addr, "/?lang=en");
    assert_eq!(english.status, 200);
    assert!(english.body.contains("<html lang=\"en\">") && english.body.contains("Public list"));
    let switch = attribute_values(&english.body, "id=\"lang-switch\"", "href");
    assert_eq!(switch, ["&#x2f;?lang=zh"], "the switch leads to Chinese (minijinja escapes '/')");
    assert!(english.headers.contains("set-cookie: docket_lang=en"));
    let chinese = request(addr, "GET", "/", b"", "Accept-Language: zh-CN,zh;q=0.9\r\n");
    assert!(chinese.body.contains("<html lang=\"zh\">") && chinese.body.contains("公示名单"));
    let kept = request(addr, "GET", "/", b"", "Cookie: docket_lang=en\r\nAccept-Language: zh-CN\r\n");
    assert!(kept.body.contains("<html lang=\"en\">"), "the cookie wins over the browser's preference");

    // Signed-in pages: 401 with a sign-in link without a session, or with a forged one.
    let (case, rule, seq) = desk.planted_finding();
    let anonymous = get(addr, &case.timeline());
    assert_eq!(anonymous.status, 401);
    assert!(anonymous.body.contains("id=\"sign-in-link\""));
    let forged = request(addr, "GET", &case.timeline(), b"", "Cookie: docket_session=v1:1:00:00:spc\r\n");
    assert_eq!(forged.status, 401, "{}", forged.body);

    // The planted violation's timeline: the finding on the designation's row.
    let timeline = desk.page(&case.timeline());
    assert_eq!(timeline.status, 200, "{}", timeline.body);
    assert!(timeline.headers.contains("cache-control: private, no-store"));
    let row_start = timeline.body.find(&format!("id=\"seq-{seq}\"")).expect("the designation's row");
    let row = &timeline.body[row_start..row_start + timeline.body[row_start..].find("</tr>").unwrap()];
    assert!(row.contains("data-kind=\"designation\""), "row #{seq} is the designation: {row}");
    assert!(row.contains(&format!("data-rule=\"{rule}\"")), "{rule} is on the designation's row");
    assert!(timeline.body.contains("id=\"periods\""));
    // An agency that follows the list but did not have to act sees the case, not that finding (as /v1/audit).
    let railway = open_session(addr, "china-railway", &docket_world::key(SEED, "china-railway"));
    let railway = railway.json()["token"].as_str().unwrap().to_owned();
    let followed = request(addr, "GET", &case.timeline(), b"", &format!("Cookie: docket_session={railway}\r\n"));
    assert_eq!(followed.status, 200, "{}", followed.body);
    assert!(followed.body.contains(&format!("id=\"seq-{seq}\"")));
    assert!(!followed.body.contains(&format!("data-rule=\"{rule}\"")), "spc's finding is not china-railway's to read");
    audit_desk_counts_equal_the_report(&desk);
    restoration_and_removal_on_the_strip(&desk);
    sign_in_and_records(&desk, seq);
}

/// The period block named `name` on a timeline page (up to the next period).
fn period<'a>(html: &'a str, name: &str) -> &'a str {
    let marker = format!("class=\"period\" data-name=\"{name}\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no period {name} on the page"));
    let end = html[start + 1..].find("class=\"period\"").map_or(html.len(), |e| start + 1 + e);
    &html[start..end]
}

/// The strip draws each period as the audit counts it: a restoration
/// application's decision deadline (against the audit's pending finding
/// on the day of receipt) and its decision day, and the measures' removal
/// deadline after the designation ended (against the audit's finding), with
/// the holidays and adjusted working days that moved each.
fn restoration_and_removal_on_the_strip(desk: &Desk) {
    let addr = desk.server.addr;
    let (case, received, decided) = desk.applications.first().expect("the demo has restoration applications");
    let path = format!("/v1/audit?valid_at={}&list={}&limit=1000", encode(received), encode(&case.list));
    let audit = get_with(addr, OVERSIGHT, oversight_key(), &path).json();
    let pending = audit["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["number"] == case.number.as_str() && f["rule"] == "restoration-decided-in-time")
        .unwrap_or_else(|| panic!("on the day of receipt the audit has the application pending: {audit}"));
    assert_eq!(pending["status"], "pending");
    let then = desk.page(&format!("{}&valid_at={}&lang=en", case.timeline(), encode(received)));
    assert_eq!(then.status, 200, "{}", then.body);
    strip_matches(period(&then.body, "restoration_processing"), &pending["deadline"]);
    let now = desk.page(&format!("{}&lang=en", case.timeline()));
    let block = period(&now.body, "restoration_processing");
    let done = &decided[..10];
    assert_eq!(attribute_values(block, "data-name=", "data-done"), [done], "{block}");
    assert!(block.contains(&format!(" done\" title=\"{done}")), "the decision's day is marked on the strip: {block}");

    let removal = desk.report.findings.iter().find(|f| f.rule.id() == "removal-in-time").expect("a removal finding");
    let case =
        Case { list: removal.list.to_string(), subject: removal.subject.clone(), number: removal.number.to_string() };
    let page = desk.page(&format!("{}&valid_at={VALID_AT}&lang=en", case.timeline()));
    strip_matches(period(&page.body, "removal_due"), &serde_json::to_value(&removal.deadline).unwrap());
}

/// A period block shows the deadline's start and due date, each holiday
/// it crossed (named) and each adjusted working day.
fn strip_matches(block: &str, deadline: &serde_json::Value) {
    assert_eq!(attribute_values(block, "data-name=", "data-from"), [deadline["from"].as_str().unwrap()], "{block}");
    assert_eq!(attribute_values(block, "data-name=", "data-due"), [deadline["due"].as_str().unwrap()], "{block}");
    for holiday in deadline["holidays_crossed"].as_array().unwrap() {
        let (date, name) = (holiday["date"].as_str().unwrap(), holiday["name"].as_str().unwrap());
        assert!(block.contains(&format!("{date} {name}")), "holiday {date} {name} is shown: {block}");
    }
    for day in deadline["working_days_crossed"].as_array().unwrap() {
        assert!(block.contains(day.as_str().unwrap()), "adjusted working day {day} is shown: {block}");
    }
}

/// Search by code and by case number, filters, paging, the public case page.
fn public_list_searches_filters_and_masks(desk: &Desk) {
    let addr = desk.server.addr;
    let public = get(addr, &format!("/v1/views/public?limit=10000&valid_at={VALID_AT}")).json();
    let entries = public["entries"].as_array().unwrap();
    assert!(!entries.is_empty());
    let all = get(addr, &format!("/?lang=en&valid_at={VALID_AT}"));
    assert_eq!(all.status, 200, "{}", all.body);
    assert!(all.headers.contains("text/html"));
    assert_eq!(attribute_values(&all.body, "id=\"total\"", "data-total"), [entries.len().to_string()]);
    // Every entry shown is the public view's own, masked by the view.
    let first = &entries[0];
    assert!(all.body.contains(first["subject"].as_str().unwrap()));
    let case = desk
        .planted
        .iter()
        .map(|(c, _)| c)
        .find(|c| entries.iter().any(|e| e["number"] == c.number.as_str()))
        .expect("a planted case on the public list");
    let by_number = get(addr, &format!("/?valid_at={VALID_AT}&q={}", encode(&case.number)));
    assert_eq!(attribute_values(&by_number.body, "id=\"total\"", "data-total"), ["1"], "{}", by_number.body);
    let by_code = get(addr, &format!("/?valid_at={VALID_AT}&q={}", encode(&case.subject)));
    assert!(by_code.body.contains(&format!(">{}</a>", case.number)), "search by the subject's code");
    // Fast on a slow link: compressed, a 304 for a page the reader holds, assets immutable.
    let path = format!("/?lang=en&valid_at={VALID_AT}");
    let gzip = request(addr, "GET", &path, b"", "Accept-Encoding: gzip\r\n");
    assert!(gzip.headers.contains("content-encoding: gzip"), "{}", gzip.headers);
    assert!(gzip.bytes.len() * 3 < all.bytes.len(), "gzip {} of {} bytes", gzip.bytes.len(), all.bytes.len());
    let etag = all.headers.lines().find_map(|l| l.strip_prefix("etag: ")).unwrap().to_owned();
    let held = request(addr, "GET", &path, b"", &format!("If-None-Match: {}\r\n", etag.replace("w/", "W/")));
    assert_eq!(held.status, 304, "{}", held.headers);
    assert!(held.bytes.is_empty());
    let css = attribute_values(&all.body, "rel=\"stylesheet\"", "href")[0].replace("&#x2f;", "/");
    let asset = get(addr, &css);
    assert_eq!(asset.status, 200, "{css}");
    assert!(asset.headers.contains("cache-control: public, max-age=31536000, immutable"));
    assert_eq!(get(addr, "/assets/desk-00000000.css").status, 404);
    let nothing = get(addr, "/?q=no-such-case&lang=en");
    assert!(nothing.body.contains("No entries match."));
    let bad = get(addr, "/?status=closed");
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("status"), "the error names the parameter: {}", bad.body);
    let page =
        get(addr, &format!("/case?list={}&number={}&valid_at={VALID_AT}", encode(&case.list), encode(&case.number)));
    assert!(page.body.contains("id=\"public-entry\""), "{}", page.body);
    let delta = get(addr, &format!("/?since=0&lang=en&valid_at={VALID_AT}"));
    assert!(delta.body.contains("class=\"change add\""), "the delta from an empty list adds entries");
}

fn audit_desk_counts_equal_the_report(desk: &Desk) {
    let page = desk.page(&format!("/desk/audit?valid_at={VALID_AT}"));
    assert_eq!(page.status, 200, "{}", page.body);
    let rules = attribute_values(&page.body, "class=\"count\"", "data-rule");
    let agencies = attribute_values(&page.body, "class=\"count\"", "data-agency");
    let statuses = attribute_values(&page.body, "class=\"count\"", "data-status");
    let values: Vec<u64> = page
        .body
        .match_indices("class=\"count\"")
        .map(|(at, _)| {
            let cell = &page.body[at..at + page.body[at..].find("</td>").unwrap()];
            let inner = cell.trim_end_matches("</a>");
            inner[inner.rfind('>').unwrap() + 1..].trim().parse().unwrap()
        })
        .collect();
    let mut shown = BTreeMap::new();
    for (((rule, agency), status), n) in rules.iter().zip(&agencies).zip(&statuses).zip(values) {
        if n > 0 {
            shown.insert(format!("{rule} {agency} {status}"), n);
        }
    }
    assert!(!shown.is_empty());
    assert_eq!(shown, desk.counts(), "the desk's counts are the audit report's");
    assert_eq!(attribute_values(&page.body, "id=\"counts\"", "data-total"), [desk.report.findings.len().to_string()]);
    // The drill-down lists the findings of one cell.
    let (key, n) = desk.counts().into_iter().next().unwrap();
    let mut parts = key.split(' ');
    let (rule, agency, status) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    let drill = desk.page(&format!("/desk/audit?valid_at={VALID_AT}&rule={rule}&agency={agency}&status={status}"));
    assert_eq!(drill.body.matches("<tr><td><a href=\"/desk/case?").count() as u64, n);
    // An agency without the oversight role is refused the desk.
    let spc = open_session(desk.server.addr, "spc", &docket_world::key(SEED, "spc")).json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = request(desk.server.addr, "GET", "/desk/audit", b"", &format!("Cookie: docket_session={spc}\r\n"));
    assert_eq!(refused.status, 403);
    let own = request(desk.server.addr, "GET", "/desk/worklist", b"", &format!("Cookie: docket_session={spc}\r\n"));
    assert_eq!(own.status, 200, "{}", own.body);
}

/// Sign-in keeps the token in an HttpOnly SameSite=Strict cookie; a record
/// is served for the proof check; page reads are in the inquiry register.
fn sign_in_and_records(desk: &Desk, seq: u64) {
    let addr = desk.server.addr;
    let form = format!("token={}&next=%2Fdesk%2Faudit", encode(&desk.token));
    let extra = "Content-Type: application/x-www-form-urlencoded\r\n";
    let signed = request(addr, "POST", "/signin", form.as_bytes(), extra);
    assert_eq!(signed.status, 303, "{}", signed.body);
    assert!(signed.headers.contains("location: /desk/audit"), "{}", signed.headers);
    let cookie = signed.headers.lines().find(|l| l.starts_with("set-cookie: docket_session=")).unwrap();
    assert!(cookie.contains("httponly") && cookie.contains("samesite=strict"), "{cookie}");
    let refused = request(addr, "POST", "/signin", b"token=v1%3A1%3A2%3A3%3Aspc", extra);
    assert_eq!(refused.status, 401);
    // Bad input gets a page naming what and where, never a panic.
    let bad_subject = desk.page("/desk/case?subject=uscc:123&list=cn-spc-defaulters&number=x");
    assert_eq!(bad_subject.status, 400);
    assert!(bad_subject.body.contains("subject"), "{}", bad_subject.body);
    let stranger = encode(&format!("uscc:{}", docket_world::numbered_uscc(999_999)));
    let no_case = desk.page(&format!("/desk/case?list=cn-spc-defaulters&number=none&subject={stranger}"));
    assert_eq!(no_case.status, 404, "{}", no_case.body);
    assert_eq!(desk.page("/desk/case?list=cn-spc-defaulters").status, 400, "subject and number are required");
    assert_eq!(desk.page("/desk/record/99999999").status, 404);
    assert_eq!(desk.page("/desk/audit?days=100000").status, 400);
    let record = desk.page(&format!("/desk/record/{seq}"));
    assert_eq!(record.status, 200, "{}", record.body);
    assert_eq!(record.json()["seq"], seq);
    assert!(record.json()["wire"].as_str().unwrap().len() > 128);
    let inquiries = get_with(addr, OVERSIGHT, oversight_key(), "/v1/inquiries?limit=1000").json();
    let questions: Vec<&str> =
        inquiries["inquiries"].as_array().unwrap().iter().filter_map(|i| i["question"].as_str()).collect();
    assert!(questions.iter().any(|q| q.starts_with("GET /desk/audit")), "page reads are recorded: {questions:?}");
    assert!(questions.iter().any(|q| q.starts_with(&format!("GET /desk/record/{seq}"))));
}

/// `docket audit --format json` on the served ledger (beside the server, as
/// operators run it) counts what the desk is compared with. `DOCKET_BIN`
/// names the binary (`.ci/run` sets it); without it the comparison is with
/// the same library call the command makes, and under CI=true it fails.
fn cli_audit_counts_equal(desk: &Desk, dir: &Path) {
    let Ok(docket) = std::env::var("DOCKET_BIN") else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "DOCKET_BIN must name the docket binary under CI");
        eprintln!("DOCKET_BIN not set: the desk is compared with docket_audit::audit only");
        return;
    };
    let output = std::process::Command::new(&docket)
        .args(["audit", "--dir"])
        .arg(dir)
        .args(["--valid-at", VALID_AT, "--format", "json"])
        .output()
        .unwrap_or_else(|e| panic!("{docket}: {e}"));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut counts = BTreeMap::new();
    for f in report["findings"].as_array().unwrap() {
        let key = format!(
            "{} {} {}",
            f["rule"].as_str().unwrap(),
            f["agency"].as_str().unwrap(),
            f["status"].as_str().unwrap()
        );
        *counts.entry(key).or_default() += 1;
    }
    assert_eq!(counts, desk.counts(), "`docket audit --format json` counts what the desk is checked against");
}

/// The acceptance run in headless Chromium. Needs Debian's `chromium` and
/// `npm ci` in tests/browser: `.ci/run` installs both, then runs it with
/// `--ignored`; without them it fails under CI=true and says it did not
/// run elsewhere. `DOCKET_SCREENSHOTS=DIR` keeps a screenshot of each page.
#[test]
#[ignore = "needs Debian's chromium and `npm ci` in tests/browser; .ci/run installs them and runs it"]
fn browser_acceptance() {
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let missing: Vec<&str> = [
        (!Path::new(&chromium).exists()).then_some("chromium (apt-get install chromium)"),
        (!browser_dir.join("node_modules/playwright-core").exists())
            .then_some("playwright-core (npm ci in tests/browser)"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !missing.is_empty() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the browser tests need {missing:?}; .ci/run installs them"
        );
        eprintln!("browser_acceptance NOT RUN: missing {missing:?}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let desk = setup(dir.path(), SUBJECTS);
    cli_audit_counts_equal(&desk, dir.path());
    let (case, rule, seq) = desk.planted_finding();
    let public = get(desk.server.addr, &format!("/v1/views/public?limit=10000&valid_at={VALID_AT}")).json();
    let searched = desk
        .planted
        .iter()
        .map(|(c, _)| c)
        .find(|c| public["entries"].as_array().unwrap().iter().any(|e| e["number"] == c.number.as_str()))
        .unwrap();
    let expect = serde_json::json!({
        "search": {"q": searched.subject, "number": searched.number},
        "public_case": format!("/case?list={}&number={}&valid_at={VALID_AT}", encode(&searched.list), encode(&searched.number)),
        "valid_at": VALID_AT,
        "token": desk.token,
        "case": {"path": case.timeline(), "seq": seq, "rule": rule, "kind": "designation"},
        "audit": {"valid_at": VALID_AT, "counts": desk.counts(), "total": desk.report.findings.len()},
        "worklist": "china-railway",
        "periods_case": format!("{}&valid_at={VALID_AT}", desk.case_with(Violation::WindowNotObserved).timeline()),
        "restoration_case": restoration_shown(&desk, &case).timeline(),
    });
    let output = std::process::Command::new("node")
        .arg(browser_dir.join("run.mjs"))
        .current_dir(&browser_dir)
        .env("DOCKET_URL", format!("http://{}", desk.server.addr))
        .env("DOCKET_EXPECT", expect.to_string())
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the browser run failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("all browser checks passed"), "{stdout}");
}

/// A restoration application's case to show (not the timeline already
/// shown): one whose decision period crossed a holiday or an adjusted
/// working day if the demo has one.
fn restoration_shown<'a>(desk: &'a Desk, shown: &Case) -> &'a Case {
    let calendar = docket_audit::Calendar::bundled();
    let moved = |received: &str| {
        let from = docket_model::Timestamp::parse(received).unwrap().china_date().naive();
        let due = calendar.due(from, docket_audit::Period::WorkingDays(10)).unwrap();
        !due.holidays_crossed.is_empty() || !due.working_days_crossed.is_empty()
    };
    let others = || desk.applications.iter().filter(|(c, _, _)| c.number != shown.number);
    let (case, _, _) = others().find(|(_, received, _)| moved(received)).or_else(|| others().next()).unwrap();
    case
}

/// A probe: the API read a page is compared with.
type Probe = Box<dyn Fn() -> Reply>;

/// Median wall time of `runs` GETs of `path` on loopback (body read), in ms.
fn median_ms(runs: usize, mut fetch: impl FnMut() -> Reply) -> (f64, usize) {
    let mut times = vec![];
    let mut bytes = 0;
    for _ in 0..runs {
        let start = std::time::Instant::now();
        let reply = fetch();
        times.push(start.elapsed().as_secs_f64() * 1e3);
        assert_eq!(reply.status, 200, "{}", reply.body);
        bytes = reply.bytes.len();
    }
    times.sort_by(f64::total_cmp);
    (times[runs / 2], bytes)
}

/// Server time of each page at a larger demo ledger, next to the API read
/// that computes the same view (the probe, same run): `BENCH.md`.
/// `DOCKET_PAGES_SUBJECTS` (default 20,000) sets the size.
#[test]
#[ignore = "a measurement for BENCH.md: DOCKET_PAGES_SUBJECTS=20000 cargo test -p docket-server --test pages -- --ignored --nocapture render_time"]
fn render_time() {
    let subjects = std::env::var("DOCKET_PAGES_SUBJECTS").map_or(20_000, |s| s.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let desk = setup(dir.path(), subjects);
    let addr = desk.server.addr;
    let records = get(addr, "/v1/views/registry")
        .headers
        .lines()
        .find_map(|l| l.strip_prefix("docket-watermark: ").map(str::to_owned));
    println!(
        "{subjects} subjects, {} records, set up in {:.0} s",
        records.unwrap_or_default(),
        started.elapsed().as_secs_f64()
    );
    let (case, _, _) = desk.planted_finding();
    let oversight = |path: String| move || get_with(addr, OVERSIGHT, oversight_key(), &path);
    let rows: Vec<(&str, String, Probe)> = vec![
        (
            "public list (`/`, 50 of the entries)",
            format!("/?valid_at={VALID_AT}"),
            Box::new(move || get(addr, &format!("/v1/views/public?valid_at={VALID_AT}&limit=50"))),
        ),
        (
            "public list, search by code",
            format!("/?valid_at={VALID_AT}&q={}", encode(&case.subject)),
            Box::new(move || get(addr, &format!("/v1/views/public?valid_at={VALID_AT}&limit=50"))),
        ),
        (
            "case timeline",
            case.timeline(),
            Box::new(oversight(format!("/v1/views/subject?subject={}", encode(&case.subject)))),
        ),
        (
            "audit desk",
            format!("/desk/audit?valid_at={VALID_AT}"),
            Box::new(oversight(format!("/v1/audit?valid_at={VALID_AT}&limit=10000"))),
        ),
        (
            "worklist (china-railway)",
            "/desk/worklist?agency=china-railway".into(),
            Box::new(oversight("/v1/views/enforcement?agency=china-railway".into())),
        ),
    ];
    let (floor, _) = median_ms(9, || get(addr, "/healthz"));
    println!("| page | page: median ms (bytes) | probe: the API read of the same view, median ms | page / probe |");
    println!("|---|---:|---:|---:|");
    for (name, path, probe) in rows {
        let (page, bytes) = median_ms(5, || desk.page(&path));
        let (api, _) = median_ms(5, &probe);
        println!("| {name} | {page:.1} ({bytes}) | {api:.1} | {:.2} |", page / api);
    }
    println!("| `GET /healthz` (the floor) | {floor:.2} | — | — |");
}
