//! Labelled text: CSV/TSV tables (RFC 4180 quoting, a header row, chosen or detected columns),
//! JSONL, and (natively) a folder of `.txt` files per class. UTF-8, a byte-order mark is
//! fine. A row that cannot be used is reported with its file and line and left out; a problem
//! that would make the whole file wrong (no such column, an unclosed quote) is an error.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Header names taken for the text column when none is chosen, in order of preference.
const TEXT_NAMES: &[&str] = &[
    "text", "sentence", "review", "content", "body", "message", "document", "comment", "email",
    "title", "input",
];
/// Header names taken for the label column when none is chosen.
const LABEL_NAMES: &[&str] = &[
    "label",
    "labels",
    "class",
    "category",
    "target",
    "sentiment",
    "y",
    "output",
];

/// Which columns (tables) or keys (JSONL) hold the text and the label; `None` detects them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Columns {
    /// Column or key of the text.
    pub text: Option<String>,
    /// Column or key of the label.
    pub label: Option<String>,
    /// Keep only the first N rows of each class.
    pub per_class: Option<usize>,
}

/// A labelled text dataset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TextSet {
    /// Class names, indexed by label (in [`super::classes::order`]).
    pub classes: Vec<String>,
    /// One text per row.
    pub texts: Vec<String>,
    /// Label of each row.
    pub labels: Vec<u32>,
    /// Where each row came from ("file:line"), for messages.
    pub origins: Vec<String>,
    /// Rows left out, as ("file:line", reason).
    pub skipped: Vec<(String, String)>,
    /// The table's header, or the first JSON object's keys (empty for a folder).
    #[serde(default)]
    pub header: Vec<String>,
    /// The column (or key) the texts came from.
    #[serde(default)]
    pub text_column: String,
    /// The column (or key) the labels came from.
    #[serde(default)]
    pub label_column: String,
}

impl TextSet {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// True without rows.
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// Build from (origin, text, label name) rows: classes are the sorted label names; fewer
    /// than 2 classes, or a class with a single example, is an error naming it.
    pub fn from_rows(
        name: &str,
        rows: Vec<(String, String, String)>,
        skipped: Vec<(String, String)>,
    ) -> Result<Self> {
        Self::from_kept(name, rows, skipped, None)
    }

    /// [`Self::from_rows`] of rows kept from a larger table whose rows per label were `totals`
    /// (the checks count those).
    fn from_kept(
        name: &str,
        rows: Vec<(String, String, String)>,
        skipped: Vec<(String, String)>,
        totals: Option<&std::collections::HashMap<String, usize>>,
    ) -> Result<Self> {
        let mut first: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
        for (origin, _, label) in &rows {
            first.entry(label).or_insert((0, origin)).0 += 1;
        }
        if let Some(totals) = totals {
            for (label, (count, _)) in first.iter_mut() {
                *count = totals.get(*label).copied().unwrap_or(*count);
            }
        }
        if first.len() < 2 {
            let found = match first.keys().next() {
                Some(label) => format!("only the label \"{label}\""),
                None => "no usable rows".into(),
            };
            let why = skipped
                .first()
                .map(|(at, reason)| format!(" (first row left out: {at}: {reason})"))
                .unwrap_or_default();
            return Err(Error::Data(format!(
                "{name}: {found}; a classifier needs at least 2 labels{why}"
            )));
        }
        if let Some((label, (_, origin))) = first.iter().find(|(_, (n, _))| *n == 1) {
            return Err(Error::Data(format!(
                "{origin}: label \"{label}\" has a single example; every label needs at least 2 \
                 (one to train on, one to validate). Fix or remove that row"
            )));
        }
        let classes = super::classes::order(first.keys());
        let index: BTreeMap<&str, u32> = classes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i as u32))
            .collect();
        let labels = rows.iter().map(|(_, _, l)| index[l.as_str()]).collect();
        drop(first);
        // The rows' strings move (a large table is not held twice).
        let (origins, texts) = rows.into_iter().map(|(o, t, _)| (o, t)).unzip();
        Ok(Self {
            classes,
            texts,
            labels,
            origins,
            skipped,
            ..Self::default()
        })
    }

    fn with_columns(mut self, header: Vec<String>, text: &str, label: &str) -> Self {
        self.header = header;
        self.text_column = text.into();
        self.label_column = label.into();
        self
    }

    /// These rows followed by those of `val` (`val_name` for messages), whose labels must be
    /// the same: returns the whole set and its (train rows, validation rows).
    pub fn with_validation(
        mut self,
        val: TextSet,
        val_name: &str,
    ) -> Result<(Self, super::split::Split)> {
        if val.classes != self.classes {
            return Err(Error::Data(format!(
                "{val_name}: labels {:?} differ from the training data's {:?}",
                val.classes, self.classes
            )));
        }
        let n = self.len();
        self.texts.extend(val.texts);
        self.labels.extend(val.labels);
        self.origins.extend(val.origins);
        self.skipped.extend(val.skipped);
        let split = ((0..n).collect(), (n..self.len()).collect());
        Ok((self, split))
    }

    /// Only the first `n` rows of each class (in file order): a quick run on a large set.
    pub fn take_per_class(mut self, n: usize) -> Self {
        let mut taken = vec![0usize; self.classes.len()];
        let keep: Vec<bool> = self
            .labels
            .iter()
            .map(|&l| {
                taken[l as usize] += 1;
                taken[l as usize] <= n
            })
            .collect();
        let mut k = keep.iter();
        self.texts.retain(|_| *k.next().unwrap());
        let mut k = keep.iter();
        self.labels.retain(|_| *k.next().unwrap());
        let mut k = keep.iter();
        self.origins.retain(|_| *k.next().unwrap());
        self
    }

    /// Parse a table or JSONL file by its name's extension (`.csv`, `.tsv`/`.tab`, `.jsonl`/
    /// `.ndjson`; otherwise told from its first line).
    pub fn parse(bytes: &[u8], name: &str, columns: &Columns) -> Result<Self> {
        let set = Self::parse_all(bytes, name, columns)?;
        Ok(match columns.per_class {
            Some(n) => set.take_per_class(n),
            None => set,
        })
    }

    fn parse_all(bytes: &[u8], name: &str, columns: &Columns) -> Result<Self> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let lower = name.to_ascii_lowercase();
        let ext = lower.rsplit('.').next().unwrap_or("");
        match ext {
            "jsonl" | "ndjson" => parse_jsonl(bytes, name, columns),
            "csv" => parse_table(bytes, name, b',', columns),
            "tsv" | "tab" => parse_table(bytes, name, b'\t', columns),
            _ => {
                let first = bytes.split(|&b| b == b'\n').next().unwrap_or(b"");
                if first.trim_ascii_start().starts_with(b"{") {
                    parse_jsonl(bytes, name, columns)
                } else {
                    let tabs = first.iter().filter(|&&b| b == b'\t').count();
                    let commas = first.iter().filter(|&&b| b == b',').count();
                    parse_table(
                        bytes,
                        name,
                        if tabs > commas { b'\t' } else { b',' },
                        columns,
                    )
                }
            }
        }
    }

    /// A folder with one subfolder per class holding `.txt` files, one example each.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_folder(root: &std::path::Path) -> Result<Self> {
        let list = |dir: &std::path::Path| -> Result<Vec<std::path::PathBuf>> {
            let mut v: Vec<_> = std::fs::read_dir(dir)
                .map_err(|err| Error::Data(format!("{}: cannot list: {err}", dir.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    !p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect();
            v.sort();
            Ok(v)
        };
        let (mut rows, mut skipped) = (Vec::new(), Vec::new());
        for dir in list(root)?.into_iter().filter(|p| p.is_dir()) {
            let class = dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            for file in list(&dir)? {
                let at = file.display().to_string();
                if file.extension().and_then(|e| e.to_str()) != Some("txt") {
                    skipped.push((at, "not a .txt file".into()));
                    continue;
                }
                let bytes = std::fs::read(&file)
                    .map_err(|err| Error::Data(format!("{at}: cannot read: {err}")))?;
                let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
                match std::str::from_utf8(bytes) {
                    Err(err) => skipped.push((at, utf8_reason(err))),
                    Ok(text) if text.trim().is_empty() => skipped.push((at, "empty text".into())),
                    Ok(text) => rows.push((at, text.trim().to_string(), class.clone())),
                }
            }
        }
        Self::from_rows(&root.display().to_string(), rows, skipped)
    }

    /// Read `path`: a folder of class folders of `.txt`, or a table / JSONL file.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(path: &std::path::Path, columns: &Columns) -> Result<Self> {
        if path.is_dir() {
            let set = Self::from_folder(path)?;
            return Ok(match columns.per_class {
                Some(n) => set.take_per_class(n),
                None => set,
            });
        }
        let bytes = std::fs::read(path)
            .map_err(|err| Error::Data(format!("{}: cannot read: {err}", path.display())))?;
        Self::parse(&bytes, &path.display().to_string(), columns)
    }
}

fn utf8_reason(err: std::str::Utf8Error) -> String {
    format!(
        "not UTF-8 (invalid byte at offset {}); save the file as UTF-8",
        err.valid_up_to()
    )
}

/// The column index chosen by name, or detected.
fn pick(
    header: &[String],
    chosen: Option<&str>,
    names: &[&str],
    what: &str,
    file: &str,
) -> Result<Option<usize>> {
    let find = |n: &str| header.iter().position(|h| h.trim().eq_ignore_ascii_case(n));
    match chosen {
        Some(name) => find(name).map(Some).ok_or_else(|| {
            Error::Data(format!(
                "{file}: no {what} column \"{name}\"; the header has {header:?}"
            ))
        }),
        None => Ok(names.iter().find_map(|n| find(n))),
    }
}

/// A table's rows as (origin, text, label), only the first `per_class` of each label kept
/// while parsing (with `--per-class` a large file's other rows are never held).
struct Kept {
    rows: Vec<(String, String, String)>,
    per_class: Option<usize>,
    counts: std::collections::HashMap<String, usize>,
}

impl Kept {
    fn new(per_class: Option<usize>) -> Self {
        Self {
            rows: Vec::new(),
            per_class,
            counts: std::collections::HashMap::new(),
        }
    }

    fn push(&mut self, at: String, text: &str, label: &str) {
        if let Some(n) = self.per_class {
            let count = match self.counts.get_mut(label) {
                Some(count) => count,
                None => self.counts.entry(label.to_string()).or_insert(0),
            };
            *count += 1;
            if *count > n {
                return;
            }
        }
        self.rows.push((at, text.to_string(), label.to_string()));
    }

    /// The set, its checks counting every row of the table.
    fn finish(self, name: &str, skipped: Vec<(String, String)>) -> Result<TextSet> {
        let totals = self.per_class.map(|_| &self.counts);
        TextSet::from_kept(name, self.rows, skipped, totals)
    }
}

fn parse_table(bytes: &[u8], name: &str, delimiter: u8, columns: &Columns) -> Result<TextSet> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut records = reader.byte_records();
    let header: Vec<String> = match records.next() {
        None => return Err(Error::Data(format!("{name}: the file is empty"))),
        Some(Err(err)) => return Err(Error::Data(format!("{name}: line 1: {err}"))),
        Some(Ok(record)) => record
            .iter()
            .map(|f| String::from_utf8_lossy(f).trim().to_string())
            .collect(),
    };
    let text = pick(&header, columns.text.as_deref(), TEXT_NAMES, "text", name)?;
    let label = pick(
        &header,
        columns.label.as_deref(),
        LABEL_NAMES,
        "label",
        name,
    )?;
    let (text, label) = match (text, label) {
        (Some(t), Some(l)) if t != l => (t, l),
        (Some(_), Some(_)) => {
            return Err(Error::Data(format!(
                "{name}: the text and the label are the same column \"{}\"",
                header[text.unwrap()]
            )));
        }
        // Two columns, one of them known: the other is the rest.
        (Some(t), None) if header.len() == 2 => (t, 1 - t),
        (None, Some(l)) if header.len() == 2 => (1 - l, l),
        (t, l) => {
            let missing = match (t, l) {
                (None, None) => "text and label columns",
                (None, _) => "text column",
                _ => "label column",
            };
            return Err(Error::Data(format!(
                "{name}: cannot tell the {missing} from the header {header:?}; name them \
                 (CLI: --text-column / --label-column; a header like \"text\" and \"label\" is \
                 found by itself)"
            )));
        }
    };
    let need = text.max(label) + 1;
    let (mut rows, mut skipped) = (Kept::new(columns.per_class), Vec::new());
    let (mut last_start, mut last_line) = (0, 1);
    for record in records {
        let record = match record {
            Ok(r) => r,
            Err(err) => {
                let line = err.position().map(|p| p.line()).unwrap_or(0);
                skipped.push((format!("{name}:{line}"), err.to_string()));
                continue;
            }
        };
        let pos = record
            .position()
            .cloned()
            .unwrap_or_else(csv::Position::new);
        (last_start, last_line) = (pos.byte() as usize, pos.line());
        let at = format!("{name}:{}", pos.line());
        if record.len() == 1 && record[0].trim_ascii().is_empty() {
            continue; // a blank line
        }
        if record.len() < need {
            skipped.push((
                at,
                format!(
                    "{} field(s), the header has {} (a missing delimiter or quote?)",
                    record.len(),
                    header.len()
                ),
            ));
            continue;
        }
        let (t, l) = match (
            std::str::from_utf8(&record[text]),
            std::str::from_utf8(&record[label]),
        ) {
            (Ok(t), Ok(l)) => (t.trim(), l.trim()),
            (Err(err), _) | (_, Err(err)) => {
                skipped.push((at, utf8_reason(err)));
                continue;
            }
        };
        if t.is_empty() {
            skipped.push((at, format!("empty text in column \"{}\"", header[text])));
        } else if l.is_empty() {
            skipped.push((at, format!("empty label in column \"{}\"", header[label])));
        } else {
            rows.push(at, t, l);
        }
    }
    // csv ends a quoted field at the end of the file without complaint; an odd number of quotes
    // from the last record's start means one was opened and never closed.
    let tail = &bytes[last_start.min(bytes.len())..];
    if tail.iter().filter(|&&b| b == b'"').count() % 2 == 1 {
        return Err(Error::Data(format!(
            "{name}:{last_line}: a quote opened on this line is never closed, so the rest of the file \
             would be read as one field; close or double (\"\") the quote"
        )));
    }
    let (t, l) = (header[text].clone(), header[label].clone());
    Ok(rows.finish(name, skipped)?.with_columns(header, &t, &l))
}

fn parse_jsonl(bytes: &[u8], name: &str, columns: &Columns) -> Result<TextSet> {
    let text_key = columns.text.as_deref();
    let label_key = columns.label.as_deref();
    let (mut rows, mut skipped) = (Kept::new(columns.per_class), Vec::new());
    let mut first: Option<Vec<String>> = None;
    let mut used: Option<(String, String)> = None;
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let at = format!("{name}:{}", i + 1);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.trim_ascii().is_empty() {
            continue;
        }
        let line = match std::str::from_utf8(line) {
            Ok(l) => l,
            Err(err) => {
                skipped.push((at, utf8_reason(err)));
                continue;
            }
        };
        let object: serde_json::Map<String, serde_json::Value> = match serde_json::from_str(line) {
            Ok(o) => o,
            Err(err) => {
                skipped.push((at, format!("not a JSON object: {err}")));
                continue;
            }
        };
        let find = |chosen: Option<&str>, names: &[&str]| -> Option<(String, String)> {
            let keys: Vec<&str> = match chosen {
                Some(c) => vec![c],
                None => names.to_vec(),
            };
            keys.iter().find_map(|k| {
                let v = object.get(*k)?;
                let s = match v {
                    serde_json::Value::String(s) => s.trim().to_string(),
                    serde_json::Value::Number(n) => n.to_string(),
                    serde_json::Value::Bool(b) => b.to_string(),
                    _ => return None,
                };
                Some((k.to_string(), s))
            })
        };
        if first.is_none() {
            first = Some(object.keys().cloned().collect());
        }
        let (Some((tk, text)), Some((lk, label))) =
            (find(text_key, TEXT_NAMES), find(label_key, LABEL_NAMES))
        else {
            let keys: Vec<&String> = object.keys().collect();
            let missing = if find(text_key, TEXT_NAMES).is_none() {
                format!("no text key ({})", text_key.unwrap_or("text"))
            } else {
                format!("no label key ({})", label_key.unwrap_or("label"))
            };
            // The same key missing on every line is a wrong choice, not bad rows.
            if rows.rows.is_empty() && skipped.is_empty() {
                return Err(Error::Data(format!(
                    "{at}: {missing} among the keys {keys:?}; name the keys (CLI: \
                     --text-column / --label-column)"
                )));
            }
            skipped.push((at, format!("{missing} among the keys {keys:?}")));
            continue;
        };
        used.get_or_insert((tk, lk));
        if text.is_empty() {
            skipped.push((at, "empty text".into()));
        } else {
            rows.push(at, &text, &label);
        }
    }
    let (t, l) = used.unwrap_or_default();
    Ok(rows
        .finish(name, skipped)?
        .with_columns(first.unwrap_or_default(), &t, &l))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &[u8], name: &str) -> Result<TextSet> {
        TextSet::parse(text, name, &Columns::default())
    }

    #[test]
    fn csv_with_quotes_bom_and_detected_columns() {
        let csv = "\u{feff}id,review,sentiment\n1,\"good, \"\"really\"\" good\",pos\n2,\"bad\nfilm\",neg\n3,fine,pos\n4,awful,neg\n";
        let set = parse(csv.as_bytes(), "r.csv").unwrap();
        assert_eq!(set.classes, ["neg", "pos"]);
        assert_eq!(set.texts[0], "good, \"really\" good");
        assert_eq!(set.texts[1], "bad\nfilm");
        assert_eq!(set.labels, [1, 0, 1, 0]);
        assert_eq!(set.origins[2], "r.csv:5");
    }

    #[test]
    fn chosen_columns_tsv_and_numeric_labels() {
        let tsv = b"a\tb\tc\nx one\t10\t?\ny two\t2\t?\nz\t10\t?\nw\t2\t?\n";
        let cols = Columns {
            text: Some("a".into()),
            label: Some("B".into()),
            per_class: None,
        };
        let set = TextSet::parse(tsv, "t.tsv", &cols).unwrap();
        assert_eq!(set.classes, ["2", "10"]);
        assert_eq!(set.labels, [1, 0, 1, 0]);
        let err = TextSet::parse(
            tsv,
            "t.tsv",
            &Columns {
                label: Some("nope".into()),
                ..cols
            },
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("t.tsv") && err.contains("\"nope\""), "{err}");
    }

    #[test]
    fn bad_rows_are_skipped_with_their_line() {
        let mut csv = b"text,label\ngood,1\n,0\nbad,0\nok,1\nmeh,0\n".to_vec();
        csv.extend_from_slice(b"caf\xe9,1\nonly one field\n");
        let set = parse(&csv, "d.csv").unwrap();
        assert_eq!(set.len(), 4);
        let skipped: Vec<String> = set
            .skipped
            .iter()
            .map(|(a, r)| format!("{a} {r}"))
            .collect();
        assert!(skipped[0].starts_with("d.csv:3 empty text"), "{skipped:?}");
        assert!(skipped[1].starts_with("d.csv:7 not UTF-8"), "{skipped:?}");
        assert!(skipped[2].starts_with("d.csv:8 1 field"), "{skipped:?}");
    }

    #[test]
    fn whole_file_problems_are_errors() {
        let err = parse(b"text,label\ngood,1\n\"bad,0\nok,1\nx,0\n", "q.csv")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("q.csv:3") && err.contains("never closed"),
            "{err}"
        );
        let err = parse(b"sentence,score,x\na,1,2\n", "m.csv")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("m.csv") && err.contains("label column"),
            "{err}"
        );
        let err = parse(b"text,label\na,x\nb,y\nc,y\n", "s.csv")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("s.csv:2") && err.contains("\"x\" has a single example"),
            "{err}"
        );
        let err = parse(b"text,label\na,x\nb,x\n", "o.csv")
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least 2 labels"), "{err}");
    }

    #[test]
    fn jsonl_keys_and_bad_lines() {
        let jsonl = b"{\"text\": \"a\", \"label\": 1}\n\n{\"text\": \"b\", \"label\": 0}\nnot json\n{\"text\": \"c\", \"label\": 1}\n{\"text\": \"d\", \"label\": 0}\n";
        let set = parse(jsonl, "j.jsonl").unwrap();
        assert_eq!(set.texts, ["a", "b", "c", "d"]);
        assert_eq!(set.skipped[0].0, "j.jsonl:4");
        let few = TextSet::parse(
            jsonl,
            "j.jsonl",
            &Columns {
                per_class: Some(1),
                ..Columns::default()
            },
        )
        .unwrap();
        assert_eq!(few.texts, ["a", "b"]);
        assert_eq!(few.origins, ["j.jsonl:1", "j.jsonl:3"]);
        let err = TextSet::parse(
            jsonl,
            "j.jsonl",
            &Columns {
                text: Some("body".into()),
                ..Columns::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("j.jsonl:1") && err.contains("body"), "{err}");
    }
}
