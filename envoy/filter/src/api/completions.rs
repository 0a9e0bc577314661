//! OpenAI legacy completions: `POST …/completions` (`prompt` in, `choices[].text` out).

use aigc_edge::label::LabelPosition;
use serde_json::{json, Value};

use super::{index_of, openai_blocked_error, set_string, string_of, write_rest, Edit, Shape};
use crate::json::{Doc, Node};
use crate::sse::{write_event, Event, Key, Lanes};

/// See the module doc.
#[derive(Debug)]
pub struct Completions;

impl Shape for Completions {
    fn name(&self) -> &'static str {
        "completions"
    }

    fn matches(&self, path: &str) -> bool {
        path.ends_with("/completions")
    }

    fn matches_body(&self, doc: &Doc) -> bool {
        doc.root.get(doc, "prompt").is_some() && doc.root.get(doc, "model").is_some()
    }

    fn label_targets(&self, doc: &Doc, _position: LabelPosition) -> Vec<usize> {
        let choices = doc.root.get(doc, "choices").map_or(&[][..], Node::items);
        choices.iter().filter_map(|c| string_of(c.get(doc, "text"))).collect()
    }

    fn blocked_body(&self, message: &str) -> Value {
        json!({
            "object": "text_completion",
            "choices": [{"index": 0, "text": "", "finish_reason": "content_filter"}],
            "error": openai_blocked_error(message)
        })
    }

    fn stream_event(&self, lanes: &mut Lanes, event: &Event<'_>, doc: &Doc, out: &mut Vec<u8>) {
        lanes.keep_template(doc, &["id", "object", "created", "model"]);
        let mut edits: Vec<Edit> = Vec::new();
        let mut handled = Vec::new();
        let choices = doc.root.get(doc, "choices").map_or(&[][..], Node::items);
        for (position, choice) in choices.iter().enumerate() {
            let index = index_of(doc, choice, position);
            let key = (index, "text".to_string(), 0);
            let finishing = choice.get(doc, "finish_reason").is_some_and(|f| !f.is_null(doc));
            let Some(i) = string_of(choice.get(doc, "text")) else { continue };
            handled.push(i);
            let mut settled = lanes.feed(&key, doc.str(i));
            if let Some(label) = lanes.start_label(index) {
                settled = label + &settled;
            }
            if finishing {
                // The held-back text and the end label go out with the finishing chunk.
                settled.push_str(&lanes.finish(&key));
                settled.extend(lanes.end_label(index));
            }
            edits.extend(set_string(doc, i, &settled));
        }
        if lanes.cut() {
            return;
        }
        write_rest(lanes, event, doc, &handled, edits, out);
    }

    fn stream_block(&self, lanes: &mut Lanes, out: &mut Vec<u8>, newline: &str) {
        let chunk = lanes.from_template(r#""choices":[{"index":0,"text":"","finish_reason":"content_filter"}]"#);
        write_event(out, None, &chunk, newline);
        write_event(out, None, "[DONE]", newline);
    }

    fn stream_flush(&self, lanes: &mut Lanes, pieces: Vec<(Key, String)>, out: &mut Vec<u8>) {
        for ((index, _, _), tail) in pieces {
            let choice = json!([{"index": index, "text": tail, "finish_reason": null}]);
            write_event(out, None, &lanes.from_template(&format!(r#""choices":{choice}"#)), "\n");
        }
    }
}
