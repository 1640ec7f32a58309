//! Scoring transcripts: Whisper's basic text normaliser, word and character error rates (per
//! example and over a set, as `jiwer` computes them: edit distance over the reference's
//! length), and the examples that went worst.

use serde::{Deserialize, Serialize};

/// Whisper's `BasicTextNormalizer` for English: lower case; text in brackets `[...]` or
/// parentheses `(...)` removed; every character that is not a letter, a digit or an
/// apostrophe inside a word becomes a space; runs of spaces become one. (The English
/// normaliser's spelled-number and British-spelling rules are not applied.)
pub fn normalise(text: &str) -> String {
    let mut kept = String::with_capacity(text.len());
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '[' | '(' => depth += 1,
            ']' | ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => kept.extend(c.to_lowercase()),
            _ => {}
        }
    }
    let chars: Vec<char> = kept.chars().collect();
    let mut out = String::with_capacity(kept.len());
    for (i, &c) in chars.iter().enumerate() {
        let inside_word = |j: Option<usize>| {
            j.and_then(|j| chars.get(j))
                .is_some_and(|c| c.is_alphanumeric())
        };
        let keep = c.is_alphanumeric()
            || (matches!(c, '\'' | '’')
                && inside_word(i.checked_sub(1))
                && inside_word(Some(i + 1)));
        out.push(if keep {
            if c == '’' { '\'' } else { c }
        } else {
            ' '
        });
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Levenshtein distance between two sequences (substitutions, insertions, deletions all 1).
pub fn edit_distance<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut row = vec![0usize; b.len() + 1];
    for (i, x) in a.iter().enumerate() {
        row[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(x != y);
            row[j + 1] = sub.min(prev[j + 1] + 1).min(row[j] + 1);
        }
        std::mem::swap(&mut prev, &mut row);
    }
    prev[b.len()]
}

/// One transcribed example, scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    /// The clip.
    pub name: String,
    /// The transcript it should have.
    pub reference: String,
    /// The model's.
    pub hypothesis: String,
    /// Word error rate of this example (edits / reference words, normalised texts).
    pub wer: f64,
    /// Character error rate.
    pub cer: f64,
}

/// Error rates over a set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorRates {
    /// Word edits over all examples / reference words over all examples.
    pub wer: f64,
    /// Character edits / reference characters (spaces included).
    pub cer: f64,
    /// Examples scored.
    pub count: usize,
    /// Every example, in the set's order.
    pub examples: Vec<Scored>,
}

impl ErrorRates {
    /// Score `(name, reference, hypothesis)` triples.
    pub fn of(examples: impl IntoIterator<Item = (String, String, String)>) -> Self {
        let (mut word_edits, mut words, mut char_edits, mut chars) = (0, 0, 0, 0);
        let mut scored = Vec::new();
        for (name, reference, hypothesis) in examples {
            let (r, h) = (normalise(&reference), normalise(&hypothesis));
            let (rw, hw): (Vec<&str>, Vec<&str>) = (
                r.split(' ').filter(|w| !w.is_empty()).collect(),
                h.split(' ').filter(|w| !w.is_empty()).collect(),
            );
            let (rc, hc): (Vec<char>, Vec<char>) = (r.chars().collect(), h.chars().collect());
            let (we, ce) = (edit_distance(&rw, &hw), edit_distance(&rc, &hc));
            word_edits += we;
            words += rw.len();
            char_edits += ce;
            chars += rc.len();
            scored.push(Scored {
                name,
                reference,
                hypothesis,
                wer: we as f64 / rw.len().max(1) as f64,
                cer: ce as f64 / rc.len().max(1) as f64,
            });
        }
        Self {
            wer: word_edits as f64 / words.max(1) as f64,
            cer: char_edits as f64 / chars.max(1) as f64,
            count: scored.len(),
            examples: scored,
        }
    }

    /// The `n` worst examples as text: error rates, what was said and what was heard.
    pub fn table(&self, n: usize) -> String {
        let mut out = String::new();
        for e in self.worst(n) {
            out += &format!(
                "  {} (WER {:.0}%, CER {:.0}%)\n    said:  {}\n    heard: {}\n",
                e.name,
                e.wer * 100.0,
                e.cer * 100.0,
                e.reference.trim(),
                e.hypothesis.trim()
            );
        }
        out
    }

    /// The `n` examples with the highest word error rate (ties: the higher character error
    /// rate), worst first; perfect ones left out.
    pub fn worst(&self, n: usize) -> Vec<&Scored> {
        let mut all: Vec<&Scored> = self
            .examples
            .iter()
            .filter(|e| e.wer > 0.0 || e.cer > 0.0)
            .collect();
        all.sort_by(|a, b| b.wer.total_cmp(&a.wer).then(b.cer.total_cmp(&a.cer)));
        all.truncate(n);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_normaliser_drops_case_punctuation_and_brackets() {
        assert_eq!(
            normalise(" The patient was given penicillin."),
            "the patient was given penicillin"
        );
        assert_eq!(
            normalise("Don't stop [MUSIC] (laughs) now!"),
            "don't stop now"
        );
        assert_eq!(
            normalise("‘Quoted’ — words, e.g. x-ray"),
            "quoted words e g x ray"
        );
        assert_eq!(normalise("  "), "");
    }

    #[test]
    fn error_rates_count_edits_over_the_reference() {
        assert_eq!(edit_distance(&["a", "b", "c"], &["a", "x", "c", "d"]), 2);
        assert_eq!(edit_distance::<char>(&[], &['a']), 1);
        let r = ErrorRates::of([
            (
                "1".into(),
                "The patient was given amoxicillin.".into(),
                " The patient was given a message in the end.".into(),
            ),
            ("2".into(), "Good morning.".into(), " Good morning.".into()),
        ]);
        // "amoxicillin" -> "a message in the end": 1 substitution + 4 insertions over 5 + 2 words.
        assert!(
            (r.examples[0].wer - 1.0).abs() < 1e-12,
            "{:?}",
            r.examples[0]
        );
        assert_eq!(r.examples[1].wer, 0.0);
        assert!((r.wer - 5.0 / 7.0).abs() < 1e-12);
        assert_eq!(r.worst(5).len(), 1);
        assert_eq!(r.worst(5)[0].name, "1");
        assert!(r.cer > 0.0 && r.examples[1].cer == 0.0);
    }
}
