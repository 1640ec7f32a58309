//! Stratified train/validation splits, shared by every kind of dataset.

use rand::{SeedableRng, seq::SliceRandom};

/// (training rows, validation rows).
pub type Split = (Vec<usize>, Vec<usize>);
use rand_chacha::ChaCha8Rng;

/// Split row indices by class: `val_fraction` of each class (at least one row when the class has
/// two or more and the fraction is positive) goes to validation, chosen with `seed` (ChaCha8:
/// the same split on every platform). Returns sorted (train rows, validation rows).
pub fn stratified(
    labels: &[u32],
    classes: usize,
    val_fraction: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for class in 0..classes as u32 {
        let mut rows: Vec<usize> = (0..labels.len()).filter(|&r| labels[r] == class).collect();
        rows.shuffle(&mut rng);
        let n_val = val_count(rows.len(), val_fraction);
        val.extend_from_slice(&rows[..n_val]);
        train.extend_from_slice(&rows[n_val..]);
    }
    train.sort_unstable();
    val.sort_unstable();
    (train, val)
}

/// Rows of a class of `n` that [`stratified`] puts in validation.
pub fn val_count(n: usize, val_fraction: f64) -> usize {
    let n_val = (n as f64 * val_fraction).round() as usize;
    if n_val == 0 && n >= 2 && val_fraction > 0.0 {
        1
    } else {
        n_val
    }
}

/// Training rows [`stratified`] leaves of classes with `counts` rows.
pub fn train_count(counts: &[usize], val_fraction: f64) -> usize {
    counts.iter().map(|&n| n - val_count(n, val_fraction)).sum()
}
