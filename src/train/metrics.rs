//! Classification metrics from predictions: accuracy, per-class precision/recall/F1, and the
//! confusion matrix.

use serde::{Deserialize, Serialize};

/// Precision, recall and F1 of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// Class name.
    pub name: String,
    /// Of the rows predicted as this class, the fraction that are (0 when none was predicted).
    pub precision: f64,
    /// Of the rows of this class, the fraction predicted as it (0 without rows).
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 when both are 0).
    pub f1: f64,
    /// Rows of this class.
    pub support: usize,
}

/// Metrics of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Rows evaluated.
    pub count: usize,
    /// Fraction predicted right.
    pub accuracy: f64,
    /// Unweighted mean of the per-class F1 scores.
    pub macro_f1: f64,
    /// One entry per class, in label order.
    pub per_class: Vec<ClassMetrics>,
    /// `confusion[truth][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
}

impl Metrics {
    /// Metrics of `predicted` against `truth` (labels index `classes`).
    pub fn new(classes: &[String], truth: &[u32], predicted: &[u32]) -> Self {
        assert_eq!(truth.len(), predicted.len(), "one prediction per row");
        let n = classes.len();
        let mut confusion = vec![vec![0usize; n]; n];
        for (&t, &p) in truth.iter().zip(predicted) {
            confusion[t as usize][p as usize] += 1;
        }
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let per_class: Vec<ClassMetrics> = (0..n)
            .map(|c| {
                let hit = confusion[c][c];
                let support: usize = confusion[c].iter().sum();
                let predicted: usize = confusion.iter().map(|row| row[c]).sum();
                let (precision, recall) = (ratio(hit, predicted), ratio(hit, support));
                let f1 = if precision + recall == 0.0 {
                    0.0
                } else {
                    2.0 * precision * recall / (precision + recall)
                };
                ClassMetrics {
                    name: classes[c].clone(),
                    precision,
                    recall,
                    f1,
                    support,
                }
            })
            .collect();
        let correct = (0..n).map(|c| confusion[c][c]).sum();
        Self {
            count: truth.len(),
            accuracy: ratio(correct, truth.len()),
            macro_f1: per_class.iter().map(|c| c.f1).sum::<f64>() / n.max(1) as f64,
            per_class,
            confusion,
        }
    }

    /// A plain-text report: per-class table, then the confusion matrix.
    pub fn table(&self) -> String {
        let width = self
            .per_class
            .iter()
            .map(|c| c.name.chars().count())
            .max()
            .unwrap_or(5)
            .max(5);
        let mut out = format!(
            "accuracy {:.2}% ({} rows), macro F1 {:.4}\n{:width$}  precision  recall      f1  support\n",
            self.accuracy * 100.0,
            self.count,
            self.macro_f1,
            "class"
        );
        for c in &self.per_class {
            out += &format!(
                "{:width$}  {:9.4}  {:6.4}  {:6.4}  {:7}\n",
                c.name, c.precision, c.recall, c.f1, c.support
            );
        }
        out += &format!("confusion (rows: truth, columns: predicted)\n{:width$}", "");
        for c in 0..self.per_class.len() {
            out += &format!(" {c:>5}");
        }
        out.push('\n');
        for (c, row) in self.confusion.iter().enumerate() {
            out += &format!("{:width$}", format!("{c} {}", self.per_class[c].name));
            for v in row {
                out += &format!(" {v:>5}");
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_recall_f1_and_confusion() {
        let classes = ["a".to_string(), "b".to_string(), "c".to_string()];
        // truth a a a b b c ; predicted a a b b c c
        let m = Metrics::new(&classes, &[0, 0, 0, 1, 1, 2], &[0, 0, 1, 1, 2, 2]);
        assert_eq!(
            m.confusion,
            vec![vec![2, 1, 0], vec![0, 1, 1], vec![0, 0, 1]]
        );
        assert!((m.accuracy - 4.0 / 6.0).abs() < 1e-12);
        let a = &m.per_class[0];
        assert_eq!((a.precision, a.support), (1.0, 3));
        assert!((a.recall - 2.0 / 3.0).abs() < 1e-12);
        assert!((a.f1 - 0.8).abs() < 1e-12);
        let b = &m.per_class[1];
        assert_eq!((b.precision, b.recall, b.f1), (0.5, 0.5, 0.5));
        let c = &m.per_class[2];
        assert_eq!((c.precision, c.recall), (0.5, 1.0));
        assert!(m.table().contains("confusion"));
    }

    #[test]
    fn a_class_never_predicted_has_zero_precision_not_nan() {
        let classes = ["a".to_string(), "b".to_string()];
        let m = Metrics::new(&classes, &[0, 1], &[0, 0]);
        assert_eq!(m.per_class[1].precision, 0.0);
        assert_eq!(m.per_class[1].f1, 0.0);
        assert!(m.macro_f1.is_finite());
    }
}
