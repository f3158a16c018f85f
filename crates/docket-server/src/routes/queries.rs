//! The query parameters of each view, as types: the handlers read them, and
//! the OpenAPI document lists them from the same types (with the
//! bitemporal point's and the page's parameters typed as what they accept).

use std::borrow::Cow;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;

use super::views::ViewParams;

/// Declares a type that only describes a query or path parameter's text in
/// the OpenAPI document (the handler reads it as a string and checks it).
macro_rules! parameter_schema {
    ($(#[$meta:meta])* $name:ident, $schema_name:literal, $schema:tt) => {
        $(#[$meta])*
        #[derive(Debug)]
        pub(crate) struct $name;

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                $schema_name.into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

parameter_schema!(
    /// A name (agency, list, measure) in a query: `docket_model::Name`
    /// (1 to 128 bytes, printable, no white space at either end); 32
    /// characters always fit the bytes.
    NameParam,
    "NameParameter",
    {
        "type": "string",
        "minLength": 1,
        "maxLength": 32,
        "pattern": "^[^\\s\\x00-\\x1f\\x7f-\\x9f](?:[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f])?$",
        "description": "A name: printable, no white space at either end, at most 128 bytes"
    }
);

parameter_schema!(
    /// A subject in a query (`docket_fold::query::parse_subject`).
    SubjectParam,
    "SubjectParameter",
    {
        "type": "string",
        "description": "uscc:CODE, resident:NUMBER, SCHEME:VALUE or a bare 18-character code; check characters are verified",
        "pattern": "^((uscc:)?[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}|(resident:)?[0-9]{17}[0-9X]|(?!uscc:|resident:)[a-z][a-z0-9-]{0,30}:[!-~]{1,64})$"
    }
);

parameter_schema!(
    /// A view's page cursor: the `next` of the last page (`read::Page::cursor`).
    ViewCursorParam,
    "ViewCursor",
    {
        "type": "string",
        "maxLength": 160,
        "pattern": "^v1\\.[0-9]{1,19}\\.-?[0-9]{1,19}\\.(-|-?[0-9]{1,19})\\.[0-9]{1,19}\\.[0-9a-f]{12}$",
        "description": "The `next` of the last page (opaque): the page after it, read at the same point"
    }
);

parameter_schema!(
    /// The delta's cursor: a number of records, or the `next` of its last page.
    DeltaCursorParam,
    "DeltaCursor",
    {
        "type": "string",
        "maxLength": 160,
        "pattern": "^([0-9]{1,19}|d1\\.[0-9]{1,19}\\.[0-9]{1,19}\\.-?[0-9]{1,19}\\.(-|-?[0-9]{1,19})\\.[0-9]{1,19}\\.[0-9a-f]{12})$",
        "description": "The cursor of the last delta (a number of records, at most the log's size; 0: everything), or the `next` of the last page of this one (opaque)"
    }
);

/// An event kind in a query: one of `docket_model::EventKind`'s names.
#[derive(Debug)]
pub(crate) struct EventKindParam;

impl JsonSchema for EventKindParam {
    fn schema_name() -> Cow<'static, str> {
        "EventKind".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let kinds: Vec<&str> = docket_model::EventKind::ALL.iter().map(|kind| kind.name()).collect();
        json_schema!({"type": "string", "enum": kinds, "description": "An event kind"})
    }
}

// A year the model takes (`YEAR_MIN` 1900 to `YEAR_MAX` 2199), but for the
// first and last, where an offset or China Standard Time's midnight can
// cross out of the range: 1901 to 2198.

/// An RFC 3339 time the model takes (with `format: date-time`, which checks the fields' ranges).
const TIME_PATTERN: &str = "^(19(0[1-9]|[1-9][0-9])|2(0[0-9]{2}|1[0-8][0-9]|19[0-8]))-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-](0[0-9]|1[0-9]|2[0-3]):[0-5][0-9])$";

/// A date the model takes (with `format: date`).
const DATE_PATTERN: &str = "^(19(0[1-9]|[1-9][0-9])|2(0[0-9]{2}|1[0-8][0-9]|19[0-8]))-[0-9]{2}-[0-9]{2}$";

/// `as_of`: a seq (inclusive) or an RFC 3339 time (or a date): what the ledger held then.
#[derive(Debug)]
pub(crate) struct AsOfParam;

impl JsonSchema for AsOfParam {
    fn schema_name() -> Cow<'static, str> {
        "AsOfParameter".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "What the ledger held then: a seq (inclusive, below the log's size) or an RFC 3339 time or a date (midnight, China Standard Time)",
            "anyOf": [
                {"type": "integer", "minimum": 0, "maximum": u64::MAX},
                {"type": "string", "format": "date-time", "pattern": TIME_PATTERN},
                {"type": "string", "format": "date", "pattern": DATE_PATTERN}
            ]
        })
    }
}

/// `valid_at`: an RFC 3339 time or a date: what was in force then.
#[derive(Debug)]
pub(crate) struct ValidAtParam;

impl JsonSchema for ValidAtParam {
    fn schema_name() -> Cow<'static, str> {
        "ValidAtParameter".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "What was in force then: an RFC 3339 time or a date (midnight, China Standard Time); default: the as_of time, or now",
            "anyOf": [
                {"type": "string", "format": "date-time", "pattern": TIME_PATTERN},
                {"type": "string", "format": "date", "pattern": DATE_PATTERN}
            ]
        })
    }
}

/// Declares a view's query type: the fields it names, then the bitemporal
/// point's (`as_of`, `valid_at`, `min_seq`) and, for a list-shaped view,
/// the page's (`limit`, `cursor`), all optional, converted into [`ViewParams`].
macro_rules! view_query {
    ($(#[$meta:meta])* $name:ident { $($(#[$field_meta:meta])* $field:ident: $schema:literal),* } $($paged:ident)?) => {
        $(#[$meta])*
        #[derive(Debug, Default, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct $name {
            $($(#[$field_meta])* #[schemars(with = $schema)] $field: Option<String>,)*
            /// What the ledger held then (default: everything it holds).
            #[schemars(with = "Option<AsOfParam>")]
            as_of: Option<String>,
            /// What was in force then (default: the as_of time, or now).
            #[schemars(with = "Option<ValidAtParam>")]
            valid_at: Option<String>,
            /// Wait (up to projection_wait_ms_max) until the projections include this seq (below the log's size).
            min_seq: Option<u64>,
            $(
            /// Most entries on a page (default 1,000).
            #[schemars(range(min = 1, max = 10_000))]
            limit: Option<usize>,
            /// The `next` of the last page: the page after it, read at the same point.
            #[schemars(with = "Option<ViewCursorParam>")]
            $paged: Option<String>,
            )?
        }

        impl From<$name> for ViewParams {
            fn from(query: $name) -> Self {
                let mut params = ViewParams::default();
                $(params.$field = query.$field;)*
                params.as_of = query.as_of;
                params.valid_at = query.valid_at;
                params.min_seq = query.min_seq;
                $(
                params.limit = query.limit;
                params.$paged = query.$paged;
                )?
                params
            }
        }
    };
}

view_query!(
    /// `/v1/views/list`.
    ListQuery {
        /// The designating agency (the reader's own; default: the reader).
        agency: "Option<NameParam>",
        /// Only this list.
        list: "Option<NameParam>"
    } cursor
);

view_query!(
    /// `/v1/views/enforcement`.
    EnforcementQuery {
        /// The responsible agency (the reader's own).
        #[schemars(required)]
        agency: "Option<NameParam>"
    } cursor
);

view_query!(
    /// `/v1/views/subject`.
    SubjectQuery {
        /// uscc:CODE, resident:NUMBER, SCHEME:VALUE or a bare code.
        #[schemars(required)]
        subject: "Option<SubjectParam>"
    } cursor
);

view_query!(
    /// `/v1/views/public`.
    PublicQuery {
        /// Only this list.
        list: "Option<NameParam>"
    } cursor
);

view_query!(
    /// `/v1/views/check`.
    CheckQuery {
        /// The subject: uscc:CODE, resident:NUMBER, SCHEME:VALUE or a bare code.
        #[schemars(required)]
        subject: "Option<SubjectParam>",
        /// The measure's code.
        #[schemars(required)]
        measure: "Option<NameParam>",
        /// As applied by this agency.
        agency: "Option<NameParam>"
    }
);

view_query!(
    /// `/v1/views/registry`.
    RegistryQuery {}
);
