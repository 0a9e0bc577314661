/*!
The core of **aigc-edge**: keeps generative-AI content within China's rules.

It is pure Rust with no I/O, clock or randomness, and runs the same in the Envoy filter
(proxy-wasm, `wasm32-wasip1`), in the browser (wasm-bindgen, `wasm32-unknown-unknown`) and in
the `aigc-edge` command-line tool.

# Overview

The main types, all at the crate root:

* [`Policy`] is the serde-defined policy shared by every host: keyword lists
  ([`policy::DictionarySource`]: a file or inline text), actions per TC260 risk [`Category`],
  [`Normalization`] steps, mask style, personal-information handling and limits.
* [`Filter`] is a compiled dictionary plus a policy. [`Filter::from_policy`] builds the one a
  policy describes (every host assembles it this way); [`Filter::check`] gives a [`Decision`]
  on a whole text; [`Filter::stream`] gives a push [`Stream`] that finds keywords split across
  chunks while holding back no more than the longest keyword.
* [`KeywordList`], [`Dictionary`] and [`DictionaryBuilder`] are the lower layer: keyword files
  (`keyword TAB category TAB action`, or the `word tag,tag` layout of houbb/sensitive-word,
  every dirty line reported with its file and line) compiled into a character-wise
  double-array Aho-Corasick automaton. [`Dictionary::to_artifact`] writes it as a compact
  binary artifact (versioned, XXH64-checked) that [`Dictionary::from_artifact`] loads in
  milliseconds, so an edge proxy starting one VM per worker does not rebuild it.
* [`PiiKind`]: personal information found and redacted; [`pii`] has the detector and the
  redactor on their own.
* [`ImplicitLabel`] is the GB 45438 Annex E label; [`files`] reads and writes it in PNG, JPEG,
  WebP, GIF, TIFF, MP3, WAV, FLAC, MP4 and text files (one label per file, nothing else changed), propagates
  it for platforms and verifies it, with optional HMAC-SHA-256 integrity codes.
  [`ExplicitLabel`] places the visible text label; [`label::visible`] draws it on RGBA pixels;
  [`watermark`] hides the `ProduceID` in text with invisible characters.

The modules hold the rest: [`category`], [`dictionary`], [`keywords`], [`label`],
[`normalize`], [`pii`], [`policy`], [`segment`], [`stream`], [`watermark`].

# Example: a policy, as every host builds it

```
use aigc_edge::{Action, Filter, Policy};

let policy = Policy::from_json(r#"{
    "dictionaries": [{"path": "words.txt"}, {"text": "三黄片", "kind": "allow"}],
    "actions": {"categories": {"A.4c": "mask"}}
}"#)?;
// The core does no I/O: the host reads each `path` (the CLI from disk; Envoy and the
// browser take lists inline, as `text`).
let filter = Filter::from_policy(&policy, |path| match path {
    "words.txt" => Ok("黄片\tA.1f\nsb\tA.4c\n".as_bytes().to_vec()),
    other => Err(format!("no file {other}")),
})?;
assert_eq!(filter.check("三黄片是中药").action, Action::Pass);
assert_eq!(filter.check("你是SB").text.as_deref(), Some("你是**"));
# Ok::<(), aigc_edge::Error>(())
```

# Example: check a text

```
use std::sync::Arc;
use aigc_edge::{Action, Dictionary, Filter, KeywordFormat, KeywordKind, KeywordList, Policy};

let mut list = KeywordList::new();
list.add_source("demo.txt", "五星红旗\tA.1b\tflag\n法轮功\tA.1a\nsb\tA.4c\tmask\n".as_bytes(),
                KeywordFormat::Native, KeywordKind::Deny);
let filter = Filter::new(Arc::new(Dictionary::new(&list)?), &Policy::default())?;

// Traditional characters, inserted symbols and zero-width characters do not evade.
let d = filter.check("我爱五星紅旗，法✨轮\u{200B}功");
assert_eq!(d.action, Action::Block);
let found: Vec<&str> = d.hits.iter().map(|h| h.keyword.as_str()).collect();
assert_eq!(found, ["五星红旗", "法轮功"]);

// Latin keywords match on word boundaries only.
assert_eq!(filter.check("plug in the USB").action, Action::Pass);
assert_eq!(filter.check("you SB").text.as_deref(), Some("you **"));
# Ok::<(), aigc_edge::Error>(())
```

# Example: allow words win over the deny words they cover

```
use std::sync::Arc;
use aigc_edge::{Action, Dictionary, Filter, KeywordFormat, KeywordKind, KeywordList, Policy};

let mut list = KeywordList::new();
list.add_source("deny", "黄片\tA.1f\n".as_bytes(), KeywordFormat::Native, KeywordKind::Deny);
list.add_source("allow", "三黄片\n".as_bytes(), KeywordFormat::Native, KeywordKind::Allow);
let filter = Filter::new(Arc::new(Dictionary::new(&list)?), &Policy::default())?;
let d = filter.check("三黄片是中药，黄片不是");
assert_eq!(d.hits.len(), 1);
assert_eq!(d.hits[0].start, "三黄片是中药，".len());
# Ok::<(), aigc_edge::Error>(())
```

# Example: compile once, load fast

```
use aigc_edge::{Dictionary, KeywordFormat, KeywordKind, KeywordList};

let mut list = KeywordList::new();
list.add_source("k", "赌博\n".as_bytes(), KeywordFormat::Native, KeywordKind::Deny);
let artifact: Vec<u8> = Dictionary::new(&list)?.to_artifact();   // `aigc-edge compile`
let dict = Dictionary::from_artifact(&artifact)?;                 // at VM start
assert_eq!(dict.len(), 1);
# Ok::<(), aigc_edge::Error>(())
```

# Example: personal information

```
use std::sync::Arc;
use aigc_edge::{Action, Dictionary, Filter, KeywordFormat, KeywordKind, KeywordList, Policy};

let mut list = KeywordList::new();
list.add_source("k", "赌博\n".as_bytes(), KeywordFormat::Native, KeywordKind::Deny);
let filter = Filter::new(Arc::new(Dictionary::new(&list)?), &Policy::default())?;
let d = filter.check("我的手机13812345678，备用13812345678");
assert_eq!(d.action, Action::Mask);
assert_eq!(d.text.as_deref(), Some("我的手机[MOBILE_1]，备用[MOBILE_1]"));
assert_eq!(d.restore, [("[MOBILE_1]".to_string(), "13812345678".to_string())]);
# Ok::<(), aigc_edge::Error>(())
```

# Example: label a file, sign it, and verify it with the public key only

```
use aigc_edge::label::seal::{CodeCheck, Keyring, Scheme, Sealer, SigningKey};
use aigc_edge::{files, ImplicitLabel};

// A key's secret comes from the caller's random source (`aigc-edge keygen` draws one).
let key = SigningKey::from_secret(&[42; 32]).expect("a valid secret");
let text = "# 回答\n\n由人工智能生成的内容。\n".as_bytes();
let mut label = ImplicitLabel::generated("001191110102MACQD9K64010000", "aigc-7f3a")?;
label.seal_producer(&Sealer::Sm2(&key));                   // ReservedCode1: an SM2 signature
let labeled = files::write_label(text, &label).expect("text carries a front-matter label");
let keys = Keyring::new().with_public_key(key.public_key());
let (format, labels, verdict) = files::verify(&labeled, &keys).expect("readable");
assert_eq!(format, files::FileFormat::Text);
assert_eq!(labels[0].parsed.label.as_ref(), Some(&label));
assert_eq!(verdict, files::Verdict::Compliant);
assert_eq!(label.check_codes(&keys)[0], CodeCheck::Verified(Scheme::Sm2));
# Ok::<(), aigc_edge::label::LabelError>(())
```

# Normalization

Each step of [`Normalization`] can be switched off in the policy. Keywords are stored in the
form the policy's normalization sees them ([`normalize::canonical`]), so a dictionary is
compiled for one normalization and a [`Filter`] refuses a policy that differs. Matches never
span sentence ends (`。！？`), which keeps separator skipping from joining words across
sentences; clause marks (`，、；：`) and line breaks are crossed only in an evader's pattern
(the same mark in every gap of a keyword of three or more characters, or one line break;
[`Step::Punctuation`]). Look-alike letters ([`Step::Confusables`]) and runs of one letter
([`Step::Repeats`]) are folded too; [`Step::Pinyin`], off by default, matches keywords by
their Mandarin readings (`dubo`, `赌bo`, `堵博`) in a second automaton, for every keyword or
a [`PinyinScope`] (by length, category or keyword). For precision, a policy's `segmentation`
lexicon makes the [`segment`] check confirm each CJK hit only where a word segmentation of its
neighbourhood keeps the keyword whole (`法轮` is not in `合法轮流`). `make bench` measures
each step's detection on a generated evasion set and its false-positive cost on benign
corpora, beside jieba's segmentation.

```
use std::sync::Arc;
use aigc_edge::{Dictionary, Filter, KeywordFormat, KeywordKind, KeywordList, Policy};
let mut list = KeywordList::new();
list.add_source("k.txt", "自制炸药\nfuck\n".as_bytes(), KeywordFormat::Native, KeywordKind::Deny);
let filter = Filter::new(Arc::new(Dictionary::new(&list).unwrap()), &Policy::default()).unwrap();
for evasive in ["自、制、炸、药", "自\n制\n炸\n药", "自制\n炸药", "fuсk (Cyrillic с)", "ffuuuck"] {
    assert_eq!(filter.check(evasive).hits.len(), 1, "{evasive}");
}
// One comma between two characters is running text, not a pattern.
assert!(filter.check("自制，炸药").hits.is_empty());
```

# JSON reports

Every host reports a decision in the same JSON ([`Decision::to_json`]; stream chunks:
[`Chunk::to_json_with`]), with the same key names and order; offsets are bytes (the browser
module gives UTF-16 offsets):

```text
{"flagged":true,"action":"block",
 "hits":[{"keyword":"赌博","category":"A.1h","start":6,"end":13,"action":"block"}],
 "pii":[{"kind":"mobile","start":20,"end":31}],   only when personal information was found
 "text":"…",                                       only when the text was rewritten
 "limit_exceeded":true}                            only when a limit was exceeded
```

# Limits

Every limit is explicit ([`policy::Limits`]): text size for [`Filter::check`], bytes a stream
holds back, dictionary size and keyword length. Past a limit the policy's [`policy::OnLimit`]
decides: fail closed (block) or fail open (pass, and say so).
*/
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod assess;
pub mod category;
pub mod corpus;
pub mod dictionary;
mod error;
mod filter;
pub mod guard;
pub mod keywords;
pub mod label;
mod mask;
pub mod normalize;
pub mod pii;
pub mod policy;
mod report;
mod scanner;
pub mod segment;
pub mod stream;
#[rustfmt::skip] // generated (tools/)
mod confusables_table;
#[cfg(feature = "pinyin")]
mod pinyin_table;
mod t2s_table;
pub mod watermark;

pub use category::{Action, Category};
pub use dictionary::{Dictionary, DictionaryBuilder};
pub use error::{Error, ErrorKind};
pub use filter::{Decision, Filter, Hit};
pub use keywords::{KeywordFormat, KeywordKind, KeywordList};
pub use label::{files, ExplicitLabel, ImplicitLabel};
pub use normalize::{Normalization, PinyinScope, Step};
pub use pii::PiiKind;
pub use policy::Policy;
pub use stream::{Block, Chunk, Stream};
