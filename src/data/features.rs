//! Fixed-length feature vectors with integer labels: what a frozen backbone's pooled output
//! becomes, and what the head-only phase trains on.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Row-major feature matrix `[len, dim]` with one class index per row.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSet {
    dim: usize,
    classes: Vec<String>,
    features: Vec<f32>,
    labels: Vec<u32>,
}

impl FeatureSet {
    /// Build a set, checking shapes and labels.
    pub fn new(
        dim: usize,
        classes: Vec<String>,
        features: Vec<f32>,
        labels: Vec<u32>,
    ) -> Result<Self> {
        if dim == 0 {
            return Err(Error::Data("feature dimension is 0".into()));
        }
        if features.len() != labels.len() * dim {
            return Err(Error::Data(format!(
                "{} feature values do not make {} rows of dimension {dim}",
                features.len(),
                labels.len()
            )));
        }
        if let Some((row, label)) = labels
            .iter()
            .enumerate()
            .find(|(_, l)| **l as usize >= classes.len())
        {
            return Err(Error::Data(format!(
                "row {row} has label {label}, but there are only {} classes",
                classes.len()
            )));
        }
        if let Some((row, _)) = features
            .chunks(dim)
            .enumerate()
            .find(|(_, r)| r.iter().any(|v| !v.is_finite()))
        {
            return Err(Error::Data(format!(
                "row {row} holds a NaN or infinite feature"
            )));
        }
        Ok(Self {
            dim,
            classes,
            features,
            labels,
        })
    }

    /// Well-separated Gaussian-like clusters, one per class, from a seed: the same numbers on
    /// every platform (ChaCha8), so native and browser runs can be compared exactly.
    pub fn synthetic(spec: &SyntheticSpec) -> Result<Self> {
        let SyntheticSpec {
            samples_per_class,
            dim,
            classes,
            noise,
            seed,
        } = *spec;
        if classes < 2 || samples_per_class == 0 {
            return Err(Error::Data(format!(
                "synthetic set needs at least 2 classes and 1 sample per class, got {classes} and {samples_per_class}"
            )));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let centres: Vec<Vec<f32>> = (0..classes)
            .map(|_| (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect())
            .collect();
        let mut features = Vec::with_capacity(classes * samples_per_class * dim);
        let mut labels = Vec::with_capacity(classes * samples_per_class);
        for i in 0..classes * samples_per_class {
            let class = i % classes;
            // Sum of uniforms: a bell-shaped noise without another dependency.
            features.extend(centres[class].iter().map(|c| {
                let n: f32 = (0..4).map(|_| rng.random_range(-1.0f32..1.0)).sum::<f32>() / 2.0;
                c + noise * n
            }));
            labels.push(class as u32);
        }
        let names = (0..classes).map(|c| format!("class {c}")).collect();
        Self::new(dim, names, features, labels)
    }

    /// Feature dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Class names, indexed by label.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Labels, one per row.
    pub fn labels(&self) -> &[u32] {
        &self.labels
    }

    /// The feature values of `rows`, row-major, with their labels.
    pub fn gather(&self, rows: &[usize]) -> (Vec<f32>, Vec<i64>) {
        let mut x = Vec::with_capacity(rows.len() * self.dim);
        let mut y = Vec::with_capacity(rows.len());
        for &r in rows {
            x.extend_from_slice(&self.features[r * self.dim..(r + 1) * self.dim]);
            y.push(self.labels[r] as i64);
        }
        (x, y)
    }

    /// Stratified split of the rows; see [`super::split::stratified`].
    pub fn stratified_split(&self, val_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
        super::split::stratified(&self.labels, self.classes.len(), val_fraction, seed)
    }
}

/// Parameters of [`FeatureSet::synthetic`], as the page and the CLI send them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyntheticSpec {
    /// Rows per class.
    pub samples_per_class: usize,
    /// Feature dimension.
    pub dim: usize,
    /// Number of classes.
    pub classes: usize,
    /// Spread of each cluster around its centre.
    pub noise: f32,
    /// Seed for centres and noise.
    pub seed: u64,
}

impl Default for SyntheticSpec {
    fn default() -> Self {
        Self {
            samples_per_class: 64,
            dim: 64,
            classes: 4,
            noise: 0.6,
            seed: 7,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_is_deterministic_and_shaped() {
        let spec = SyntheticSpec::default();
        let a = FeatureSet::synthetic(&spec).unwrap();
        let b = FeatureSet::synthetic(&spec).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 256);
        assert_eq!(a.dim(), 64);
        let other = FeatureSet::synthetic(&SyntheticSpec { seed: 8, ..spec }).unwrap();
        assert_ne!(a, other);
    }

    #[test]
    fn split_is_stratified_and_disjoint() {
        let set = FeatureSet::synthetic(&SyntheticSpec::default()).unwrap();
        let (train, val) = set.stratified_split(0.25, 1);
        assert_eq!(train.len() + val.len(), set.len());
        for class in 0..4u32 {
            assert_eq!(
                val.iter().filter(|&&r| set.labels()[r] == class).count(),
                16
            );
        }
        assert!(train.iter().all(|r| !val.contains(r)));
    }

    #[test]
    fn bad_shapes_and_labels_are_named() {
        let err = FeatureSet::new(3, vec!["a".into()], vec![0.0; 5], vec![0, 0]).unwrap_err();
        assert!(err.to_string().contains("5 feature values"), "{err}");
        let err = FeatureSet::new(1, vec!["a".into()], vec![0.0, 1.0], vec![0, 1]).unwrap_err();
        assert!(err.to_string().contains("row 1 has label 1"), "{err}");
        let err = FeatureSet::new(1, vec!["a".into()], vec![f32::NAN], vec![0]).unwrap_err();
        assert!(err.to_string().contains("row 0"), "{err}");
    }
}
