//! Numeric recordings (sensors, joints, robot state): CSV/TSV/JSONL of timestamped samples with
//! channel columns and either a per-sample label column or target columns, one file per
//! recording, folders of them (a subfolder per person or device: the split keeps each on one
//! side). Read into [`Recordings`] at one sample rate, then cut into windows ([`SeriesSet`]).
//!
//! What a recording can get wrong, and what happens (each named in `skipped` or `notices`, the
//! rest used):
//! - a channel, label or target column missing: the file is left out;
//! - a cell that is not a number (named by row and column), empty or NaN: a gap, filled by
//!   linear interpolation up to `max_gap_s`, a longer one cuts the recording in two;
//! - timestamps that go backwards (named by row) cut the recording there; a repeated one drops
//!   its row; a jump in time longer than `max_gap_s` cuts it too;
//! - a rate that differs from the model's is resampled (FFT resampler for the channels,
//!   linear for targets, nearest for labels); uneven timestamps are first put on a regular
//!   grid; a rate that contradicts the recipe's `rate_hz` leaves the file out;
//! - a recording (or part) shorter than one window is left out.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Which label a window gets from its samples' labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LabelRule {
    /// The most frequent label among its labelled samples (unlabelled samples must not be the
    /// majority).
    #[default]
    Majority,
    /// The label of its middle sample.
    Center,
    /// Only windows whose samples all have one label.
    All,
}

/// How recordings are read and cut: the recipe's `series` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeriesOptions {
    /// Channels the model reads, in its order; empty: the model's own. Channels the model does
    /// not have get new input weights (zero, so the old ones start as before).
    pub channels: Vec<String>,
    /// The column of per-sample class labels.
    pub label_column: String,
    /// Target columns (regression); empty: the model's output names when it gives values.
    pub targets: Vec<String>,
    /// Sample rate (Hz) of files without a time column; 0: each file needs one.
    pub rate_hz: f64,
    /// Window length (s); 0: the model's fixed window, else 4 s.
    pub window_s: f64,
    /// Seconds between the starts of two windows; 0: half a window.
    pub stride_s: f64,
    /// Which label a window gets.
    pub label_rule: LabelRule,
    /// Per-step outputs: seconds at the start of each window left out of the loss and the
    /// error (a recurrent state starts at zero there).
    pub warmup_s: f64,
    /// Per-step outputs: validation windows (s), longer than the training ones: a recurrent
    /// network is judged on long stretches, as it runs on a device (0: the training window).
    pub eval_window_s: f64,
    /// Per-step outputs: seconds at the start of each validation window not scored (a
    /// recurrent state converging from zero).
    pub eval_warmup_s: f64,
    /// Longest gap (s) filled by interpolation; longer ones cut the recording.
    pub max_gap_s: f64,
    /// Train the same architecture from fresh weights instead (a baseline).
    pub from_scratch: bool,
}

impl Default for SeriesOptions {
    fn default() -> Self {
        Self {
            channels: Vec::new(),
            label_column: "label".into(),
            targets: Vec::new(),
            rate_hz: 0.0,
            window_s: 0.0,
            stride_s: 0.0,
            label_rule: LabelRule::Majority,
            warmup_s: 1.0,
            eval_window_s: 20.0,
            eval_warmup_s: 5.0,
            max_gap_s: 0.5,
            from_scratch: false,
        }
    }
}

impl SeriesOptions {
    /// Every field in range.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, message: String| {
            Err(Error::Recipe {
                field: format!("series.{field}"),
                message,
            })
        };
        for (field, v) in [
            ("rate_hz", self.rate_hz),
            ("window_s", self.window_s),
            ("stride_s", self.stride_s),
            ("warmup_s", self.warmup_s),
            ("eval_window_s", self.eval_window_s),
            ("eval_warmup_s", self.eval_warmup_s),
            ("max_gap_s", self.max_gap_s),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return bad(field, format!("{v} must be 0 or more"));
            }
        }
        if self.window_s > 0.0 && self.warmup_s >= self.window_s {
            return bad(
                "warmup_s",
                format!(
                    "{} leaves nothing of a {} s window to learn from",
                    self.warmup_s, self.window_s
                ),
            );
        }
        if self.eval_window_s > 0.0 && self.eval_warmup_s >= self.eval_window_s {
            return bad(
                "eval_warmup_s",
                format!(
                    "{} leaves nothing of a {} s validation window to score",
                    self.eval_warmup_s, self.eval_window_s
                ),
            );
        }
        Ok(())
    }
}

/// One recording (or a part of one, between two cuts) at the set's rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    /// The file (and part) it came from.
    pub name: String,
    /// The person or device: its folder (or the file, at the top level).
    pub group: String,
    /// `[samples, channels]` row-major.
    pub values: Vec<f32>,
    /// Per-sample class (index into the classes), when labelled.
    pub labels: Vec<Option<u32>>,
    /// `[samples, targets]` row-major, when the set has targets.
    pub targets: Vec<f32>,
}

impl Recording {
    /// Samples.
    pub fn len(&self, channels: usize) -> usize {
        self.values.len() / channels.max(1)
    }
}

/// What a set of recordings must have (from the model and the recipe).
#[derive(Debug, Clone, PartialEq)]
pub struct Wanted {
    /// Channel columns in order; empty: every numeric column that is not time, label or target.
    pub channels: Vec<String>,
    /// The label column, for a classifier.
    pub label_column: Option<String>,
    /// Target columns, for a regression.
    pub targets: Vec<String>,
    /// Resample to this rate (Hz); `None`: the first file's.
    pub rate_hz: Option<f64>,
    /// The rate of files without a time column (0: they need one).
    pub declared_rate_hz: f64,
    /// Longest gap (s) filled.
    pub max_gap_s: f64,
}

/// Recordings at one rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Recordings {
    /// Samples per second of every recording.
    pub rate_hz: f64,
    /// Channel names (the value columns), in order.
    pub channels: Vec<String>,
    /// Class names in [`super::classes::order`] (classifiers).
    pub classes: Vec<String>,
    /// Target names (regressions).
    pub targets: Vec<String>,
    /// The recordings.
    pub items: Vec<Recording>,
    /// (file, why) of files or parts left out.
    pub skipped: Vec<(String, String)>,
    /// (file, what) of what was repaired: gaps filled, rows dropped, resampled.
    pub notices: Vec<(String, String)>,
}

/// Columns read as time (seconds; a `_ms` suffix: milliseconds).
const TIME_COLUMNS: [&str; 6] = [
    "time",
    "t",
    "timestamp",
    "seconds",
    "time_ms",
    "timestamp_ms",
];

/// One parsed file before its labels have class indices: (time, values, labels, targets).
struct Parsed {
    time: Option<Vec<f64>>,
    values: Vec<Vec<f32>>,
    labels: Vec<Option<String>>,
    targets: Vec<Vec<f32>>,
    channels: Vec<String>,
}

fn cell_number(cell: &str) -> Option<f32> {
    let t = cell.trim();
    if t.is_empty() {
        return None;
    }
    t.parse::<f32>().ok().filter(|v| !v.is_nan())
}

/// Read `bytes` of `name` (CSV, TSV or JSONL by extension) for `wanted`.
fn parse(
    bytes: &[u8],
    name: &str,
    wanted: &Wanted,
    notices: &mut Vec<(String, String)>,
) -> std::result::Result<Parsed, String> {
    let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    let (header, rows): (Vec<String>, Vec<Vec<String>>) = match ext.as_str() {
        "jsonl" | "ndjson" => {
            let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())?;
            let mut header: Vec<String> = Vec::new();
            let mut objects = Vec::new();
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line)
                    .map_err(|e| format!("line {}: not a JSON object ({e})", i + 1))?;
                for k in v.keys() {
                    if !header.contains(k) {
                        header.push(k.clone());
                    }
                }
                objects.push(v);
            }
            let rows = objects
                .into_iter()
                .map(|o| {
                    header
                        .iter()
                        .map(|k| match o.get(k) {
                            Some(serde_json::Value::String(s)) => s.clone(),
                            Some(serde_json::Value::Null) | None => String::new(),
                            Some(v) => v.to_string(),
                        })
                        .collect()
                })
                .collect();
            (header, rows)
        }
        _ => {
            let delimiter = if matches!(ext.as_str(), "tsv" | "tab") {
                b'\t'
            } else {
                b','
            };
            let mut reader = csv::ReaderBuilder::new()
                .delimiter(delimiter)
                .flexible(true)
                .from_reader(bytes);
            let header: Vec<String> = reader
                .headers()
                .map_err(|e| format!("no header row ({e})"))?
                .iter()
                .map(|h| h.trim().trim_start_matches('\u{feff}').to_string())
                .collect();
            let mut rows = Vec::new();
            for (i, record) in reader.records().enumerate() {
                let record = record.map_err(|e| format!("row {}: {e}", i + 2))?;
                rows.push(record.iter().map(str::to_string).collect());
            }
            (header, rows)
        }
    };
    let find = |c: &str| header.iter().position(|h| h == c);
    let time_col = TIME_COLUMNS
        .iter()
        .find_map(|c| find(c).map(|i| (i, c.ends_with("_ms"))));
    let label_col = match &wanted.label_column {
        Some(c) => Some(find(c).ok_or_else(|| {
            format!(
                "no label column \"{c}\" (its columns: {})",
                header.join(", ")
            )
        })?),
        None => None,
    };
    let mut target_cols = Vec::new();
    for t in &wanted.targets {
        target_cols.push(find(t).ok_or_else(|| {
            format!(
                "no target column \"{t}\" (its columns: {})",
                header.join(", ")
            )
        })?);
    }
    let channels: Vec<String> = if wanted.channels.is_empty() {
        header
            .iter()
            .enumerate()
            .filter(|(i, h)| {
                Some(*i) != time_col.map(|t| t.0)
                    && Some(*i) != label_col
                    && !target_cols.contains(i)
                    && !["group", "person", "subject", "id"].contains(&h.as_str())
                    && rows
                        .iter()
                        .take(20)
                        .any(|r| r.get(*i).and_then(|c| cell_number(c)).is_some())
            })
            .map(|(_, h)| h.clone())
            .collect()
    } else {
        wanted.channels.clone()
    };
    let mut channel_cols = Vec::new();
    for c in &channels {
        if c == "dt" && find(c).is_none() {
            channel_cols.push(usize::MAX); // filled in from the rate
            continue;
        }
        channel_cols.push(find(c).ok_or_else(|| {
            format!(
                "no column for channel \"{c}\" (its columns: {})",
                header.join(", ")
            )
        })?);
    }
    if channels.is_empty() {
        return Err("no numeric channel columns".into());
    }
    let mut bad_cells = Vec::new();
    let mut bad_count = 0usize;
    let mut number = |row: usize, col: usize, cell: Option<&String>| -> f32 {
        let cell = cell.map(String::as_str).unwrap_or("");
        match cell_number(cell) {
            Some(v) => v,
            None => {
                let t = cell.trim();
                if !t.is_empty() && !t.eq_ignore_ascii_case("nan") {
                    bad_count += 1;
                    if bad_cells.len() < 3 {
                        bad_cells.push(format!("row {row}, column {}: \"{t}\"", header[col]));
                    }
                }
                f32::NAN
            }
        }
    };
    let mut time = time_col.map(|_| Vec::with_capacity(rows.len()));
    let mut values = vec![Vec::with_capacity(rows.len()); channels.len()];
    let mut targets = vec![Vec::with_capacity(rows.len()); target_cols.len()];
    let mut labels = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let row = i + 2; // the header is row 1
        if let (Some(time), Some((col, ms))) = (time.as_mut(), time_col) {
            let t = r
                .get(col)
                .and_then(|c| c.trim().parse::<f64>().ok())
                .filter(|t| t.is_finite());
            match t {
                Some(t) => time.push(if ms { t / 1000.0 } else { t }),
                None => {
                    return Err(format!(
                        "row {row}, column {}: \"{}\" is not a time",
                        header[col],
                        r.get(col).map_or("", |s| s.as_str())
                    ));
                }
            }
        }
        for (k, &col) in channel_cols.iter().enumerate() {
            values[k].push(if col == usize::MAX {
                0.0
            } else {
                number(row, col, r.get(col))
            });
        }
        for (k, &col) in target_cols.iter().enumerate() {
            targets[k].push(number(row, col, r.get(col)));
        }
        if let Some(col) = label_col {
            let l = r.get(col).map(|s| s.trim()).unwrap_or("");
            labels.push((!l.is_empty()).then(|| l.to_string()));
        }
    }
    if bad_count > 0 {
        notices.push((
            name.into(),
            format!(
                "{bad_count} cells are not numbers ({}{}), read as gaps",
                bad_cells.join("; "),
                if bad_count > bad_cells.len() {
                    "; ..."
                } else {
                    ""
                }
            ),
        ));
    }
    Ok(Parsed {
        time,
        values,
        labels,
        targets,
        channels,
    })
}

/// Fill runs of NaN up to `max` samples by linear interpolation (ends: the nearest value).
/// Returns the rows inside longer runs (to cut at).
fn fill_gaps(xs: &mut [f32], max: usize) -> Vec<std::ops::Range<usize>> {
    let n = xs.len();
    let mut long = Vec::new();
    let mut i = 0;
    while i < n {
        if !xs[i].is_nan() {
            i += 1;
            continue;
        }
        let start = i;
        while i < n && xs[i].is_nan() {
            i += 1;
        }
        let len = i - start;
        if len > max {
            long.push(start..i);
            continue;
        }
        let (before, after) = (start.checked_sub(1).map(|j| xs[j]), (i < n).then(|| xs[i]));
        for (j, x) in xs[start..i].iter_mut().enumerate() {
            *x = match (before, after) {
                (Some(a), Some(b)) => a + (b - a) * (j + 1) as f32 / (len + 1) as f32,
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => f32::NAN,
            };
        }
    }
    long
}

/// Linear interpolation of `ys` at `times` onto `at`.
fn interpolate(times: &[f64], ys: &[f32], at: &[f64]) -> Vec<f32> {
    let mut j = 0;
    at.iter()
        .map(|&t| {
            while j + 2 < times.len() && times[j + 1] < t {
                j += 1;
            }
            if times.len() < 2 {
                return ys[0];
            }
            let (t0, t1) = (times[j], times[j + 1]);
            let w = ((t - t0) / (t1 - t0)).clamp(0.0, 1.0) as f32;
            ys[j] + (ys[j + 1] - ys[j]) * w
        })
        .collect()
}

/// Nearest-sample labels at `at`.
fn nearest(times: &[f64], labels: &[Option<u32>], at: &[f64]) -> Vec<Option<u32>> {
    let mut j = 0;
    at.iter()
        .map(|&t| {
            while j + 1 < times.len() && (times[j + 1] - t).abs() <= (times[j] - t).abs() {
                j += 1;
            }
            labels[j]
        })
        .collect()
}

/// A piece of a file between two cuts: channels, labels, targets (one vector per column).
type Part = (Vec<Vec<f32>>, Vec<Option<String>>, Vec<Vec<f32>>);

/// (mean, std) of each of `c` columns over row-major `[rows, c]` blocks (std at least 1e-6).
fn stats<'a>(blocks: impl Iterator<Item = &'a [f32]>, c: usize) -> Vec<(f32, f32)> {
    let (mut sum, mut sq, mut n) = (vec![0.0f64; c], vec![0.0f64; c], 0usize);
    for block in blocks {
        for row in block.chunks(c.max(1)) {
            for (k, v) in row.iter().enumerate() {
                sum[k] += *v as f64;
                sq[k] += (*v as f64).powi(2);
            }
            n += 1;
        }
    }
    (0..c)
        .map(|k| {
            let m = sum[k] / n.max(1) as f64;
            let v = (sq[k] / n.max(1) as f64 - m * m).max(0.0);
            (m as f32, (v.sqrt() as f32).max(1e-6))
        })
        .collect()
}

/// Median of the positive intervals of `times`.
fn median_interval(times: &[f64]) -> Option<f64> {
    let mut d: Vec<f64> = times
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|d| *d > 0.0)
        .collect();
    if d.is_empty() {
        return None;
    }
    d.sort_by(f64::total_cmp);
    Some(d[d.len() / 2])
}

/// `xs` (one channel at `from` Hz) at `to` Hz.
pub fn resample(xs: &[f32], from: f64, to: f64) -> Result<Vec<f32>> {
    if (from - to).abs() < 1e-9 {
        return Ok(xs.to_vec());
    }
    // rubato's FFT resampler takes whole rates: tenths of a Hz.
    let (f, t) = ((from * 10.0).round() as u32, (to * 10.0).round() as u32);
    let g = gcd(f, t);
    super::audio::resample(xs, f / g, t / g)
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl Recordings {
    /// Read `files` (name, group, bytes) for `wanted`. Files that cannot be used are left out
    /// with the reason; an error only when none can.
    pub fn read(files: Vec<(String, String, Vec<u8>)>, wanted: &Wanted) -> Result<Self> {
        let mut set = Self {
            rate_hz: wanted.rate_hz.unwrap_or(0.0),
            channels: wanted.channels.clone(),
            classes: Vec::new(),
            targets: wanted.targets.clone(),
            items: Vec::new(),
            skipped: Vec::new(),
            notices: Vec::new(),
        };
        let mut parts: Vec<(String, String, Part)> = Vec::new();
        for (name, group, bytes) in files {
            match set.read_one(&name, &bytes, wanted) {
                Ok(p) => {
                    for (i, part) in p.into_iter().enumerate() {
                        let name = if i == 0 {
                            name.clone()
                        } else {
                            format!("{name} (part {})", i + 1)
                        };
                        parts.push((name, group.clone(), part));
                    }
                }
                Err(why) => set.skipped.push((name, why)),
            }
        }
        if parts.is_empty() {
            let why = set
                .skipped
                .first()
                .map_or("no files".to_string(), |(n, w)| format!("{n}: {w}"));
            return Err(Error::Data(format!("no recording can be used ({why})")));
        }
        if wanted.label_column.is_some() {
            let names = parts.iter().flat_map(|p| p.2.1.iter().flatten().cloned());
            let mut unique: Vec<String> = names.collect();
            unique.sort();
            unique.dedup();
            set.classes = super::classes::order(unique);
            if set.classes.len() < 2 {
                return Err(Error::Data(format!(
                    "the label column \"{}\" has {} class{} ({:?}): at least 2 are needed",
                    wanted.label_column.as_deref().unwrap_or(""),
                    set.classes.len(),
                    if set.classes.len() == 1 { "" } else { "es" },
                    set.classes
                )));
            }
        }
        for (name, group, (values, labels, targets)) in parts {
            let samples = values.first().map_or(0, Vec::len);
            let mut flat = Vec::with_capacity(samples * values.len());
            for i in 0..samples {
                flat.extend(values.iter().map(|c| c[i]));
            }
            let mut tflat = Vec::with_capacity(samples * targets.len());
            for i in 0..samples {
                tflat.extend(targets.iter().map(|c| c[i]));
            }
            let labels = labels
                .iter()
                .map(|l| {
                    l.as_ref()
                        .and_then(|l| super::classes::index_of(&set.classes, l))
                })
                .collect();
            set.items.push(Recording {
                name,
                group,
                values: flat,
                labels,
                targets: tflat,
            });
        }
        Ok(set)
    }

    /// One file's parts at the set's rate.
    fn read_one(
        &mut self,
        name: &str,
        bytes: &[u8],
        wanted: &Wanted,
    ) -> std::result::Result<Vec<Part>, String> {
        let p = parse(bytes, name, wanted, &mut self.notices)?;
        if self.channels.is_empty() {
            self.channels = p.channels.clone();
        } else if self.channels != p.channels {
            return Err(format!(
                "channels {:?}, the other files have {:?}",
                p.channels, self.channels
            ));
        }
        let n = p.values.first().map_or(0, Vec::len);
        if n < 2 {
            return Err(format!("{n} samples"));
        }
        // Times: from the column, or the declared rate.
        let times: Vec<f64> = match &p.time {
            Some(t) => t.clone(),
            None if wanted.declared_rate_hz > 0.0 => {
                (0..n).map(|i| i as f64 / wanted.declared_rate_hz).collect()
            }
            None => {
                return Err(format!(
                    "no time column ({}) and no series.rate_hz to say its sample rate",
                    TIME_COLUMNS.join(", ")
                ));
            }
        };
        // Cut where time goes backwards or jumps; drop repeated times.
        let mut cuts = vec![0];
        let mut keep = vec![true; n];
        let mut backwards = Vec::new();
        for i in 1..n {
            let d = times[i] - times[i - 1];
            if d < 0.0 {
                backwards.push(i + 2);
                cuts.push(i);
            } else if d == 0.0 {
                keep[i] = false;
            } else if d > wanted.max_gap_s.max(1e-9) && p.time.is_some() {
                cuts.push(i);
            }
        }
        if !backwards.is_empty() {
            self.notices.push((
                name.into(),
                format!(
                    "time goes backwards at row{} {}: the recording is cut there",
                    if backwards.len() > 1 { "s" } else { "" },
                    backwards
                        .iter()
                        .take(5)
                        .map(|r| r.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let dropped = keep.iter().filter(|k| !**k).count();
        if dropped > 0 {
            self.notices.push((
                name.into(),
                format!("{dropped} rows repeat the time before them: dropped"),
            ));
        }
        cuts.push(n);
        let mut out = Vec::new();
        let mut rate_note = None;
        for w in cuts.windows(2) {
            let rows: Vec<usize> = (w[0]..w[1]).filter(|&i| keep[i]).collect();
            if rows.len() < 2 {
                continue;
            }
            let t: Vec<f64> = rows.iter().map(|&i| times[i]).collect();
            let step = median_interval(&t).ok_or("no two distinct times")?;
            let rate = 1.0 / step;
            if p.time.is_some() && wanted.declared_rate_hz > 0.0 {
                let r = wanted.declared_rate_hz;
                if (rate - r).abs() / r > 0.05 {
                    return Err(format!(
                        "its timestamps give {rate:.2} Hz, series.rate_hz says {r} Hz"
                    ));
                }
            }
            let target = if self.rate_hz > 0.0 {
                self.rate_hz
            } else {
                self.rate_hz = (rate * 10.0).round() / 10.0;
                self.rate_hz
            };
            let mut values: Vec<Vec<f32>> = p
                .values
                .iter()
                .map(|c| rows.iter().map(|&i| c[i]).collect())
                .collect();
            let mut targets: Vec<Vec<f32>> = p
                .targets
                .iter()
                .map(|c| rows.iter().map(|&i| c[i]).collect())
                .collect();
            let labels_in: Vec<Option<String>> = if p.labels.is_empty() {
                Vec::new()
            } else {
                rows.iter().map(|&i| p.labels[i].clone()).collect()
            };
            // Gaps: short ones filled, long ones cut (here: the part ends before the first).
            let max = (wanted.max_gap_s * rate).round() as usize;
            let mut long: Vec<std::ops::Range<usize>> = Vec::new();
            let mut filled = 0;
            for c in values.iter_mut().chain(targets.iter_mut()) {
                filled += c.iter().filter(|v| v.is_nan()).count();
                long.extend(fill_gaps(c, max));
            }
            long.sort_by_key(|r| r.start);
            if filled > 0 {
                self.notices.push((
                    name.into(),
                    format!(
                        "{filled} missing values{}",
                        if long.is_empty() {
                            " filled by interpolation".to_string()
                        } else {
                            format!(
                                "; gaps over {} s cut the recording ({} of them)",
                                wanted.max_gap_s,
                                long.len()
                            )
                        }
                    ),
                ));
            }
            // Pieces between long gaps.
            let mut bounds = Vec::new();
            let mut from = 0;
            for g in &long {
                if g.start > from {
                    bounds.push(from..g.start);
                }
                from = from.max(g.end);
            }
            if from < rows.len() {
                bounds.push(from..rows.len());
            }
            for piece in bounds {
                if piece.len() < 2 {
                    continue;
                }
                let pt: Vec<f64> = t[piece.clone()].to_vec();
                let t0 = pt[0];
                // An even grid at the file's own rate when the timestamps jitter.
                let uneven = pt
                    .windows(2)
                    .any(|w| ((w[1] - w[0]) - step).abs() > 0.2 * step);
                let grid: Vec<f64> = if uneven {
                    let count = ((pt[pt.len() - 1] - t0) / step).floor() as usize + 1;
                    (0..count).map(|i| t0 + i as f64 * step).collect()
                } else {
                    pt.clone()
                };
                // A column's piece, on the grid.
                let on_grid = |c: &Vec<f32>| -> Vec<f32> {
                    let c = &c[piece.clone()];
                    if uneven {
                        interpolate(&pt, c, &grid)
                    } else {
                        c.to_vec()
                    }
                };
                let mut vs: Vec<Vec<f32>> = values.iter().map(on_grid).collect();
                let mut ts: Vec<Vec<f32>> = targets.iter().map(on_grid).collect();
                let label_idx: Vec<Option<u32>> =
                    (0..piece.len()).map(|i| Some(i as u32)).collect();
                let mut ls: Vec<Option<String>> = if labels_in.is_empty() {
                    Vec::new()
                } else if uneven {
                    nearest(&pt, &label_idx, &grid)
                        .into_iter()
                        .map(|i| labels_in[piece.start + i.unwrap() as usize].clone())
                        .collect()
                } else {
                    labels_in[piece.clone()].to_vec()
                };
                // The set's rate.
                let own = if uneven { 1.0 / step } else { rate };
                if (own - target).abs() / target > 0.01 {
                    rate_note = Some(format!("{own:.1} Hz, resampled to {target} Hz"));
                    let len = grid.len();
                    let out_len = ((len as f64) * target / own).floor() as usize;
                    let at: Vec<f64> = (0..out_len).map(|i| grid[0] + i as f64 / target).collect();
                    for c in vs.iter_mut() {
                        let mut r = resample(c, own, target).map_err(|e| e.to_string())?;
                        r.truncate(out_len);
                        *c = r;
                    }
                    for c in ts.iter_mut() {
                        *c = interpolate(&grid, c, &at);
                    }
                    if !ls.is_empty() {
                        let at_idx: Vec<Option<u32>> = (0..len).map(|i| Some(i as u32)).collect();
                        ls = nearest(&grid, &at_idx, &at)
                            .into_iter()
                            .map(|i| ls[i.unwrap() as usize].clone())
                            .collect();
                    }
                }
                // dt: the time between two samples.
                if let Some(k) = p.channels.iter().position(|c| c == "dt") {
                    let len = vs[k].len();
                    vs[k] = vec![(1.0 / target) as f32; len];
                }
                out.push((vs, ls, ts));
            }
        }
        if let Some(note) = rate_note {
            self.notices.push((name.into(), note));
        }
        if out.is_empty() {
            return Err("nothing left after the cuts (gaps and times)".into());
        }
        Ok(out)
    }

    /// Total samples.
    pub fn samples(&self) -> usize {
        let c = self.channels.len();
        self.items.iter().map(|r| r.len(c)).sum()
    }

    /// Per-channel (mean, std) over the recordings `rows` (std at least 1e-6).
    pub fn channel_stats(&self, rows: &[usize]) -> Vec<(f32, f32)> {
        stats(
            rows.iter().map(|&r| &self.items[r].values[..]),
            self.channels.len(),
        )
    }

    /// Per-target (mean, std) over the recordings `rows`.
    pub fn target_stats(&self, rows: &[usize]) -> Vec<(f32, f32)> {
        stats(
            rows.iter().map(|&r| &self.items[r].targets[..]),
            self.targets.len(),
        )
    }

    /// The groups (persons, devices), sorted.
    pub fn groups(&self) -> Vec<String> {
        let mut g: Vec<String> = self.items.iter().map(|r| r.group.clone()).collect();
        g.sort();
        g.dedup();
        g
    }
}

/// Windows over recordings: (recording, first sample) rows with a label (classifiers).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSet {
    /// Samples per window.
    pub window: usize,
    /// (recording, start) of each window.
    pub rows: Vec<(usize, usize)>,
    /// Class of each window (classifiers; empty for regressions).
    pub labels: Vec<u32>,
    /// Recordings too short for one window: (name, why).
    pub skipped: Vec<(String, String)>,
}

impl SeriesSet {
    /// Cut every recording into windows of `window` samples every `stride`; a classifier's
    /// windows get a label by `rule` (windows it gives none are left out).
    pub fn cut(data: &Recordings, window: usize, stride: usize, rule: Option<LabelRule>) -> Self {
        let c = data.channels.len();
        let mut set = Self {
            window,
            rows: Vec::new(),
            labels: Vec::new(),
            skipped: Vec::new(),
        };
        let stride = stride.max(1);
        for (r, rec) in data.items.iter().enumerate() {
            let n = rec.len(c);
            if n < window {
                set.skipped.push((
                    rec.name.clone(),
                    format!(
                        "{n} samples ({:.2} s), shorter than one window of {window} ({:.2} s)",
                        n as f64 / data.rate_hz,
                        window as f64 / data.rate_hz
                    ),
                ));
                continue;
            }
            let mut start = 0;
            while start + window <= n {
                match rule {
                    None => set.rows.push((r, start)),
                    Some(rule) => {
                        if let Some(l) = window_label(&rec.labels[start..start + window], rule) {
                            set.rows.push((r, start));
                            set.labels.push(l);
                        }
                    }
                }
                start += stride;
            }
        }
        set
    }

    /// Windows whose recording is one of `recordings`.
    pub fn rows_of(&self, recordings: &[usize]) -> Vec<usize> {
        let keep: std::collections::HashSet<usize> = recordings.iter().copied().collect();
        (0..self.rows.len())
            .filter(|&i| keep.contains(&self.rows[i].0))
            .collect()
    }
}

/// A window's label by `rule`.
pub fn window_label(labels: &[Option<u32>], rule: LabelRule) -> Option<u32> {
    match rule {
        LabelRule::Center => labels.get(labels.len() / 2).copied().flatten(),
        LabelRule::All => {
            let first = labels.first().copied().flatten()?;
            labels.iter().all(|l| *l == Some(first)).then_some(first)
        }
        LabelRule::Majority => {
            let mut counts: std::collections::BTreeMap<u32, usize> = Default::default();
            for l in labels.iter().flatten() {
                *counts.entry(*l).or_default() += 1;
            }
            let labelled: usize = counts.values().sum();
            if labelled * 2 < labels.len() {
                return None;
            }
            counts
                .into_iter()
                .max_by_key(|(l, n)| (*n, std::cmp::Reverse(*l)))
                .map(|(l, _)| l)
        }
    }
}

/// Hold out about `fraction` of the groups (seeded): (train groups, validation groups).
pub fn split_groups(groups: &[String], fraction: f64, seed: u64) -> (Vec<String>, Vec<String>) {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let mut g = groups.to_vec();
    g.sort();
    g.dedup();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    g.shuffle(&mut rng);
    let n_val = if g.len() < 2 || fraction <= 0.0 {
        0
    } else {
        ((g.len() as f64 * fraction).round() as usize).clamp(1, g.len() - 1)
    };
    let val = g[..n_val].to_vec();
    let mut train = g[n_val..].to_vec();
    train.sort();
    let mut val = val;
    val.sort();
    (train, val)
}

/// Files of a series dataset at `root`: a file, or a folder (searched two levels deep) of
/// .csv/.tsv/.jsonl files; each with its group (its folder under `root`, else the file).
#[cfg(not(target_arch = "wasm32"))]
pub fn list(root: &std::path::Path) -> Result<Vec<(String, String, Vec<u8>)>> {
    let is_table = |p: &std::path::Path| {
        p.extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .is_some_and(|e| ["csv", "tsv", "tab", "jsonl", "ndjson"].contains(&e.as_str()))
    };
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| Error::Data(format!("{}: cannot read: {e}", p.display())))
    };
    if root.is_file() {
        let name = root
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        return Ok(vec![(name.clone(), name, read(root)?)]);
    }
    let mut out = Vec::new();
    let entries = |dir: &std::path::Path| -> Result<Vec<std::path::PathBuf>> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| Error::Data(format!("{}: cannot list: {e}", dir.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        v.sort();
        Ok(v)
    };
    for p in entries(root)? {
        let rel = |q: &std::path::Path| {
            q.strip_prefix(root)
                .unwrap_or(q)
                .to_string_lossy()
                .to_string()
        };
        if p.is_dir() {
            let group = rel(&p);
            for q in entries(&p)? {
                if q.is_file() && is_table(&q) {
                    out.push((rel(&q), group.clone(), read(&q)?));
                }
            }
        } else if is_table(&p) {
            out.push((rel(&p), rel(&p), read(&p)?));
        }
    }
    if out.is_empty() {
        return Err(Error::Data(format!(
            "{}: no .csv, .tsv or .jsonl recordings in it or its subfolders",
            root.display()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(channels: &[&str]) -> Wanted {
        Wanted {
            channels: channels.iter().map(|s| s.to_string()).collect(),
            label_column: Some("label".into()),
            targets: Vec::new(),
            rate_hz: Some(10.0),
            declared_rate_hz: 0.0,
            max_gap_s: 0.5,
        }
    }

    fn csv_rows(n: usize, rate: f64, label: &str) -> String {
        let mut s = String::from("time,x,y,label\n");
        for i in 0..n {
            s += &format!("{},{},{},{label}\n", i as f64 / rate, i, 2 * i);
        }
        s
    }

    #[test]
    fn every_bad_input_is_named_and_the_rest_used() {
        let mut bad_cells = String::from("time,x,y,label\n");
        for i in 0..40 {
            let x = match i {
                7 => "abc".to_string(),
                8 => "NaN".to_string(),
                _ => i.to_string(),
            };
            bad_cells += &format!("{},{x},{},b\n", i as f64 / 10.0, i);
        }
        let mut backwards = csv_rows(30, 10.0, "a");
        backwards += "1.0,1,1,a\n1.1,1,1,a\n"; // time goes back from 2.9 s to 1.0 s
        let files = vec![
            (
                "good.csv".to_string(),
                "p1".to_string(),
                csv_rows(50, 10.0, "a").into_bytes(),
            ),
            (
                "nochannel.csv".into(),
                "p1".into(),
                b"time,x,label\n0,1,a\n0.1,2,a\n".to_vec(),
            ),
            ("cells.csv".into(), "p2".into(), bad_cells.into_bytes()),
            ("back.csv".into(), "p2".into(), backwards.into_bytes()),
            (
                "fast.csv".into(),
                "p3".into(),
                csv_rows(200, 50.0, "b").into_bytes(),
            ),
        ];
        let set = Recordings::read(files, &wanted(&["x", "y"])).unwrap();
        assert_eq!(set.classes, ["a", "b"]);
        let skipped: Vec<String> = set
            .skipped
            .iter()
            .map(|(n, w)| format!("{n}: {w}"))
            .collect();
        assert!(
            skipped[0].contains("nochannel.csv") && skipped[0].contains("\"y\""),
            "{skipped:?}"
        );
        let notes: Vec<String> = set
            .notices
            .iter()
            .map(|(n, w)| format!("{n}: {w}"))
            .collect();
        let all = notes.join("\n");
        assert!(
            all.contains("cells.csv: 1 cells are not numbers (row 9, column x: \"abc\")"),
            "{all}"
        );
        assert!(all.contains("cells.csv: 2 missing values filled"), "{all}");
        assert!(
            all.contains("back.csv: time goes backwards at row 32"),
            "{all}"
        );
        assert!(
            all.contains("fast.csv: 50.0 Hz, resampled to 10 Hz"),
            "{all}"
        );
        // The filled gap is the line between its neighbours.
        let cells = set.items.iter().find(|r| r.name == "cells.csv").unwrap();
        assert!(
            (cells.values[7 * 2] - 7.0).abs() < 1e-5 && (cells.values[8 * 2] - 8.0).abs() < 1e-5
        );
        // back.csv is two parts; fast.csv is 4 s at 10 Hz.
        assert!(set.items.iter().any(|r| r.name == "back.csv (part 2)"));
        let fast = set.items.iter().find(|r| r.name == "fast.csv").unwrap();
        assert_eq!(fast.len(2), 40);
        // A window longer than a part leaves it out, named.
        let windows = SeriesSet::cut(&set, 25, 5, Some(LabelRule::Majority));
        assert!(
            windows
                .skipped
                .iter()
                .any(|(n, w)| n == "back.csv (part 2)" && w.contains("shorter than one window"))
        );
        assert!(!windows.rows.is_empty());
    }

    #[test]
    fn a_rate_that_contradicts_the_recipe_leaves_the_file_out() {
        let mut w = wanted(&["x"]);
        w.declared_rate_hz = 20.0;
        let files = vec![
            (
                "a.csv".to_string(),
                "g".to_string(),
                csv_rows(50, 20.0, "a").into_bytes(),
            ),
            (
                "b.csv".into(),
                "g".into(),
                csv_rows(50, 20.0, "b").into_bytes(),
            ),
            (
                "c.csv".into(),
                "g".into(),
                csv_rows(50, 100.0, "b").into_bytes(),
            ),
        ];
        let set = Recordings::read(files, &w).unwrap();
        assert_eq!(set.skipped.len(), 1);
        assert!(
            set.skipped[0]
                .1
                .contains("100.00 Hz, series.rate_hz says 20 Hz"),
            "{:?}",
            set.skipped
        );
    }

    #[test]
    fn labels_by_rule_and_groups_split_whole() {
        let l = |v: &[Option<u32>]| v.to_vec();
        let w = l(&[Some(0), Some(0), Some(1), None, Some(1), Some(1)]);
        assert_eq!(window_label(&w, LabelRule::Majority), Some(1));
        assert_eq!(window_label(&w, LabelRule::Center), None);
        assert_eq!(window_label(&w, LabelRule::All), None);
        assert_eq!(
            window_label(&l(&[None, None, Some(1)]), LabelRule::Majority),
            None
        );
        let groups: Vec<String> = (1..=30).map(|i| format!("user{i:02}")).collect();
        let (train, val) = split_groups(&groups, 0.2, 42);
        assert_eq!((train.len(), val.len()), (24, 6));
        assert!(val.iter().all(|g| !train.contains(g)));
        assert_eq!(split_groups(&groups, 0.2, 42), (train, val));
    }
}
