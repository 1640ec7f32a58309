//! What a dataset holds, in words a person acts on before training: classes and counts,
//! tiny or unbalanced classes, rows left out; for tables the columns in use and a preview.

use serde::Serialize;

use super::TextSet;

/// Fewer examples than this in a class draws a warning.
pub const TINY_CLASS: usize = 10;
/// The largest class this many times the smallest draws a warning.
pub const UNBALANCED: usize = 3;

/// One row of a table's preview.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreviewRow {
    /// The text.
    pub text: String,
    /// Its label.
    pub label: String,
}

/// Classes, counts and warnings of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// "image" or "text".
    pub kind: String,
    /// Class names in label order.
    pub classes: Vec<String>,
    /// Examples per class.
    pub counts: Vec<usize>,
    /// Examples in all.
    pub total: usize,
    /// Tiny or unbalanced classes, rows left out.
    pub warnings: Vec<String>,
    /// Tables: the header (or the first JSON object's keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// Tables: the column of the text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_column: Option<String>,
    /// Tables: the column of the label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_column: Option<String>,
    /// Tables: the first rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<Vec<PreviewRow>>,
    /// Rows left out, as (file:line, reason).
    pub skipped: Vec<(String, String)>,
}

impl Summary {
    /// As text: "25 images in 3 classes from DIR", a line per class, then what was left out.
    pub fn describe(&self, from: &str) -> String {
        let unit = match self.kind.as_str() {
            "text" => "texts",
            "audio" => "audio files",
            "series" => "seconds of recordings",
            "transcription" => "transcribed clips",
            _ => "images",
        };
        let (total, classes) = (self.total, self.classes.len());
        let mut out = match (self.kind.as_str(), classes, &self.columns) {
            ("series", 0, Some(columns)) => {
                format!("{total} {unit} ({}) from {from}\n", columns.join(", "))
            }
            ("transcription", ..) => format!("{total} {unit} from {from}\n"),
            _ => format!("{total} {unit} in {classes} classes from {from}\n"),
        };
        for (class, count) in self.classes.iter().zip(&self.counts) {
            out += &format!("  {class}: {count}\n");
        }
        for warning in self
            .warnings
            .iter()
            .filter(|_| self.kind == "series" || self.kind == "transcription")
        {
            out += &format!("  note: {warning}\n");
        }
        for (at, why) in &self.skipped {
            out += &format!("  skipped {at}: {why}\n");
        }
        out
    }

    /// An image dataset of `classes` whose items have `labels`.
    pub fn images(classes: &[String], labels: &[u32]) -> Self {
        Self::files("image", "images", classes, labels)
    }

    /// An audio dataset of files with `labels`.
    pub fn audio(classes: &[String], labels: &[u32]) -> Self {
        Self::files("audio", "audio files", classes, labels)
    }

    fn files(kind: &str, unit: &str, classes: &[String], labels: &[u32]) -> Self {
        let counts = counts(classes.len(), labels);
        Self {
            kind: kind.into(),
            warnings: warnings(classes, &counts, unit),
            classes: classes.to_vec(),
            total: labels.len(),
            counts,
            columns: None,
            text_column: None,
            label_column: None,
            preview: None,
            skipped: Vec::new(),
        }
    }

    /// Numeric recordings: counts are labelled seconds per class (`labels`: one per labelled
    /// second); what was repaired (gaps, cuts, resampling) is in the warnings, files left out
    /// in `skipped`.
    pub fn series(data: &super::Recordings, labels: &[u32]) -> Self {
        let mut summary = Self::files("series", "seconds", &data.classes, labels);
        if data.classes.is_empty() {
            // Targets, not classes: no class warnings.
            summary.warnings.clear();
        }
        summary.total = (data.samples() as f64 / data.rate_hz.max(1e-9)).round() as usize;
        summary.columns = Some(data.channels.iter().chain(&data.targets).cloned().collect());
        summary.warnings.extend(
            data.notices
                .iter()
                .take(20)
                .map(|(file, what)| format!("{file}: {what}")),
        );
        summary.skipped = data.skipped.clone();
        summary
    }

    /// Transcribed clips: how many, how long, the first `preview` transcripts (with their
    /// files), and the rows left out.
    pub fn transcripts(set: &super::transcripts::Transcripts, preview: usize) -> Self {
        let mut warnings = Vec::new();
        warnings.push(format!("{:.0} s of audio", set.seconds()));
        if let Some(val) = &set.val {
            warnings.push(format!("{} clips are the given validation set", val.len()));
        }
        Self {
            kind: "transcription".into(),
            classes: Vec::new(),
            counts: Vec::new(),
            total: set.clips.len(),
            warnings,
            columns: None,
            text_column: None,
            label_column: None,
            preview: Some(
                set.clips
                    .iter()
                    .take(preview)
                    .map(|c| PreviewRow {
                        text: c.text.clone(),
                        label: c.name.clone(),
                    })
                    .collect(),
            ),
            skipped: set.skipped.clone(),
        }
    }

    /// A parsed table; `preview` rows of it are shown.
    pub fn text(set: &TextSet, preview: usize) -> Self {
        let counts = counts(set.classes.len(), &set.labels);
        let mut warnings = warnings(&set.classes, &counts, "texts");
        if let Some((at, why)) = set.skipped.first() {
            warnings.push(format!(
                "{} row(s) left out; the first: {at}: {why}",
                set.skipped.len()
            ));
        }
        Self {
            kind: "text".into(),
            classes: set.classes.clone(),
            total: set.len(),
            counts,
            warnings,
            columns: Some(set.header.clone()),
            text_column: Some(set.text_column.clone()),
            label_column: Some(set.label_column.clone()),
            preview: Some(
                (0..set.len().min(preview))
                    .map(|i| PreviewRow {
                        text: set.texts[i].clone(),
                        label: set.classes[set.labels[i] as usize].clone(),
                    })
                    .collect(),
            ),
            skipped: set.skipped.clone(),
        }
    }
}

/// Examples per class of `labels` over `classes` classes.
pub(crate) fn counts(classes: usize, labels: &[u32]) -> Vec<usize> {
    let mut counts = vec![0; classes];
    for &l in labels {
        if let Some(c) = counts.get_mut(l as usize) {
            *c += 1;
        }
    }
    counts
}

/// Warnings about classes too small to learn or validate, and about imbalance.
pub fn warnings(classes: &[String], counts: &[usize], unit: &str) -> Vec<String> {
    let mut out = Vec::new();
    if classes.len() < 2 {
        out.push(format!(
            "{} class(es): a classifier needs at least 2",
            classes.len()
        ));
    }
    let tiny: Vec<String> = classes
        .iter()
        .zip(counts)
        .filter(|(_, n)| **n < TINY_CLASS)
        .map(|(c, n)| format!("\"{c}\" ({n})"))
        .collect();
    if !tiny.is_empty() {
        out.push(format!(
            "tiny class(es): {}; with under {TINY_CLASS} {unit} a class is hard to learn and its \
             validation accuracy rests on one or two {unit}",
            tiny.join(", ")
        ));
    }
    let largest = counts.iter().enumerate().max_by_key(|(_, n)| **n);
    let smallest = counts.iter().enumerate().min_by_key(|(_, n)| **n);
    if let (Some((a, &max)), Some((b, &min))) = (largest, smallest)
        && min > 0
        && max >= UNBALANCED * min
    {
        out.push(format!(
            "unbalanced classes: \"{}\" has {max} {unit}, \"{}\" {min} ({:.1}x); the model \
                 will favour the larger classes: add {unit} to the small ones or cap the large \
                 ones (per class)",
            classes[a],
            classes[b],
            max as f64 / min as f64
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_and_unbalanced_classes_are_named() {
        let classes = ["cat".to_string(), "dog".into(), "fox".into()];
        let labels: Vec<u32> = [vec![0; 30], vec![1; 12], vec![2; 4]].concat();
        let s = Summary::images(&classes, &labels);
        assert_eq!(s.counts, [30, 12, 4]);
        assert_eq!(s.total, 46);
        assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
        assert!(s.warnings[0].contains("\"fox\" (4)"), "{}", s.warnings[0]);
        assert!(s.warnings[1].contains("\"cat\" has 30") && s.warnings[1].contains("\"fox\" 4"));
        let even: Vec<u32> = [vec![0; 20], vec![1; 20], vec![2; 20]].concat();
        assert!(Summary::images(&classes, &even).warnings.is_empty());
    }
}
