//! OpenAI images: `POST …/images/generations` and `…/images/edits`. The prompt is checked, the
//! revised prompt too; generated images (`data[].b64_json`) get the implicit label.

use serde_json::Value;

use super::Shape;
use crate::config::Roles;

/// See the module doc.
#[derive(Debug)]
pub struct Images;

impl Shape for Images {
    fn name(&self) -> &'static str {
        "images"
    }

    fn matches(&self, path: &str) -> bool {
        path.ends_with("/images/generations") || path.ends_with("/images/edits")
    }

    fn request_texts(&self, body: &mut Value, _roles: Roles, f: &mut dyn FnMut(&mut String)) {
        if let Some(Value::String(s)) = body.get_mut("prompt") {
            f(s);
        }
    }

    fn response_texts(&self, body: &mut Value, f: &mut dyn FnMut(&mut String)) {
        if let Some(Value::Array(data)) = body.get_mut("data") {
            for item in data {
                if let Some(Value::String(s)) = item.get_mut("revised_prompt") {
                    f(s);
                }
            }
        }
    }

    fn generated_files(&self, body: &mut Value, f: &mut dyn FnMut(&mut String)) {
        if let Some(Value::Array(data)) = body.get_mut("data") {
            for item in data {
                if let Some(Value::String(s)) = item.get_mut("b64_json") {
                    f(s);
                }
            }
        }
    }
}
