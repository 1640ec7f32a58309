//! Micro-batches: a step whose batch goes through the model a few examples at a time sums the
//! same gradient as the whole batch at once (BatchNorm statistics frozen), so a tiny memory
//! budget, or a device that fails to allocate a large micro-batch, trains the same weights.
#![cfg(not(target_arch = "wasm32"))] // folders on disk

use burn::prelude::Device;
use futures_lite::future::block_on;
use tabtune::data::Columns;
use tabtune::session::{Dataset, Event, ModelFiles, ModelKind, Session};
use tabtune::train::memory::simulate_allocation_limit;
use tabtune::train::{Control, Recipe, RunReport};

mod common;

/// Head, then the last 2 blocks with SGD, batches of 8, under `memory_mib`; the report, the
/// exported weights and the warnings.
fn run(data: &std::path::Path, memory_mib: usize) -> (RunReport, Vec<u8>, Vec<String>) {
    let recipe = Recipe::from_json(&format!(
        r#"{{"head": {{"epochs": 1, "batch_size": 8}}, "seed": 5, "memory_mib": {memory_mib},
            "finetune": {{"epochs": 2, "batch_size": 8, "unfreeze": {{"last": 2}},
                          "optimizer": "sgd", "lr": 0.01, "backbone_lr": 0.001}}}}"#
    ))
    .unwrap();
    let mut session = Session::new(Device::flex());
    let model = ModelFiles::open(&common::asset("models/mobilenet_v2")).unwrap();
    session.load(model).unwrap();
    let dataset = Dataset::open(ModelKind::Image, data, None, &Columns::default()).unwrap();
    session.set_dataset(dataset).unwrap();
    let mut warnings = Vec::new();
    let report = block_on(session.train(&recipe, &mut |e| {
        if let Event::Warning(w) = e {
            warnings.push(w.to_string());
        }
        Control::Continue
    }))
    .unwrap();
    let files = block_on(session.export()).unwrap();
    let weights = files
        .into_iter()
        .find(|(n, _)| n == "model.safetensors")
        .unwrap()
        .1;
    (report, weights, warnings)
}

#[test]
fn a_tiny_budget_and_a_failed_allocation_train_the_weights_of_the_whole_batch() {
    let data = common::mnist_subset("memory", 3, 6);
    let (whole, weights, _) = run(&data, 1 << 20);
    assert_eq!(whole.phases[1].micro_batch, 8);

    // 1 MiB: one image at a time.
    let (tiny, tiny_weights, _) = run(&data, 1);
    assert_eq!(tiny.phases[1].micro_batch, 1);
    let diff = common::max_diff(&tiny_weights, &weights);
    let loss_diff = common::max_abs_diff(&tiny.phases[1].losses, &whole.phases[1].losses);
    println!("micro-batches of 1 vs 8: weights differ by {diff:e}, losses by {loss_diff:e}");
    assert!(diff <= 1e-5, "weights differ by {diff}");
    assert!(loss_diff <= 1e-5, "losses differ by {loss_diff}");

    // A device that cannot allocate more than 3 examples at once: 8 fails, 4 fails, 2 trains,
    // in each phase (the head's on cached features too).
    simulate_allocation_limit(Some(3));
    let (failed, failed_weights, warnings) = run(&data, 1 << 20);
    simulate_allocation_limit(None);
    assert_eq!(failed.phases[1].micro_batch, 2);
    assert_eq!(warnings.len(), 4, "{warnings:?}");
    for (warning, phase) in warnings
        .iter()
        .zip(["head", "head", "finetune", "finetune"])
    {
        assert!(warning.starts_with(phase), "{warnings:?}");
    }
    assert!(
        warnings[2].contains("ran out of memory for 8 examples"),
        "{warnings:?}"
    );
    assert!(warnings[3].contains("micro-batches of 2"), "{warnings:?}");
    let diff = common::max_diff(&failed_weights, &weights);
    println!("after two failed allocations: weights differ by {diff:e}");
    assert!(diff <= 1e-5, "weights differ by {diff}");
    assert_eq!(failed.phases[1].losses.len(), whole.phases[1].losses.len());
    std::fs::remove_dir_all(data).ok();
}
