//! `docket id check`.

use anyhow::Result;
use docket_model::ids::{classify, Classified, Sex};

use crate::Format;

pub fn check(codes: &[String], format: Format) -> Result<bool> {
    let mut all_valid = true;
    for code in codes {
        let result = classify(code);
        all_valid &= result.is_ok();
        let line = match (format, result) {
            (Format::Text, Ok(Classified::Uscc(_))) => {
                format!("{code}  valid    unified social credit code (GB 32100-2015)")
            }
            (Format::Text, Ok(Classified::Resident(id))) => {
                let born = id.birth_date().map(|d| d.to_string()).unwrap_or_default();
                let sex = if id.sex() == Sex::Male { "male" } else { "female" };
                format!("{code}  valid    resident id (GB 11643-1999), born {born}, {sex}, area {}", id.area())
            }
            (Format::Text, Err(error)) => format!("{code}  INVALID  {error}"),
            (Format::Json, Ok(Classified::Uscc(_))) => {
                serde_json::json!({"code": code, "valid": true, "kind": "uscc"}).to_string()
            }
            (Format::Json, Ok(Classified::Resident(id))) => serde_json::json!({
                "code": code, "valid": true, "kind": "resident",
                "birth_date": id.birth_date().map(|d| d.to_string()).ok(), "sex": id.sex(), "area": id.area(),
            })
            .to_string(),
            (Format::Json, Err(error)) => {
                serde_json::json!({"code": code, "valid": false, "error": error.to_string()}).to_string()
            }
        };
        println!("{line}");
    }
    Ok(all_valid)
}
