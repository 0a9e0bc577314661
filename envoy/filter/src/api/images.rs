//! OpenAI images: `POST …/images/generations` and `…/images/edits`. The prompt and the revised
//! prompt are text like any other; generated images (`data[].b64_json`) get the implicit label.

use super::{string_of, Shape};
use crate::json::{Doc, Node};

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

    fn generated_files(&self, doc: &Doc) -> Vec<usize> {
        let data = doc.root.get(doc, "data").map_or(&[][..], Node::items);
        data.iter().filter_map(|item| string_of(item.get(doc, "b64_json"))).collect()
    }
}
