//! Table-driven matching tests. Every case runs on the whole text and as a stream split at every
//! byte (two chunks), and byte by byte; all must agree.
//!
//! `AIGC_CHUNK=N` pins an extra run with fixed N-byte chunks, to reproduce a failure.

use std::sync::Arc;

use aigc_edge::{Action, Block, Dictionary, Filter, KeywordFormat, KeywordKind, KeywordList, PiiKind, Policy};

struct Case {
    name: &'static str,
    deny: &'static str,
    allow: &'static str,
    text: &'static str,
    /// The matched original substrings, in order.
    want: &'static [&'static str],
}

const fn case(name: &'static str, deny: &'static str, text: &'static str, want: &'static [&'static str]) -> Case {
    Case { name, deny, allow: "", text, want }
}

const CASES: &[Case] = &[
    case("ignore-case", "fuck", "fuCK the bad words.", &["fuCK"]),
    case("full-width", "fuck", "ｆｕｃｋ the bad words.", &["ｆｕｃｋ"]),
    case("english-style", "fuck", "Ⓕⓤc⒦ the bad words", &["Ⓕⓤc⒦"]),
    case("math-alphanumerics", "fuck", "𝐟𝐮𝐜𝐤 off", &["𝐟𝐮𝐜𝐤"]),
    case("traditional", "五星红旗", "我爱我的祖国和五星紅旗。", &["五星紅旗"]),
    case("number-style", "下三滥", "花豹用下3滥招式对付疣猪", &["下3滥"]),
    case("financial-numerals", "六四", "陆肆，64，1964年", &["陆肆", "64"]),
    case("multi-char-number", "10号", "⑩号楼", &["⑩号"]),
    case("skip-chars", "傻冒\n狗东西", "傻@冒，狗+东西", &["傻@冒", "狗+东西"]),
    case("skip-chars-html", "傻逼", "<p>傻逼</p>", &["傻逼"]),
    case("brackets", "中国\n国人", "我是【中]国【人", &["中]国", "国【人"]),
    case("emoji-insert", "法轮功", "法✨轮功好", &["法✨轮功"]),
    case("space-insert", "习近平", "习 近平主席的简介", &["习 近平"]),
    case("zero-width", "asshole", "a\u{200D}sshole", &["a\u{200D}sshole"]),
    case("zero-width-keeps-word", "sb", "u\u{200B}sb", &[]),
    case("sentence-boundary-cjk", "中国", "其中，国家。中。国", &[]),
    // Punctuation: the same clause mark in every gap, or one line break.
    case("enumeration-comma", "自制炸药", "教你自、制、炸、药的方法", &["自、制、炸、药"]),
    case("comma-every-gap", "自制炸药", "自，制，炸，药", &["自，制，炸，药"]),
    case("colon-with-spaces", "法轮功", "法 : 轮 : 功", &["法 : 轮 : 功"]),
    case("mixed-marks", "自制炸药", "自、制；炸、药", &[]),
    case("comma-family", "自制炸药", "自、制，炸、药", &["自、制，炸、药"]),
    case("marks-in-some-gaps", "自制炸药", "自、制炸、药", &[]),
    case("one-comma-is-running-text", "中国", "其中，国家", &[]),
    case("vertical-writing", "自制炸药", "自\n制\n炸\n药", &["自\n制\n炸\n药"]),
    case("vertical-writing-crlf", "自制炸药", "自\r\n制\r\n炸\r\n药", &["自\r\n制\r\n炸\r\n药"]),
    case("wrapped-line", "自制炸药", "如何自制\n炸药", &["自制\n炸药"]),
    case("wrapped-line-crlf", "中国", "中\r\n国", &["中\r\n国"]),
    case("blank-line-ends", "自制炸药", "自制\n\n炸药\r\n\r\n自制\r\r炸药", &[]),
    case("two-wraps-not-every-gap", "自制炸药", "自\n制炸\n药", &[]),
    case("wrap-and-comma", "自制炸药", "自，制\n炸，药", &[]),
    // Confusables: look-alike letters of other scripts in Latin keywords.
    case("cyrillic-letters", "fuck\nporn", "fuсk and рorn", &["fuсk", "рorn"]),
    case("greek-capitals", "porn", "ΡΟRΝ site", &["ΡΟRΝ"]),
    case("confusable-keeps-word", "sb", "uѕb", &[]),
    // Repeats: a run of a letter matches it once, or as often as the keyword has it.
    case("repeated-letters", "fuck", "ffffuuuuck you", &["ffffuuuuck"]),
    case("repeated-styles", "fuck", "ⒻⒻⒻfⓤuⓤ⒰cⓒ⒦ the bad words", &["ⒻⒻⒻfⓤuⓤ⒰cⓒ⒦"]),
    case("repeat-keeps-double", "ass", "as ass asss", &["ass", "asss"]),
    case("repeat-with-zero-width", "fuck", "fu\u{200B}uck", &["fu\u{200B}uck"]),
    // A Latin run crosses a gap only from a letter standing alone (`p u s s y` below).
    case("repeat-across-a-gap", "fuck\n妹妹", "fu uck 妹 妹", &["妹 妹"]),
    case("double-letter-spaced", "ass", "a s s", &["a s s"]),
    case("repeat-over-the-gap-limit", "ass", "as    s", &[]),
    case("one-letter-keyword-as-written", "q", "QQ and q! qqq", &["q"]),
    case("repeat-does-not-eat-the-next-word", "fuck\nkill", "fuck kill", &["fuck", "kill"]),
    case("spaced-letters-with-a-double", "pussy", "p u s s y", &["p u s s y"]),
    case("spaced-run-keeps-hits-apart", "赌博\n博彩", "赌博 博彩", &["赌博", "博 博彩"]),
    case("no-run-across-a-comma", "赌博\n操操", "赌，赌博 曹操，操", &["赌博"]),
    case(
        "run-inside-a-comma-pattern",
        "色妹妹\n妹妹的穴",
        "色、妹、妹。妹，妹，的，穴",
        &["色、妹、妹", "妹，妹，的，穴"],
    ),
    case("match-after-a-run", "他妈的", "你，他，他妈的", &["他妈的"]),
    case("spaced-one-letter-run", "xx\nxxx", "x.x.x and x x", &["x.x.x", "x x"]),
    case("repeat-keeps-word-boundary", "ass", "grasss", &[]),
    case("digit-runs-stay", "8964", "88964 8964", &["8964"]),
    case("repeated-cjk", "自制炸药", "自自制制炸炸药药", &["自自制制炸炸药药"]),
    case("cjk-double-in-keyword", "妈妈的", "妈的，妈妈的，妈妈妈的", &["妈妈的", "妈妈妈的"]),
    case("cjk-one-char-run", "操", "操操", &["操操"]),
    case("sentence-boundary-latin", "ab", "a! b a, b", &[]),
    case("gap-within-limit", "中国", "中   国", &["中   国"]),
    case("gap-over-limit", "中国", "中    国", &[]),
    case("english-whole-word", "av", "I have a nice day。", &[]),
    case("english-first-only", "cp", "cp cpm", &["cp"]),
    case("number-whole-word", "69", "totaled 695 billion yen", &[]),
    case("sb-in-sbc", "sb", "sbc", &[]),
    case("sb-in-disburse", "sb", "Disburse", &[]),
    case("ass-in-grass", "ass", "a cute cat in green grass", &[]),
    case("star-in-stars", "star", "stars", &[]),
    case("usb", "sb", "plug the USB in", &[]),
    case("full-width-boundary", "abc\n中国", "我是中美国人厉害中国完美ａｂｃddb好的", &["中国"]),
    case("boundary-digits", "1\nA\n2\n0\n吃", "A10021003吃饭", &["吃"]),
    case("mixed-script", "0售k粉qq", "买0售k粉qq号", &["0售k粉qq"]),
    case("longest-and-overlap", "我的世界\n我的", "不是我的也不是我的世界", &["我的", "我的", "我的世界"]),
    case(
        "suffix-outputs",
        "pflt\ndividend payout pflt",
        "ratio dividend payout pflt",
        &["dividend payout pflt", "pflt"],
    ),
    case("repeated-keywords", "一\n二二\n三三三", "一,二二,三三三", &["一", "二二", "三三三"]),
    case("nothing", "赌博", "今天天气很好", &[]),
    case("at-edges", "赌博", "赌博", &["赌博"]),
    Case { name: "allow-covers", deny: "黄片", allow: "三黄片", text: "三黄片黄片", want: &["黄片"] },
    Case {
        name: "allow-longer",
        deny: "共产",
        allow: "共产党",
        text: "共产党是白名单不会被检测，但是共产是黑名单",
        want: &["共产"],
    },
    Case { name: "allow-latin", deny: "sb", allow: "sb.com", text: "visit sb.com or sb", want: &["sb"] },
];

fn filter(deny: &str, allow: &str, policy: &str) -> Filter {
    let mut list = KeywordList::new();
    list.add_source("deny", deny.as_bytes(), KeywordFormat::Native, KeywordKind::Deny);
    list.add_source("allow", allow.as_bytes(), KeywordFormat::Native, KeywordKind::Allow);
    let dict = Dictionary::new(&list).unwrap();
    Filter::new(Arc::new(dict), &Policy::from_json(policy).unwrap()).unwrap()
}

const MASK_ALL: &str = r#"{"actions": {"default": "mask", "uncategorized": "mask"}, "pii": {"action": "pass"}}"#;

/// What a stream over some chunks produced: output, and `(start, end)` of every keyword hit
/// (sorted) and of every piece of personal information (in order found).
struct Streamed {
    out: Vec<u8>,
    hits: Vec<(usize, usize)>,
    pii: Vec<(usize, usize)>,
}

/// Streams `chunks` through `write`; when every chunk is UTF-8, also through `write_str`, which
/// must give the same output, hits and personal information.
fn stream_all(f: &Filter, chunks: &[&[u8]]) -> Streamed {
    let by_bytes = stream_with(f, chunks, false);
    if chunks.iter().all(|c| std::str::from_utf8(c).is_ok()) {
        let by_str = stream_with(f, chunks, true);
        let sizes: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
        assert_eq!(by_str.out, by_bytes.out, "write_str output, chunks {sizes:?}");
        assert_eq!(by_str.hits, by_bytes.hits, "write_str hits, chunks {sizes:?}");
        assert_eq!(by_str.pii, by_bytes.pii, "write_str personal information, chunks {sizes:?}");
    }
    by_bytes
}

fn stream_with(f: &Filter, chunks: &[&[u8]], as_str: bool) -> Streamed {
    let mut stream = f.stream();
    let mut r = Streamed { out: Vec::new(), hits: Vec::new(), pii: Vec::new() };
    let take = |c: aigc_edge::Chunk, r: &mut Streamed| {
        r.out.extend(c.output);
        r.hits.extend(c.hits.iter().map(|h| (h.start, h.end)));
        r.pii.extend(c.pii.iter().map(|p| (p.start, p.end)));
    };
    for chunk in chunks {
        let written = match std::str::from_utf8(chunk) {
            Ok(text) if as_str => stream.write_str(text),
            _ => stream.write(chunk),
        };
        take(written.unwrap(), &mut r);
    }
    take(stream.finish(), &mut r);
    r.hits.sort();
    r
}

#[test]
fn a_character_left_open_before_a_keyword_does_not_hide_it() {
    // The first bytes of a character that never completes, then a keyword (CJK, whose first
    // bytes they seem to begin, or ASCII): the stray bytes pass through and the keyword is
    // still found, however the bytes are cut. Once, it was missed when a cut fell after the
    // stray bytes, or when they arrived a byte at a time (the fuzz target found the second).
    // Pieces that are UTF-8 also go through `write_str` (`stream_all`).
    let f = filter("赌博\nab", "", MASK_ALL);
    let strays: [&[u8]; 9] =
        [b"\xe8", b"\xe8\xb5", b"\xe8\xe8", b"\xf0", b"\xf0\x9f", b"\xf0\x9f\x98", b"\xff\xf0", b"\xc3", b"\xe5\x8d"];
    for stray in strays {
        let mut input = Vec::new();
        let mut want = Vec::new();
        for keyword in ["赌博", "ab"] {
            input.extend_from_slice(stray);
            input.extend_from_slice(keyword.as_bytes());
            want.extend_from_slice(stray);
            want.extend_from_slice(b"**");
        }
        let mut splits: Vec<Vec<&[u8]>> = (0..=input.len()).map(|k| vec![&input[..k], &input[k..]]).collect();
        splits.push(input.chunks(1).collect());
        for chunks in splits {
            let sizes: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
            let r = stream_all(&f, &chunks);
            assert_eq!(r.out, want, "{stray:x?} chunks {sizes:?}");
            assert_eq!(r.hits.len(), 2, "{stray:x?} chunks {sizes:?}");
        }
    }
}

/// Runs a stream over `chunks`; returns output and `(start, end)` of every hit.
fn run_stream(f: &Filter, chunks: &[&[u8]]) -> (Vec<u8>, Vec<(usize, usize)>) {
    let r = stream_all(f, chunks);
    (r.out, r.hits)
}

#[test]
fn cases_whole_and_streamed() {
    let pinned: Option<usize> = std::env::var("AIGC_CHUNK").ok().and_then(|v| v.parse().ok());
    for case in CASES {
        let f = filter(case.deny, case.allow, MASK_ALL);
        let d = f.check(case.text);
        let got: Vec<&str> = d.hits.iter().map(|h| &case.text[h.start..h.end]).collect();
        assert_eq!(got, case.want, "case {}", case.name);
        let want_out = d.text.clone().unwrap_or_else(|| case.text.to_string());
        let mut want_hits: Vec<(usize, usize)> = d.hits.iter().map(|h| (h.start, h.end)).collect();
        want_hits.sort();
        let bytes = case.text.as_bytes();
        let mut splits: Vec<Vec<&[u8]>> = (0..=bytes.len()).map(|k| vec![&bytes[..k], &bytes[k..]]).collect();
        splits.push(bytes.chunks(1).collect());
        if let Some(n) = pinned {
            splits.push(bytes.chunks(n.max(1)).collect());
        }
        for chunks in splits {
            let (out, hits) = run_stream(&f, &chunks);
            let sizes: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
            assert_eq!(String::from_utf8_lossy(&out), want_out, "case {} chunks {sizes:?}", case.name);
            assert_eq!(hits, want_hits, "case {} chunks {sizes:?}", case.name);
        }
    }
}

#[test]
fn masks_keep_text_around_hits() {
    let cases = [
        (MASK_ALL, "说赌博和赌-博", "说**和***"),
        (
            r#"{"actions": {"uncategorized": "mask"}, "mask": {"style": "replace", "with": "[X]"}}"#,
            "说赌博和赌-博",
            "说[X]和[X]",
        ),
        (r#"{"actions": {"uncategorized": "mask"}, "mask": {"style": "char", "char": "■"}}"#, "赌博赌博", "■■■■"),
        (MASK_ALL, "博彩赌博彩", "*****"),
    ];
    for (policy, text, want) in cases {
        let f = filter("赌博\n博彩\n赌博彩", "", policy);
        assert_eq!(f.check(text).text.as_deref(), Some(want), "{policy} {text}");
        let bytes = text.as_bytes();
        for k in 0..=bytes.len() {
            let (out, _) = run_stream(&f, &[&bytes[..k], &bytes[k..]]);
            assert_eq!(String::from_utf8_lossy(&out), want, "{policy} split {k}");
        }
    }
}

#[test]
fn actions_and_decision() {
    let deny = "赌博\tA.1h\n色情\tA.1f\nsb\tA.4c\n谣言\tA.1g\tflag\n";
    let policy = r#"{"actions": {"default": "block", "categories": {"A.4c": "mask", "A.1h": "pass"}}}"#;
    let f = filter(deny, "", policy);
    let cases: [(&str, Action, &[&str]); 5] = [
        ("今天很好", Action::Pass, &[]),
        ("网上赌博", Action::Pass, &[]),
        ("这是谣言", Action::Flag, &["谣言"]),
        ("you sb", Action::Mask, &["sb"]),
        ("色情和谣言 sb", Action::Block, &["色情", "谣言", "sb"]),
    ];
    for (text, action, keywords) in cases {
        let d = f.check(text);
        assert_eq!(d.action, action, "{text}");
        let got: Vec<&str> = d.hits.iter().map(|h| h.keyword.as_str()).collect();
        assert_eq!(got, keywords, "{text}");
    }
    let d = f.check("色情");
    assert_eq!(d.hits[0].category.map(|c| c.to_string()).as_deref(), Some("A.1f"));
}

#[test]
fn stream_block_stops_before_the_hit() {
    let f = filter("色情\tA.1f\nsb\tA.4c\tmask", "", "{}");
    let text = "前文 sb 中间色情后文还有很多";
    let bytes = text.as_bytes();
    for k in 0..=bytes.len() {
        let mut stream = f.stream();
        let mut out = Vec::new();
        let mut blocked = None;
        for chunk in [&bytes[..k], &bytes[k..]] {
            match stream.write(chunk) {
                Ok(c) => {
                    out.extend(c.output);
                    if c.blocked.is_some() {
                        blocked = c.blocked;
                    }
                }
                Err(_) => assert!(blocked.is_some(), "refused before blocking"),
            }
        }
        let end = stream.finish();
        blocked = blocked.or(end.blocked);
        out.extend(end.output);
        assert_eq!(String::from_utf8(out).unwrap(), "前文 ** 中间", "split {k}");
        match blocked {
            Some(Block::Keyword(hit)) => assert_eq!(hit.keyword, "色情"),
            other => panic!("split {k}: {other:?}"),
        }
    }
}

#[test]
fn stream_passes_invalid_utf8_through() {
    let f = filter("赌博", "", MASK_ALL);
    let input: &[u8] = b"a\xffb\xe8\xb5\x8c\xe5\x8d\x9a\xe8c\xf0\x9f";
    let want: &[u8] = b"a\xffb**\xe8c\xf0\x9f";
    for k in 0..=input.len() {
        let (out, hits) = run_stream(&f, &[&input[..k], &input[k..]]);
        assert_eq!(out, want, "split {k}");
        assert_eq!(hits, [(3, 9)], "split {k}");
    }
    let (out, _) = run_stream(&f, &input.chunks(1).collect::<Vec<_>>());
    assert_eq!(out, want);
}

#[test]
fn stream_holds_back_at_most_the_longest_keyword() {
    let f = filter("一二三四五六七八\n赌博", "", MASK_ALL);
    let text = "今天天气很好，一二三四五六七，赌，赌博赌".repeat(200);
    let mut stream = f.stream();
    let mut out = Vec::new();
    for chunk in text.as_bytes().chunks(7) {
        out.extend(stream.write(chunk).unwrap().output);
        // 8 characters of 3 bytes, plus a split character.
        assert!(stream.carry() <= 8 * 3 + 3, "carry {}", stream.carry());
    }
    assert!(stream.peak_carry() <= 27);
    out.extend(stream.finish().output);
    assert_eq!(String::from_utf8(out).unwrap(), f.check(&text).text.unwrap());
}

#[test]
fn carry_limit_fails_closed_or_open() {
    let deny = "一二三四五六七八九十";
    let text = "一二三四五六七八九";
    let closed = filter(deny, "", r#"{"limits": {"max_carry_bytes": 12}}"#);
    let mut s = closed.stream();
    let c = s.write(text.as_bytes()).unwrap();
    assert_eq!(c.blocked, Some(Block::CarryLimit { limit: 12 }));
    assert!(c.output.is_empty());
    assert!(s.write(b"x").is_err());

    let open = filter(deny, "", r#"{"limits": {"max_carry_bytes": 12}, "on_limit": "fail_open"}"#);
    let mut s = open.stream();
    let c = s.write(text.as_bytes()).unwrap();
    assert!(c.limit_exceeded);
    assert_eq!(c.output, text.as_bytes());
    assert!(c.blocked.is_none());
}

#[test]
fn text_limit_fails_closed_or_open() {
    let closed = filter("赌博", "", r#"{"limits": {"max_text_bytes": 4}}"#);
    let d = closed.check("hello");
    assert!(d.limit_exceeded);
    assert_eq!(d.action, Action::Block);
    let open = filter("赌博", "", r#"{"limits": {"max_text_bytes": 4}, "on_limit": "fail_open"}"#);
    let d = open.check("hello");
    assert!(d.limit_exceeded);
    assert_eq!(d.action, Action::Pass);
}

#[test]
fn steps_can_be_switched_off() {
    let cases = [
        ("case", "fuck", "FUCK"),
        ("width", "fuck", "ｆｕｃｋ"),
        ("styles", "fuck", "ⓕⓤⓒⓚ"),
        ("traditional", "红旗", "紅旗"),
        ("invisible", "红旗", "红\u{200B}旗"),
        ("separators", "红旗", "红-旗"),
    ];
    for (step, deny, text) in cases {
        let on = filter(deny, "", MASK_ALL);
        assert_eq!(on.check(text).hits.len(), 1, "{step} on");
        let policy = format!(r#"{{"normalize": {{"{step}": false}}, "actions": {{"uncategorized": "mask"}}}}"#);
        let mut list = KeywordList::new();
        list.add_source("deny", deny.as_bytes(), KeywordFormat::Native, KeywordKind::Deny);
        let policy = Policy::from_json(&policy).unwrap();
        let dict = aigc_edge::DictionaryBuilder::new().normalization(policy.normalize.clone()).build(&list).unwrap();
        let off = Filter::new(Arc::new(dict), &policy).unwrap();
        assert_eq!(off.check(text).hits.len(), 0, "{step} off");
        assert_eq!(off.check(deny).hits.len(), 1, "{step} off still matches the plain form");
        // A dictionary compiled for another normalization is refused, naming the field.
        let err = Filter::new(on.dictionary().clone().into(), &policy).unwrap_err().to_string();
        assert!(err.contains(&format!("normalize.{step}")), "{err}");
    }
}

#[test]
fn pii_in_check() {
    let f = filter("赌博", "", r#"{"pii": {"kinds": ["mobile", "id_card", "email"], "action": "mask"}}"#);
    let d = f.check("联系13812345678或a@b.cn，身份证11010519491231002X，再打13812345678");
    assert_eq!(d.action, Action::Mask);
    assert_eq!(d.text.as_deref(), Some("联系[MOBILE_1]或[EMAIL_1]，身份证[ID_CARD_1]，再打[MOBILE_1]"));
    assert_eq!(
        aigc_edge::pii::restore(d.text.as_deref().unwrap(), &d.restore),
        "联系13812345678或a@b.cn，身份证11010519491231002X，再打13812345678"
    );
    let block = filter("赌博", "", r#"{"pii": {"action": "block"}}"#);
    assert_eq!(block.check("打13812345678").action, Action::Block);
    let off = filter("赌博", "", r#"{"pii": {"action": "pass"}}"#);
    assert!(off.check("打13812345678").pii.is_empty());
}

#[test]
fn many_hits_in_a_long_text_stay_linear() {
    // 200,000 masked hits: a quadratic span list would take minutes here.
    let policy = r#"{"actions": {"default": "mask", "uncategorized": "mask"}, "pii": {"action": "pass"}, "limits": {"max_text_bytes": 10000000}}"#;
    let f = filter("赌博", "", policy);
    let text = "网上赌博，".repeat(200_000);
    let d = f.check(&text);
    assert_eq!(d.hits.len(), 200_000);
    assert_eq!(d.text.as_deref().map(|t| t.matches("**").count()), Some(200_000));
}

#[test]
fn personal_information_in_streams_split_at_every_byte() {
    let policy = r#"{"actions": {"default": "mask", "uncategorized": "mask"}, "pii": {"action": "mask"}}"#;
    let f = filter("赌博", "", policy);
    let texts = [
        "电话13812345678，邮箱 zhang.san@example.cn。再打13812345678！",
        "card 4111 1111 1111 1111 and ip 192.168.1.20. 赌博",
        "身份证11010519491231002X",
        "no personal data here, version 1.2.3",
    ];
    for text in texts {
        let d = f.check(text);
        let want = d.text.clone().unwrap_or_else(|| text.to_string());
        let want_pii: Vec<(usize, usize)> = d.pii.iter().map(|p| (p.start, p.end)).collect();
        let bytes = text.as_bytes();
        for k in 0..=bytes.len() {
            let r = stream_all(&f, &[&bytes[..k], &bytes[k..]]);
            assert_eq!(String::from_utf8(r.out).unwrap(), want, "{text} split {k}");
            assert_eq!(r.pii, want_pii, "{text} split {k}");
        }
    }
}

/// A text holding one value of `kind`, in CJK prose. The match has no wildcard arm: a new kind
/// does not compile until it has a sample, so no kind can be found by `check` and missed by
/// streams.
fn pii_sample(kind: PiiKind) -> &'static str {
    match kind {
        PiiKind::IdCard => "他的身份证是11010519491231002X。",
        PiiKind::Mobile => "请拨+8613812345678联系",
        PiiKind::BankCard => "卡号4111-1111-1111-1111到账",
        PiiKind::Email => "写信给zhang_san.li%x+y@mail.example.cn吧",
        PiiKind::Ipv4 => "地址192.168.100.200可用",
        PiiKind::Ipv6 => "地址2001:db8::8a2e:370:7334可用",
        PiiKind::Passport => "护照号EA1234567在此",
    }
}

#[test]
fn every_kind_is_found_in_streams_split_at_every_byte() {
    for kind in PiiKind::ALL {
        let policy = format!(r#"{{"pii": {{"kinds": ["{}"], "action": "mask"}}}}"#, kind.as_str());
        let f = filter("赌博", "", &policy);
        let text = pii_sample(kind);
        let d = f.check(text);
        assert_eq!(d.pii.iter().map(|p| p.kind).collect::<Vec<_>>(), [kind], "{text}");
        let want = d.text.clone().unwrap();
        let bytes = text.as_bytes();
        for k in 0..=bytes.len() {
            for l in k..=bytes.len() {
                let r = stream_all(&f, &[&bytes[..k], &bytes[k..l], &bytes[l..]]);
                assert_eq!(String::from_utf8(r.out).unwrap(), want, "{kind:?}: {text} split {k}, {l}");
                assert_eq!(r.pii, [(d.pii[0].start, d.pii[0].end)], "{kind:?}: {text} split {k}, {l}");
            }
        }
    }
}

#[test]
fn personal_information_can_block_a_stream() {
    let f = filter("赌博", "", r#"{"pii": {"action": "block"}}"#);
    let mut s = f.stream();
    let c = s.write("前文，电话1381234".as_bytes()).unwrap();
    assert!(c.blocked.is_none());
    let c = s.write("5678，后文".as_bytes()).unwrap();
    assert!(matches!(c.blocked, Some(Block::PersonalInformation(_))), "{c:?}");
    let all = [String::from_utf8_lossy(&c.output).into_owned()].concat();
    assert!(!all.contains("1381"), "{all}");
}

/// Streams agree with whole texts on random mixes of the characters the new steps treat
/// specially (runs, marks, line breaks, spaced letters), split byte by byte and in 7s.
#[test]
fn random_mixes_stream_as_they_check() {
    const ALPHABET: &[&str] =
        &["赌", "博", "妹", "的", "，", "、", "\n", "\r", " ", "x", "a", "s", "。", "\u{200B}", "ѕ"];
    let f = filter("赌博\n妹妹的\nass\nxx\n赌赌博\na\n博的", "", MASK_ALL);
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..400 {
        let mut text = String::new();
        for _ in 0..24 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            text.push_str(ALPHABET[(seed % ALPHABET.len() as u64) as usize]);
        }
        let d = f.check(&text);
        let want_out = d.text.clone().unwrap_or_else(|| text.clone());
        let mut want_hits: Vec<(usize, usize)> = d.hits.iter().map(|h| (h.start, h.end)).collect();
        want_hits.sort();
        for size in [1, 7] {
            let chunks: Vec<&[u8]> = text.as_bytes().chunks(size).collect();
            let (out, hits) = run_stream(&f, &chunks);
            assert_eq!(String::from_utf8_lossy(&out), want_out, "{text:?} in {size}s");
            assert_eq!(hits, want_hits, "{text:?} in {size}s");
        }
    }
}

/// A filter whose dictionary is compiled under `policy`'s normalization.
fn filter_under(deny: &str, allow: &str, policy: &str) -> Filter {
    let mut list = KeywordList::new();
    list.add_source("deny", deny.as_bytes(), KeywordFormat::Native, KeywordKind::Deny);
    list.add_source("allow", allow.as_bytes(), KeywordFormat::Native, KeywordKind::Allow);
    let policy = Policy::from_json(policy).unwrap();
    let dict = aigc_edge::DictionaryBuilder::new().normalization(policy.normalize.clone()).build(&list).unwrap();
    Filter::new(Arc::new(dict), &policy).unwrap()
}

const PINYIN: &str = r#"{"normalize": {"pinyin": true}, "actions": {"default": "mask", "uncategorized": "mask"}, "pii": {"action": "pass"}}"#;

#[test]
fn pinyin_whole_and_streamed() {
    let cases: &[(&str, &str, &str, &[&str])] = &[
        ("full pinyin", "赌博", "一起去dubo吧", &["dubo"]),
        ("spaced and cased", "赌博", "一起去 Du Bo 吧", &["Du Bo"]),
        ("tone marks", "赌博", "dǔ bó", &["dǔ bó"]),
        ("tone numbers", "赌博", "du3 bo2 ok", &["du3 bo"]),
        ("part pinyin", "自制炸药", "自制zha药和zizhi炸药", &["自制zha药", "zizhi炸药"]),
        ("homophones", "赌博", "网上堵博", &["堵博"]),
        ("plain still found once", "赌博", "网上赌博", &["赌博"]),
        ("not inside a syllable", "赌博", "独步", &[]),
        ("not inside a Latin word", "赌博", "dubois", &[]),
        ("heteronym in a keyword", "长老会", "zhanglaohui and changlaohui", &["zhanglaohui", "changlaohui"]),
        ("traditional homophone", "赌博", "賭搏", &["賭搏"]),
        ("allow covers", "黄片", "三黄片", &[]),
    ];
    for &(name, deny, text, want) in cases {
        let allow = if name == "allow covers" { "三黄片" } else { "" };
        let f = filter_under(deny, allow, PINYIN);
        let text = if name == "allow covers" { "sanhuangpian" } else { text };
        let d = f.check(text);
        let got: Vec<&str> = d.hits.iter().map(|h| &text[h.start..h.end]).collect();
        assert_eq!(got, want, "case {name}");
        let want_out = d.text.clone().unwrap_or_else(|| text.to_string());
        let mut want_hits: Vec<(usize, usize)> = d.hits.iter().map(|h| (h.start, h.end)).collect();
        want_hits.sort();
        let bytes = text.as_bytes();
        let mut splits: Vec<Vec<&[u8]>> = (0..=bytes.len()).map(|k| vec![&bytes[..k], &bytes[k..]]).collect();
        splits.push(bytes.chunks(1).collect());
        for chunks in splits {
            let (out, hits) = run_stream(&f, &chunks);
            assert_eq!(String::from_utf8_lossy(&out), want_out, "case {name}");
            assert_eq!(hits, want_hits, "case {name}");
        }
    }
    // Off by default.
    assert!(filter("赌博", "", MASK_ALL).check("dubo").hits.is_empty());
    // The lane travels in the artifact.
    let mut list = KeywordList::new();
    list.add_source("deny", "赌博\n".as_bytes(), KeywordFormat::Native, KeywordKind::Deny);
    let policy = Policy::from_json(PINYIN).unwrap();
    let dict = aigc_edge::DictionaryBuilder::new().normalization(policy.normalize.clone()).build(&list).unwrap();
    let loaded = Dictionary::from_artifact(&dict.to_artifact()).unwrap();
    assert_eq!(loaded.to_artifact(), dict.to_artifact());
    let f = Filter::new(Arc::new(loaded), &policy).unwrap();
    assert_eq!(f.check("堵博 and du bo").hits.len(), 2);
}

#[test]
fn pinyin_scope_by_length_and_category() {
    let deny = "赌博\tA.1h\n法轮功\tA.1a\n自制炸药\tA.1d\n";
    let cases: [(&str, &[&str]); 6] = [
        (r#"true"#, &["dubo", "falungong", "zizhizhayao"]),
        (r#"{"min_chars": 3}"#, &["falungong", "zizhizhayao"]),
        (r#"{"categories": ["A.1a", "A.1d"], "min_chars": 4}"#, &["zizhizhayao"]),
        (r#"{"categories": ["A.1h"]}"#, &["dubo"]),
        (r#"{"keywords": ["赌博", "自制炸药"]}"#, &["dubo", "zizhizhayao"]),
        (r#"{"keywords": ["赌博", "自制炸药"], "min_chars": 3}"#, &["zizhizhayao"]),
    ];
    let text = "dubo falungong zizhizhayao";
    for (scope, want) in cases {
        let policy = format!(r#"{{"normalize": {{"pinyin": {scope}}}, "pii": {{"action": "pass"}}}}"#);
        let f = filter_under(deny, "", &policy);
        let got: Vec<&str> = f.check(text).hits.iter().map(|h| &text[h.start..h.end]).collect();
        assert_eq!(got, want, "scope {scope}");
        // The scope is part of what the dictionary was compiled for.
        let mut list = KeywordList::new();
        list.add_source("deny", deny.as_bytes(), KeywordFormat::Native, KeywordKind::Deny);
        let p = Policy::from_json(&policy).unwrap();
        let dict = aigc_edge::DictionaryBuilder::new().normalization(p.normalize.clone()).build(&list).unwrap();
        let loaded = Dictionary::from_artifact(&dict.to_artifact()).unwrap();
        assert_eq!(loaded.normalization(), &p.normalize, "scope {scope}");
        let other = Policy::from_json(r#"{"normalize": {"pinyin": {"min_chars": 9}}}"#).unwrap();
        assert!(Filter::new(Arc::new(loaded.clone()), &other).is_err(), "scope {scope}");
        let other = Policy::from_json(r#"{"normalize": {"pinyin": {"keywords": ["法轮功"]}}}"#).unwrap();
        assert!(Filter::new(Arc::new(loaded), &other).is_err(), "scope {scope}");
    }
    for bad in [r#"{"min_char": 3}"#, r#"{"categories": ["Z.9"]}"#, r#""yes""#, r#"{"keywords": [""]}"#] {
        let policy = format!(r#"{{"normalize": {{"pinyin": {bad}}}}}"#);
        let e = Policy::from_json(&policy).unwrap_err().to_string();
        assert!(e.contains("normalize.pinyin"), "{bad}: {e}");
    }
}

/// A filter with the segmentation check over `tests/fixtures/lexicon.txt`.
fn segmented(deny: &str) -> Filter {
    let policy = format!(
        r#"{{"dictionaries": [{{"text": {deny:?}}}], "segmentation": {{"path": "lexicon.txt"}},
            "actions": {{"default": "mask", "uncategorized": "mask"}}, "pii": {{"action": "pass"}}}}"#
    );
    let policy = Policy::from_json(&policy).unwrap();
    Filter::from_policy(&policy, |path| std::fs::read(format!("tests/fixtures/{path}"))).unwrap()
}

#[test]
fn segmentation_whole_and_streamed() {
    let deny = "法轮\n法轮功\n奶子\n她妈\n大6\n没有离婚\n1夜\n自制炸药\n";
    let cases: &[(&str, &str, &[&str])] = &[
        ("a word crosses the start", "大家合法轮流发言", &[]),
        ("kept whole", "我们反对法轮功", &["法轮功"]),
        ("a longer word holds it", "牛奶子", &[]),
        ("at the edges of the text", "法轮", &["法轮"]),
        ("not Han around it", "ok法轮ok", &["法轮"]),
        ("traditional", "大家合法輪流發言", &[]),
        ("separator in its one gap, checked", "大家合法*轮流", &[]),
        ("zero-width inside: an evasion", "合法\u{200B}轮流", &["法\u{200B}轮"]),
        ("every character doubled: an evasion", "合法法轮轮流", &["法法轮轮"]),
        ("one line break: an evasion", "合法\n轮流", &["法\n轮"]),
        ("a mark in every gap: an evasion", "说自、制、炸、药", &["自、制、炸、药"]),
        ("some characters repeated", "她妈妈说", &[]),
        ("a word spelled out for a keyword with digits", "大陆", &[]),
        ("a lexicon word folded to the keyword", "一夜", &[]),
        ("some gaps filled", "没有《离婚》未遂", &[]),
        ("two hits, one stands", "合法轮流，练法轮功", &["法轮功"]),
    ];
    for &(name, text, want) in cases {
        let f = segmented(deny);
        let d = f.check(text);
        let got: Vec<&str> = d.hits.iter().map(|h| &text[h.start..h.end]).collect();
        assert_eq!(got, want, "case {name}");
        let want_out = d.text.clone().unwrap_or_else(|| text.to_string());
        let want_hits: Vec<(usize, usize)> = d.hits.iter().map(|h| (h.start, h.end)).collect();
        let bytes = text.as_bytes();
        let mut splits: Vec<Vec<&[u8]>> = (0..=bytes.len()).map(|k| vec![&bytes[..k], &bytes[k..]]).collect();
        splits.push(bytes.chunks(1).collect());
        for chunks in splits {
            let (out, hits) = run_stream(&f, &chunks);
            let sizes: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
            assert_eq!(String::from_utf8_lossy(&out), want_out, "case {name} chunks {sizes:?}");
            assert_eq!(hits, want_hits, "case {name} chunks {sizes:?}");
        }
    }
}

#[test]
fn segmentation_travels_in_the_artifact_and_refuses_bad_lexicons() {
    let f = segmented("法轮\n");
    let artifact = f.dictionary().to_artifact();
    let loaded = Dictionary::from_artifact(&artifact).unwrap();
    assert_eq!(loaded.lexicon(), f.dictionary().lexicon());
    let g = Filter::new(Arc::new(loaded), f.policy()).unwrap();
    assert!(g.check("大家合法轮流").hits.is_empty());
    assert_eq!(g.check("法轮").hits.len(), 1);
    // Without a lexicon nothing is checked.
    assert_eq!(filter("法轮", "", MASK_ALL).check("大家合法轮流").hits.len(), 1);
    let policy =
        |seg: &str| Policy::from_json(&format!(r#"{{"dictionaries": [{{"text": "法轮"}}], "segmentation": {seg}}}"#));
    let errors = [
        (r#"{"text": "合法 many"}"#, "lexicon segmentation.text line 1: frequency `many` is not a whole number"),
        (r##"{"text": "# nothing"}"##, "lexicon segmentation.text: no Han word with a frequency"),
        (r#"{"path": "missing.txt"}"#, "invalid policy field `segmentation.path`: cannot read missing.txt"),
    ];
    for (seg, want) in errors {
        let err = Filter::from_policy(&policy(seg).unwrap(), |_| Err("no such file")).unwrap_err();
        assert!(err.to_string().starts_with(want), "{seg}: {err}");
    }
    let err = policy(r#"{"path": "a", "text": "b"}"#).unwrap_err();
    assert!(err.to_string().contains("`segmentation`"), "{err}");
}

#[test]
fn segmentation_holds_a_stream_back_a_few_characters_only() {
    let f = segmented("法轮\n");
    let mut stream = f.stream();
    let text = "大家合法轮流发言，然后继续说很多很多别的话";
    let mut out = Vec::new();
    for c in text.as_bytes().chunks(3) {
        out.extend(stream.write(c).unwrap().output);
        assert!(stream.carry() <= 3 * (2 + 4) + 3, "carry {}", stream.carry());
    }
    out.extend(stream.finish().output);
    assert_eq!(String::from_utf8(out).unwrap(), text);
}
