//! The browser module through its JavaScript-facing API, run by wasm-bindgen-test in node and
//! in headless Chromium (`make test-web`).
#![cfg(target_arch = "wasm32")]

use aigc_edge_web::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = JSON, js_name = stringify)]
    fn stringify(v: &JsValue) -> String;
    #[wasm_bindgen(js_name = String)]
    fn js_string(v: &JsValue) -> String;
}

fn json(v: &JsValue) -> serde_json::Value {
    serde_json::from_str(&stringify(v)).expect("JSON")
}

const KEYWORDS: &str = "赌博\tA.1h\n傻逼\tA.4c\tmask\n法轮功\tA.1a\n";

#[wasm_bindgen_test]
fn check_reports_utf16_offsets_and_masks() {
    let f = Filter::new(KEYWORDS, None, None).unwrap();
    assert_eq!(f.keyword_count(), 3);
    // An astral emoji (two UTF-16 units) before the hit shifts UTF-16 and byte offsets differently.
    let text = "😀你这个傻-逼";
    let r = json(&f.check(text).unwrap());
    assert_eq!(r["action"], "mask");
    assert_eq!(r["hits"][0]["keyword"], "傻逼");
    assert_eq!((r["hits"][0]["start"].as_u64(), r["hits"][0]["end"].as_u64()), (Some(5), Some(8)));
    assert_eq!(r["text"], "😀你这个***");
    let r = json(&f.check("网上赌博").unwrap());
    assert_eq!(r["action"], "block");
    assert_eq!(r["hits"][0]["category"], "A.1h");
}

#[wasm_bindgen_test]
fn stream_finds_keywords_split_across_pieces() {
    let f = Filter::new(KEYWORDS, Some(r#"{"actions": {"default": "mask"}}"#.into()), None).unwrap();
    let mut s = f.stream();
    let mut out = String::new();
    let mut hits = Vec::new();
    for piece in ["今天说", "法", "轮", "功的事😀和傻", "逼"] {
        let c = json(&s.write(piece).unwrap());
        out.push_str(c["output"].as_str().unwrap());
        hits.extend(c["hits"].as_array().unwrap().clone());
    }
    let c = json(&s.finish().unwrap());
    out.push_str(c["output"].as_str().unwrap());
    hits.extend(c["hits"].as_array().unwrap().clone());
    assert_eq!(out, "今天说***的事😀和**");
    let spans: Vec<(u64, u64)> =
        hits.iter().map(|h| (h["start"].as_u64().unwrap(), h["end"].as_u64().unwrap())).collect();
    assert_eq!(spans, [(3, 6), (11, 13)]);
    assert!(s.write("more").is_err());
}

#[wasm_bindgen_test]
fn stream_redacts_personal_information_split_across_pieces() {
    let f = Filter::new(KEYWORDS, None, None).unwrap();
    let mut s = f.stream();
    let mut out = String::new();
    let mut pii = Vec::new();
    for piece in ["😀电话138", "1234", "5678，好"] {
        let c = json(&s.write(piece).unwrap());
        out.push_str(c["output"].as_str().unwrap());
        pii.extend(c["pii"].as_array().cloned().unwrap_or_default());
    }
    out.push_str(json(&s.finish().unwrap())["output"].as_str().unwrap());
    assert_eq!(out, "😀电话[MOBILE_1]，好");
    assert_eq!((pii[0]["start"].as_u64(), pii[0]["end"].as_u64()), (Some(4), Some(15)));
}

#[wasm_bindgen_test]
fn stream_block_stops_output() {
    let f = Filter::new(KEYWORDS, None, None).unwrap();
    let mut s = f.stream();
    let c = json(&s.write("开头网上赌").unwrap());
    assert_eq!(c["blocked"], serde_json::Value::Null);
    let c = json(&s.write("博后面").unwrap());
    assert!(c["blocked"].as_str().unwrap().contains("赌博"));
}

#[wasm_bindgen_test]
fn errors_carry_the_core_message() {
    assert!(Filter::new(KEYWORDS, Some(r#"{"limits": {"max_carry_bytes": 0}}"#.into()), None).is_err());
    assert!(Filter::from_artifact(b"not an artifact", None).is_err());
    assert!(label_text("x", Some("AI".into()), None).is_err());
    assert!(verify_file(b"\x89PNG\r\n\x1a\ntruncated", None, None).is_err());
}

#[wasm_bindgen_test]
fn artifact_round_trip() {
    let mut list = aigc_edge::KeywordList::new();
    list.add_source("k", KEYWORDS.as_bytes(), aigc_edge::KeywordFormat::Native, aigc_edge::KeywordKind::Deny);
    let artifact = aigc_edge::Dictionary::new(&list).unwrap().to_artifact();
    let f = Filter::from_artifact(&artifact, None).unwrap();
    assert_eq!(json(&f.check("网上赌博").unwrap())["action"], "block");
}

#[wasm_bindgen_test]
fn compiled_dictionary_is_the_clis_artifact() {
    let artifact =
        compile_dictionary(KEYWORDS, Some(r#"{"actions": {"default": "mask"}}"#.into()), Some("赌博机".into()))
            .unwrap();
    let f = Filter::from_artifact(&artifact, None).unwrap();
    assert_eq!(json(&f.check("网上赌博").unwrap())["action"], "block");
    assert_eq!(json(&f.check("一台赌博机").unwrap())["hits"], serde_json::json!([]));
    let e = compile_dictionary(KEYWORDS, Some(r#"{"normalize": {"max_gap": 99}}"#.into()), None).err().unwrap();
    let e: JsValue = e.into();
    assert!(js_string(&e).contains("normalize.max_gap"), "{}", js_string(&e));
}

#[wasm_bindgen_test]
fn metadata_is_carried_to_the_re_encoded_image() {
    // A text chunk before the pixels comes along; a GIF is refused with the core's message.
    let text = [0, 0, 0, 10, 116, 69, 88, 116, 67, 111, 109, 109, 101, 110, 116, 0, 104, 105, 162, 162, 88, 102];
    let original = [&PNG[..33], &text[..], &PNG[33..]].concat();
    assert_eq!(carry_metadata(&original, &PNG).unwrap(), original);
    assert!(carry_metadata(b"GIF89a", b"GIF89a").is_err());
}

#[wasm_bindgen_test]
fn text_labels_and_watermark() {
    assert_eq!(label_text("答", None, None).unwrap(), "本回答由人工智能生成\n\n答");
    assert_eq!(label_text("答", Some("AI生成".into()), Some("end".into())).unwrap(), "答\n\nAI生成");
    let marked = watermark_text(&"生成的文本。".repeat(40), "aigc-1", b"k").unwrap();
    assert_eq!(json(&detect_watermark(&marked, b"k").unwrap())["payload"], "aigc-1");
    assert!(detect_watermark(&marked, b"x").unwrap().is_null());
    let label: serde_json::Value = serde_json::from_str(&implicit_label("P1", None).unwrap()).unwrap();
    assert!(label["AIGC"]["ProduceID"].as_str().unwrap().starts_with("aigc-"));
}

const PNG: [u8; 70] = [
    137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 31, 21, 196,
    137, 0, 0, 0, 13, 73, 68, 65, 84, 120, 156, 99, 248, 207, 192, 240, 31, 0, 5, 0, 1, 255, 137, 153, 61, 29, 0, 0, 0,
    0, 73, 69, 78, 68, 174, 66, 96, 130,
];

#[wasm_bindgen_test]
fn files_label_verify_and_propagate() {
    let labeled = label_file(&PNG, "P1", Some("id-1".into()), Some(b"k".to_vec()), None).unwrap();
    let r = json(&verify_file(&labeled, Some(b"k".to_vec()), None).unwrap());
    assert_eq!(r["format"], "png");
    assert_eq!(r["verdict"], "compliant");
    assert_eq!(r["labels"][0]["fields"]["ProduceID"], "id-1");
    let platform = propagate_file(&labeled, "PLAT", Some("p-1".into()), None, None, None).unwrap();
    let r = json(&read_labels(&platform).unwrap());
    assert_eq!(r["labels"][0]["fields"]["ContentPropagator"], "PLAT");
    assert!(propagate_file(&PNG, "PLAT", None, None, None, None).is_err());
}

#[wasm_bindgen_test]
fn audible_label_in_pcm_and_wav() {
    let speech = vec![0u8; 4800];
    let marked = mark_pcm(&speech, 24000, 1, "s16le", None).unwrap();
    assert!(marked.ends_with(&speech));
    assert_eq!(marked.len() - speech.len(), 2 * 2880 * 14);
    let end = mark_pcm(&speech, 24000, 1, "s16le", Some("end".into())).unwrap();
    assert!(end.starts_with(&speech));
    assert!(mark_pcm(&speech, 24000, 1, "s12", None).is_err());
    let mut wav =
        b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\x40\x1f\0\0\x80\x3e\0\0\x02\0\x10\0data\x04\0\0\0\x01\x02\x03\x04"
            .to_vec();
    let n = (wav.len() - 8) as u32;
    wav[4..8].copy_from_slice(&n.to_le_bytes());
    let marked = mark_audio(&wav, None).unwrap();
    assert!(marked.ends_with(b"\x01\x02\x03\x04"));
    assert!(mark_audio(&PNG, None).is_err());
}

#[wasm_bindgen_test]
fn sm2_signed_labels_verify_with_only_the_public_key() {
    let pair = json(&generate_signing_key().unwrap());
    let (private, public) = (pair["privateKey"].as_str().unwrap(), pair["publicKey"].as_str().unwrap());
    assert!(private.starts_with("-----BEGIN PRIVATE KEY-----"));
    let signed = label_file(&PNG, "P1", Some("id-1".into()), None, Some(private.into())).unwrap();
    let r = json(&verify_file(&signed, None, Some(vec![public.into()])).unwrap());
    assert_eq!(r["verdict"], "compliant");
    assert_eq!(r["labels"][0]["codes"]["ReservedCode1"], "verified: sm2");
    assert_eq!(r["labels"][0]["fields"]["ReservedCode1"].as_str().unwrap().len(), 128);
    // Another key's public half: the signature does not verify.
    let other = json(&generate_signing_key().unwrap());
    let r = json(&verify_file(&signed, None, Some(vec![other["publicKey"].as_str().unwrap().into()])).unwrap());
    assert_eq!(r["verdict"], "non-compliant");
    assert_eq!(r["labels"][0]["codes"]["ReservedCode1"], "does not verify");
    // Without keys the code is reported unchecked, not trusted.
    let r = json(&verify_file(&signed, None, None).unwrap());
    assert_eq!(r["labels"][0]["codes"]["ReservedCode1"], "not checked: no key for it");
    assert!(label_file(&PNG, "P1", None, None, Some("not a key".into())).is_err());
}

#[wasm_bindgen_test]
fn draws_on_image_data() {
    let (w, h) = (320u32, 200u32);
    let mut pixels = vec![255u8; (w * h * 4) as usize];
    let d = json(&draw_label(&mut pixels, w, h, None, Some("top-left".into())).unwrap());
    assert!(d["textHeight"].as_u64().unwrap() >= 10);
    assert!(pixels.iter().step_by(4).any(|&r| r < 128), "backdrop drawn");
    assert!(draw_label(&mut pixels, w, h, None, Some("middle".into())).is_err());
}

#[wasm_bindgen_test]
fn long_texts_with_many_hits_map_offsets_in_one_pass() {
    let f = Filter::new(KEYWORDS, Some(r#"{"actions": {"default": "flag", "uncategorized": "flag"}}"#.into()), None)
        .unwrap();
    let text = "😀网上赌博，".repeat(3000);
    let r = json(&f.check(&text).unwrap());
    let hits = r["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 3000);
    // Each repetition is 7 UTF-16 units; the hit starts after the emoji (2) and 网上 (2).
    for (i, h) in hits.iter().enumerate() {
        assert_eq!(h["start"].as_u64(), Some(i as u64 * 7 + 4));
        assert_eq!(h["end"].as_u64(), Some(i as u64 * 7 + 6));
    }
}

#[wasm_bindgen_test]
fn evasive_spellings_are_read_through_in_the_browser() {
    let f = Filter::new("法轮功\tA.1a\nfuck\n", None, None).unwrap();
    for spelling in ["法、轮、功", "法\n轮\n功", "法法轮轮功功", "fuсk", "ffuuuck"] {
        assert_eq!(json(&f.check(spelling).unwrap())["hits"].as_array().map(Vec::len), Some(1), "{spelling:?}");
    }
    let pinyin = Filter::new("法轮功\tA.1a\n", Some(r#"{"normalize": {"pinyin": true}}"#.into()), None).unwrap();
    assert_eq!(json(&pinyin.check("Fa Lun Gong").unwrap())["hits"].as_array().map(Vec::len), Some(1));
    // The same policy fields as every host.
    let policy = r#"{"normalize": {"punctuation": false, "confusables": false, "repeats": false}}"#;
    let off = Filter::new("法轮功\tA.1a\nfuck\n", Some(policy.into()), None).unwrap();
    for spelling in ["法、轮、功", "fuсk", "ffuuuck"] {
        assert_eq!(json(&off.check(spelling).unwrap())["hits"], serde_json::json!([]), "{spelling:?}");
    }
    // The segmentation check, with the lexicon inline and through the artifact.
    let lexicon = include_str!("../../../tests/fixtures/lexicon.txt");
    let policy = serde_json::json!({"segmentation": {"text": lexicon}}).to_string();
    let segmented = Filter::new("法轮\tA.1a\n", Some(policy.clone()), None).unwrap();
    let artifact = aigc_edge_web::compile_dictionary("法轮\tA.1a\n", Some(policy), None).unwrap();
    let loaded = Filter::from_artifact(&artifact, None).unwrap();
    for f in [&segmented, &loaded] {
        assert_eq!(json(&f.check("大家合法轮流发言").unwrap())["hits"], serde_json::json!([]));
        assert_eq!(json(&f.check("说法轮").unwrap())["hits"].as_array().map(Vec::len), Some(1));
    }
}
