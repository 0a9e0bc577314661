//! The aigc-edge Python package's native module (`aigc_edge._core`): a thin PyO3 shell over the
//! core. Errors become `aigc_edge.AigcEdgeError` carrying the core's message; matching runs with
//! the GIL released.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use std::sync::Arc;

use aigc_edge::corpus::{self, Options};
use aigc_edge::policy::DictionarySource;
use aigc_edge::{Dictionary, ImplicitLabel, KeywordFormat, KeywordKind, Policy};
use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use serde_json::Value;

create_exception!(_core, AigcEdgeError, PyValueError, "An error of the aigc-edge core: what was wrong and where.");

/// The one place core errors become Python exceptions.
fn err(e: impl std::fmt::Display) -> PyErr {
    AigcEdgeError::new_err(e.to_string())
}

/// A JSON value as the Python object `json.loads` would give (dicts keep key order).
fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => u.into_pyobject(py)?.into_any(),
            (None, Some(i), _) => i.into_pyobject(py)?.into_any(),
            (_, _, f) => f.unwrap_or(f64::NAN).into_pyobject(py)?.into_any(),
        },
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

fn json_to_py<'py>(py: Python<'py>, json: &str) -> PyResult<Bound<'py, PyAny>> {
    let value: Value = serde_json::from_str(json).map_err(err)?;
    to_py(py, &value)
}

fn policy(json: Option<&str>) -> PyResult<Policy> {
    match json {
        Some(j) if !j.trim().is_empty() => Policy::from_json(j).map_err(err),
        _ => Ok(Policy::default()),
    }
}

/// A keyword and personal-information filter: a dictionary and a policy (the schema of every
/// aigc-edge host).
#[pyclass(frozen, module = "aigc_edge")]
struct Filter {
    inner: aigc_edge::Filter,
}

#[pymethods]
impl Filter {
    /// A filter from keyword text (`keyword TAB category TAB action` a line, or houbb's tagged
    /// layout), a compiled `artifact` (bytes from `aigc-edge compile` or `to_artifact`), or the
    /// policy's own `dictionaries` given as `text`; `allow` words cancel the hits they cover.
    #[new]
    #[pyo3(signature = (keywords=None, *, policy=None, allow=None, artifact=None))]
    fn new(
        keywords: Option<&str>,
        policy: Option<&str>,
        allow: Option<&str>,
        artifact: Option<&[u8]>,
    ) -> PyResult<Filter> {
        let mut policy = self::policy(policy)?;
        if let Some(bytes) = artifact {
            if keywords.is_some() || allow.is_some() {
                return Err(err("give keywords (and allow) or an artifact, not both"));
            }
            let dict = Dictionary::from_artifact(bytes).map_err(err)?;
            return Ok(Filter { inner: aigc_edge::Filter::new(Arc::new(dict), &policy).map_err(err)? });
        }
        let given = keywords
            .map(|k| DictionarySource::inline(k, KeywordFormat::Auto, KeywordKind::Deny))
            .into_iter()
            .chain(allow.map(|a| DictionarySource::inline(a, KeywordFormat::Auto, KeywordKind::Allow)));
        policy.dictionaries.splice(0..0, given);
        let inner = aigc_edge::Filter::from_policy(&policy, |path| {
            Err(format!("the Python package reads no files ({path}): give the list as `text`, or read it yourself"))
        })
        .map_err(err)?;
        Ok(Filter { inner })
    }

    /// Distinct keywords in the dictionary.
    #[getter]
    fn keyword_count(&self) -> usize {
        self.inner.dictionary().len()
    }

    /// Dirty keyword lines met while building, as `name:line: problem` strings.
    #[getter]
    fn warnings(&self) -> Vec<String> {
        self.inner.dictionary().diagnostics().iter().map(ToString::to_string).collect()
    }

    /// The dictionary as a compiled artifact: what workers load instead of the word list.
    fn to_artifact<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.dictionary().to_artifact())
    }

    /// The decision on one text, with the CLI's keys: `flagged`, `action`, `hits` (keyword,
    /// category, start, end, action; byte offsets into the UTF-8 text), and `pii`, `text`,
    /// `limit_exceeded` when there is something to say.
    fn check<'py>(&self, py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
        let json = py.detach(|| self.inner.check(text).to_json());
        json_to_py(py, &json)
    }

    /// `check` over many texts, matched with the GIL released: a list of decisions, in order.
    fn check_batch<'py>(&self, py: Python<'py>, texts: Vec<String>) -> PyResult<Bound<'py, PyList>> {
        let decisions: Vec<String> = py.detach(|| texts.iter().map(|t| self.inner.check(t).to_json()).collect());
        let out = PyList::empty(py);
        for json in decisions {
            out.append(json_to_py(py, &json)?)?;
        }
        Ok(out)
    }

    /// The text with hits masked and personal information redacted (unchanged when clean).
    fn mask(&self, py: Python<'_>, text: &str) -> String {
        py.detach(|| self.inner.check(text).text.unwrap_or_else(|| text.to_string()))
    }
}

/// A training corpus assessed per source (TC260-003: no source above 5% harmful) with a
/// seeded spot check; shares of it from many workers `merge` into the report `aigc-edge scan`
/// prints.
#[pyclass(module = "aigc_edge")]
struct Assessment {
    inner: corpus::Assessment,
}

#[pymethods]
impl Assessment {
    #[new]
    #[pyo3(signature = (files, *, text_field="text", source_field="source", sample=4000, seed=0, threshold=0.05))]
    fn new(
        files: Vec<String>,
        text_field: &str,
        source_field: &str,
        sample: usize,
        seed: u64,
        threshold: f64,
    ) -> PyResult<Assessment> {
        let options =
            Options { text_field: text_field.into(), source_field: source_field.into(), sample, seed, threshold };
        options.validate().map_err(err)?;
        Ok(Assessment { inner: corpus::Assessment::new(options, files) })
    }

    /// JSONL lines, as parallel lists of their files, line numbers (1-based) and bytes; each is
    /// parsed as the CLI parses it. GIL released.
    fn lines(
        &mut self,
        py: Python<'_>,
        filter: &Filter,
        files: Vec<String>,
        numbers: Vec<u64>,
        lines: Vec<Vec<u8>>,
    ) -> PyResult<()> {
        if numbers.len() != files.len() || lines.len() != files.len() {
            return Err(err("files, numbers and lines must have the same length"));
        }
        let inner = &mut self.inner;
        py.detach(|| {
            for ((file, number), line) in files.iter().zip(&numbers).zip(&lines) {
                inner.line(&filter.inner, file, *number, line);
            }
        });
        Ok(())
    }

    /// A run of JSONL lines of `file` (`data`, whole lines), the first being line `first_line`;
    /// split and numbered as the CLI reads a file (a last newline ends a line, it does not
    /// start one). GIL released.
    fn jsonl(&mut self, py: Python<'_>, filter: &Filter, file: &str, first_line: u64, data: &[u8]) {
        let inner = &mut self.inner;
        py.detach(|| {
            let body = data.strip_suffix(b"\n").unwrap_or(data);
            if data.is_empty() {
                return;
            }
            for (i, line) in body.split(|&b| b == b'\n').enumerate() {
                inner.line(&filter.inner, file, first_line + i as u64, line);
            }
        });
    }

    /// Documents already read (Parquet, a data frame): parallel lists of files, line (row)
    /// numbers, texts and sources; GIL released.
    fn documents(
        &mut self,
        py: Python<'_>,
        filter: &Filter,
        files: Vec<String>,
        numbers: Vec<u64>,
        texts: Vec<String>,
        sources: Vec<Option<String>>,
    ) -> PyResult<()> {
        if [numbers.len(), texts.len(), sources.len()].iter().any(|&n| n != files.len()) {
            return Err(err("files, numbers, texts and sources must have the same length"));
        }
        let inner = &mut self.inner;
        py.detach(|| {
            for (((file, line), text), source) in files.iter().zip(&numbers).zip(&texts).zip(&sources) {
                inner.document(&filter.inner, file, *line, text, source.as_deref().unwrap_or("(none)"));
            }
        });
        Ok(())
    }

    /// Adds another share of the same corpus (or its `to_bytes`).
    fn merge(&mut self, other: &Bound<'_, PyAny>) -> PyResult<()> {
        let other = if let Ok(bytes) = other.extract::<Vec<u8>>() {
            corpus::Assessment::from_bytes(&bytes).map_err(err)?
        } else {
            other.extract::<PyRef<'_, Assessment>>()?.inner.clone()
        };
        self.inner.merge(other);
        Ok(())
    }

    /// The state as bytes, to ship from a worker.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.to_bytes())
    }

    /// Documents counted so far.
    #[getter]
    fn documents_seen(&self) -> u64 {
        self.inner.documents()
    }

    /// Sources over the threshold.
    #[getter]
    fn rejected_sources(&self) -> Vec<String> {
        self.inner.rejected_sources().into_iter().map(str::to_string).collect()
    }

    /// The report, as the CLI's `scan` prints it (a dict).
    fn report<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner.report())
    }

    /// The report as the CLI prints it: pretty JSON text.
    fn report_json(&self) -> PyResult<String> {
        serde_json::to_string_pretty(&self.inner.report()).map_err(err)
    }
}

fn random_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        bytes.copy_from_slice(&nanos.to_le_bytes());
    }
    aigc_edge::label::produce_id(&bytes)
}

/// The file (PNG, JPEG, WebP, GIF, TIFF, MP3, WAV, FLAC, Ogg, MP4, PDF, OOXML, text) with the
/// GB 45438 implicit label, one per file; a random ProduceID unless given. `signing_key` (SM2,
/// PKCS#8 PEM) signs it; else `key` seals it with HMAC-SHA-256.
#[pyfunction]
#[pyo3(signature = (data, producer, produce_id=None, key=None, signing_key=None))]
fn label_file<'py>(
    py: Python<'py>,
    data: &[u8],
    producer: &str,
    produce_id: Option<String>,
    key: Option<&[u8]>,
    signing_key: Option<&str>,
) -> PyResult<Bound<'py, PyBytes>> {
    use aigc_edge::label::seal::{Sealer, SigningKey};
    let id = produce_id.unwrap_or_else(random_id);
    let mut label = ImplicitLabel::generated(producer, &id).map_err(err)?;
    let signing = signing_key.map(SigningKey::from_pem).transpose().map_err(err)?;
    match (&signing, key) {
        (Some(k), _) => label.seal_producer(&Sealer::Sm2(k)),
        (None, Some(k)) => label.seal_producer(&Sealer::HmacSha256(k)),
        (None, None) => {}
    }
    let out = aigc_edge::files::write_label(data, &label).map_err(err)?;
    Ok(PyBytes::new(py, &out))
}

/// The labels in a file, the verdict and its reasons, as the CLI's `verify` reports them:
/// `key` checks HMAC codes; `public_keys` (SubjectPublicKeyInfo PEM) check SM2 signatures.
#[pyfunction]
#[pyo3(signature = (data, key=None, public_keys=None))]
fn verify_file<'py>(
    py: Python<'py>,
    data: &[u8],
    key: Option<&[u8]>,
    public_keys: Option<Vec<String>>,
) -> PyResult<Bound<'py, PyAny>> {
    use aigc_edge::label::seal::{Keyring, PublicKey};
    let mut keys = Keyring::new();
    if let Some(k) = key {
        keys = keys.with_shared_key(k);
    }
    for pem in public_keys.unwrap_or_default() {
        keys = keys.with_public_key(PublicKey::from_pem(&pem).map_err(err)?);
    }
    let (format, labels, verdict) = aigc_edge::files::verify(data, &keys).map_err(err)?;
    to_py(py, &aigc_edge::files::report_json(format, &labels, Some((&verdict, &keys))))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Filter>()?;
    m.add_class::<Assessment>()?;
    m.add_function(wrap_pyfunction!(label_file, m)?)?;
    m.add_function(wrap_pyfunction!(verify_file, m)?)?;
    m.add("AigcEdgeError", m.py().get_type::<AigcEdgeError>())?;
    Ok(())
}
