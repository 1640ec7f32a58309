//! The recipe: every choice a training run makes, as one serde struct with documented defaults.
//! The CLI's flags, the page's form and the tests all build one of these.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A whole training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Recipe {
    /// Phase 1: the new head alone, on fixed (cached) features.
    pub head: HeadPhase,
    /// Fraction of each class held out for validation.
    pub val_fraction: f64,
    /// Seed for the split, shuffling and initialisation.
    pub seed: u64,
}

impl Default for Recipe {
    fn default() -> Self {
        Self {
            head: HeadPhase::default(),
            val_fraction: 0.2,
            seed: 42,
        }
    }
}

/// Head-only training with AdamW.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeadPhase {
    /// Passes over the training rows.
    pub epochs: usize,
    /// Rows per step.
    pub batch_size: usize,
    /// AdamW learning rate.
    pub lr: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f32,
}

impl Default for HeadPhase {
    fn default() -> Self {
        // The established head-only recipe: AdamW 1e-3, weight decay 0.01, batch 32, 10 epochs.
        Self {
            epochs: 10,
            batch_size: 32,
            lr: 1e-3,
            weight_decay: 0.01,
        }
    }
}

impl Recipe {
    /// Parse JSON, naming the field at fault.
    pub fn from_json(text: &str) -> Result<Self> {
        let recipe: Self = serde_json::from_str(text).map_err(|err| Error::Recipe {
            field: "(json)",
            message: err.to_string(),
        })?;
        recipe.validate()?;
        Ok(recipe)
    }

    /// Check every field's range before any work starts.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, message: String| Err(Error::Recipe { field, message });
        if !(0.0..1.0).contains(&self.val_fraction) {
            return bad(
                "val_fraction",
                format!("{} is outside [0, 1)", self.val_fraction),
            );
        }
        let h = &self.head;
        if h.epochs == 0 {
            return bad("head.epochs", "must be at least 1".into());
        }
        if h.batch_size == 0 {
            return bad("head.batch_size", "must be at least 1".into());
        }
        if !(h.lr.is_finite() && h.lr > 0.0) {
            return bad(
                "head.lr",
                format!("{} is not a positive learning rate", h.lr),
            );
        }
        if !(h.weight_decay.is_finite() && h.weight_decay >= 0.0) {
            return bad(
                "head.weight_decay",
                format!("{} is not a non-negative weight decay", h.weight_decay),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_and_partial_json_fills_defaults() {
        let r = Recipe::default();
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(Recipe::from_json(&json).unwrap(), r);
        let partial = Recipe::from_json(r#"{"head": {"epochs": 3}}"#).unwrap();
        assert_eq!(partial.head.epochs, 3);
        assert_eq!(partial.head.lr, 1e-3);
    }

    #[test]
    fn bad_fields_are_named() {
        let err = Recipe::from_json(r#"{"head": {"lr": 0}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("head.lr"), "{err}");
        let err = Recipe::from_json(r#"{"head": {"learning_rate": 1}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("learning_rate"), "{err}");
        let err = Recipe::from_json(r#"{"val_fraction": 1.5}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("val_fraction"), "{err}");
    }
}
