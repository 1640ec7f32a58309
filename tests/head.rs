//! Native tests of the head-only slice on the CPU backend.

use futures_lite::future::block_on;
use tabtune::Error;
use tabtune::data::{FeatureSet, features::SyntheticSpec};
use tabtune::device::{self, DeviceChoice};
use tabtune::train::{self, Control, Progress, Recipe};

fn cpu() -> burn::tensor::Device {
    block_on(device::select(DeviceChoice::Cpu)).unwrap().device
}

#[test]
fn head_learns_separable_clusters() {
    let set = FeatureSet::synthetic(&SyntheticSpec::default()).unwrap();
    let mut events = Vec::new();
    let (_, report) = block_on(train::train_head(
        &set,
        &Recipe::default(),
        &cpu(),
        &mut |e| {
            events.push(e.clone());
            Control::Continue
        },
    ))
    .unwrap();
    // 256 rows, 20% held out per class -> 204 train rows -> 7 steps of 32 per epoch.
    assert_eq!((report.train_rows, report.val_rows), (204, 52));
    assert_eq!(report.losses.len(), 70);
    let (first, last) = report.loss_drop(5);
    assert!(last < first * 0.5, "loss {first} -> {last}");
    assert!(
        *report.val_accuracy.last().unwrap() > 0.9,
        "{:?}",
        report.val_accuracy
    );
    // Every step and every epoch is reported, in order, with a shrinking ETA.
    let steps: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Progress::Step { step, eta_s, .. } => Some((*step, *eta_s)),
            _ => None,
        })
        .collect();
    assert_eq!(steps.len(), 70);
    assert!(steps.windows(2).all(|w| w[1].0 == w[0].0 + 1));
    assert_eq!(steps.last().unwrap().1, 0.0);
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Progress::Epoch { .. }))
            .count(),
        10
    );
}

#[test]
fn cancel_stops_between_steps() {
    let set = FeatureSet::synthetic(&SyntheticSpec::default()).unwrap();
    let mut seen = 0;
    let result = block_on(train::train_head(
        &set,
        &Recipe::default(),
        &cpu(),
        &mut |_| {
            seen += 1;
            if seen == 3 {
                Control::Cancel
            } else {
                Control::Continue
            }
        },
    ));
    assert!(matches!(result, Err(Error::Cancelled)));
    assert_eq!(seen, 3);
}

#[test]
fn a_single_class_is_refused_with_a_reason() {
    let set = FeatureSet::new(2, vec!["only".into()], vec![0.0; 8], vec![0; 4]).unwrap();
    let err = block_on(train::train_head(
        &set,
        &Recipe::default(),
        &cpu(),
        &mut |_| Control::Continue,
    ))
    .unwrap_err();
    assert!(err.to_string().contains("at least 2 classes"), "{err}");
}

#[test]
fn same_seed_same_run_other_seed_other_run() {
    let set = FeatureSet::synthetic(&SyntheticSpec::default()).unwrap();
    let run = |seed| {
        let recipe = Recipe {
            seed,
            ..Recipe::default()
        };
        block_on(train::train_head(&set, &recipe, &cpu(), &mut |_| {
            Control::Continue
        }))
        .unwrap()
        .1
        .losses
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

#[test]
fn sgd_with_warmup_cosine_and_label_smoothing_trains_and_early_stopping_keeps_the_best_epoch() {
    use tabtune::train::recipe::{HeadPhase, OptimizerKind, Schedule};
    let set = FeatureSet::synthetic(&SyntheticSpec::default()).unwrap();
    let recipe = Recipe {
        head: HeadPhase {
            epochs: 40,
            optimizer: OptimizerKind::Sgd,
            lr: 0.05,
            schedule: Schedule::Cosine,
            warmup_steps: 5,
            label_smoothing: 0.1,
            early_stopping: Some(2),
            ..Default::default()
        },
        ..Recipe::default()
    };
    let (_, report) = block_on(train::train_head(&set, &recipe, &cpu(), &mut |_| {
        Control::Continue
    }))
    .unwrap();
    let (first, last) = report.loss_drop(5);
    assert!(last < first * 0.7, "loss {first} -> {last}");
    // Smoothing keeps the loss above 0: the target puts 0.1 / 4 on every wrong class.
    assert!(last > 0.1, "{last}");
    // Separable clusters reach their best accuracy early: two epochs without a better one stop
    // the phase long before epoch 40, and the kept epoch is the first best one.
    assert!(report.stopped_early, "{:?}", report.val_accuracy);
    let epochs = report.val_accuracy.len();
    assert!(epochs < 40);
    assert_eq!(report.best_epoch, epochs - 2);
    let best = report.best_val_accuracy().unwrap();
    assert!(report.val_accuracy.iter().all(|&a| a <= best));
    assert!(
        report.val_accuracy[..report.best_epoch - 1]
            .iter()
            .all(|&a| a < best)
    );
}
