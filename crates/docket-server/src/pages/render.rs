//! Templates (minijinja, compiled into the binary, HTML auto-escaped), the
//! context every page shares (language, the switch, who is signed in) and
//! the pages' errors.

use std::sync::OnceLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use minijinja::{context, Environment, Value};

use super::i18n::{Lang, LANG_COOKIE};
use crate::error::ApiError;

/// What pages may load: their own stylesheet and script, nothing inline,
/// nothing from elsewhere, forms posted only here.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; script-src 'self'; \
     connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The templates, by name.
pub(crate) const TEMPLATES: [(&str, &str); 9] = [
    ("layout.html", include_str!("templates/layout.html")),
    ("list.html", include_str!("templates/list.html")),
    ("public_case.html", include_str!("templates/public_case.html")),
    ("signin.html", include_str!("templates/signin.html")),
    ("case.html", include_str!("templates/case.html")),
    ("audit.html", include_str!("templates/audit.html")),
    ("worklist.html", include_str!("templates/worklist.html")),
    ("error.html", include_str!("templates/error.html")),
    ("finding.html", include_str!("templates/finding.html")),
];

fn environment() -> &'static Environment<'static> {
    static ENVIRONMENT: OnceLock<Environment<'static>> = OnceLock::new();
    ENVIRONMENT.get_or_init(|| {
        let mut environment = Environment::new();
        for (name, source) in TEMPLATES {
            // The templates are compiled in and parsed by a test: a failure here is a build fault.
            if let Err(error) = environment.add_template(name, source) {
                tracing::error!(%error, name, "a page template does not parse");
            }
        }
        environment
    })
}

/// One request's page: its language, where the switch leads, and who reads.
#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) lang: Lang,
    switch: String,
    /// The language was chosen with `?lang=`: the answer keeps it in a cookie.
    chosen: bool,
    pub(crate) agency: Option<String>,
    /// The reader holds the oversight role.
    pub(crate) oversight: bool,
    /// The request's `If-None-Match`: a page the reader holds is answered 304.
    if_none_match: Option<String>,
}

impl Page {
    /// The page for a request asking `lang` (the `?lang=` parameter, if any).
    pub(crate) fn new(uri: &Uri, headers: &HeaderMap, lang: Option<&str>) -> Self {
        let lang_now = Lang::of(lang, headers);
        Self {
            lang: lang_now,
            switch: switch_href(uri, lang_now.other()),
            chosen: lang.is_some(),
            agency: None,
            oversight: false,
            if_none_match: headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).map(str::to_owned),
        }
    }

    /// Notes the signed-in reader (the navigation shows its pages).
    pub(crate) fn signed_in(mut self, scope: &crate::policy::Scope) -> Self {
        self.agency = Some(scope.agency.to_string());
        self.oversight = scope.oversight;
        self
    }

    /// Renders `template` with `data` (under `data`) and the shared context.
    pub(crate) fn render(&self, template: &str, data: Value) -> Result<Response, PageError> {
        let shared = context! {
            lang => self.lang.code(),
            t => Value::from_serialize(self.lang.strings()),
            switch => self.switch,
            agency => self.agency,
            oversight => self.oversight,
            css => super::assets::href("desk.css"),
            data => data,
        };
        let body = environment()
            .get_template(template)
            .and_then(|t| t.render(shared))
            .map_err(|e| PageError::from(ApiError::internal(format!("template {template}: {e:#}"))))?;
        // The ETag names the bytes: a reader who has them gets 304 and no body
        // (the page is still computed: what is in force now moves with the clock).
        let etag = format!("W/\"{}\"", &blake3::hash(body.as_bytes()).to_hex()[..32]);
        let held = self.if_none_match.as_deref().is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag));
        let mut response = if held {
            let mut response = super::html(String::new(), self.agency.is_some());
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            response
        } else {
            super::html(body, self.agency.is_some())
        };
        if let Ok(value) = HeaderValue::from_str(&etag) {
            response.headers_mut().insert(header::ETAG, value);
        }
        if self.chosen {
            let cookie = format!("{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax", self.lang.code());
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
        }
        Ok(response)
    }
}

/// This request's path and query with `lang` set to `lang` (the switch).
pub(crate) fn switch_href(uri: &Uri, lang: Lang) -> String {
    let mut pairs: Vec<&str> =
        uri.query().unwrap_or("").split('&').filter(|p| !p.is_empty() && !p.starts_with("lang=")).collect();
    let asked = format!("lang={}", lang.code());
    pairs.push(&asked);
    format!("{}?{}", uri.path(), pairs.join("&"))
}

/// A page that cannot be shown: the status, and what is wrong, naming what
/// and where (the API's message); a sign-in link when signing in would help.
#[derive(Debug)]
pub(crate) struct PageError {
    status: StatusCode,
    code: &'static str,
    message: String,
    sign_in: bool,
}

impl PageError {
    /// 401: the page needs a (valid, unexpired) session.
    pub(crate) fn sign_in(message: impl Into<String>) -> Self {
        Self { status: StatusCode::UNAUTHORIZED, code: "unauthenticated", message: message.into(), sign_in: true }
    }

    /// 400 naming the parameter and why.
    pub(crate) fn bad(parameter: &str, why: impl std::fmt::Display) -> Self {
        Self::from(ApiError::bad_request("bad_parameter", format!("{parameter}: {why}")))
    }
}

impl From<ApiError> for PageError {
    fn from(error: ApiError) -> Self {
        Self { status: error.status, code: error.code, message: error.message, sign_in: false }
    }
}

impl From<docket_fold::query::QueryError> for PageError {
    fn from(error: docket_fold::query::QueryError) -> Self {
        Self::from(ApiError::from(error))
    }
}

impl From<docket_fold::FoldError> for PageError {
    fn from(error: docket_fold::FoldError) -> Self {
        Self::from(ApiError::from(error))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, message = %self.message, "a page failed");
        }
        let data = context! {
            status => self.status.as_u16(), code => self.code, message => self.message, sign_in => self.sign_in,
            css => super::assets::href("desk.css"),
        };
        let body = environment()
            .get_template("error.html")
            .and_then(|t| t.render(data))
            .unwrap_or_else(|_| format!("{} {}", self.status, self.code));
        let mut response = super::html(body, true);
        *response.status_mut() = self.status;
        response
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Every template parses, and every `t.KEY` it uses is a string in both languages.
    #[test]
    fn templates_parse_and_their_strings_exist() {
        let keys: std::collections::BTreeSet<&str> = super::super::i18n::STRINGS.iter().map(|(k, _, _)| *k).collect();
        assert_eq!(keys.len(), super::super::i18n::STRINGS.len(), "a string key is defined twice");
        for (name, source) in TEMPLATES {
            Environment::new().add_template(name, source).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
            for (at, _) in source.match_indices("t.").filter(|(at, _)| *at == 0 || !word(source.as_bytes()[at - 1])) {
                let key: String =
                    source[at + 2..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                assert!(keys.contains(key.as_str()), "{name} uses t.{key}, which is not in STRINGS");
            }
        }
    }

    #[test]
    fn the_switch_keeps_the_query_and_replaces_the_language() {
        let uri: Uri = "/?q=91&lang=zh&list=a".parse().unwrap();
        assert_eq!(switch_href(&uri, Lang::En), "/?q=91&list=a&lang=en");
        assert_eq!(switch_href(&"/desk/audit".parse().unwrap(), Lang::Zh), "/desk/audit?lang=zh");
    }
}
