//! ResNet-18/34/50 in torchvision's layout. No pretrained ResNet is available offline (and no
//! torch here to make reference outputs), so this checks what can be checked without one:
//! parameter counts and key names/shapes equal torchvision's, forward shapes, and a save -> load
//! round trip through torchvision's key names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::{ModuleMapper, Param};
use burn::prelude::*;
use burn::tensor::Distribution;
use tabtune::models::ResNet;
use tabtune::weights::{WeightSource, inspect, load_into, save_safetensors};

mod common;
use common::trainable_params;

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tabtune-resnet-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Save `model` as a safetensors file with torchvision's key names, as tabtune exports.
fn save_torchvision(model: &ResNet, path: &Path) {
    let bytes = save_safetensors(model, &model.weight_map(), &[]).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Names and shapes of a safetensors file's tensors, read from its header.
fn header(path: &Path) -> BTreeMap<String, Vec<usize>> {
    inspect(&WeightSource::Path(path.to_path_buf())).unwrap()
}

/// Moves every 1-d tensor (BN gamma/beta/running stats, biases) away from its initial value,
/// so a swapped or unloaded BN tensor changes the logits.
struct Perturb;

impl ModuleMapper for Perturb {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if D != 1 {
            return param;
        }
        param.map(|t| {
            let device = t.device();
            let shape = t.shape();
            t.clone() * Tensor::random(shape.clone(), Distribution::Uniform(0.5, 1.5), &device)
                + Tensor::random(shape, Distribution::Uniform(-0.1, 0.1), &device)
        })
    }
}

#[test]
fn parameter_counts_equal_torchvision() {
    let device = Device::flex();
    for (depth, params, features) in [
        (18, 11_689_512, 512),
        (34, 21_797_672, 512),
        (50, 25_557_032, 2048),
    ] {
        let model = ResNet::new(depth, 1000, &device).unwrap();
        let trainable = trainable_params(&model);
        println!("resnet{depth}: {trainable} parameters");
        assert_eq!(trainable, params, "resnet{depth}");
        assert_eq!(model.feature_dim(), features);
        assert_eq!(model.depth(), depth);
    }
    let err = ResNet::new(101, 1000, &device).unwrap_err().to_string();
    assert!(err.contains("101") && err.contains("18, 34, 50"), "{err}");
}

/// (depth, tensors of torchvision's state_dict: BN running stats and num_batches_tracked
/// included, some keys).
type KeyCase = (usize, usize, &'static [(&'static str, &'static [usize])]);

#[test]
fn torchvision_key_names_shapes_and_depth_detection() {
    let device = Device::flex();
    let dir = temp_dir("keys");
    let cases: [KeyCase; 3] = [
        (
            18,
            122,
            &[
                ("conv1.weight", &[64, 3, 7, 7]),
                ("bn1.running_var", &[64]),
                ("layer1.1.conv2.weight", &[64, 64, 3, 3]),
                ("layer2.0.downsample.0.weight", &[128, 64, 1, 1]),
                ("layer2.0.downsample.1.weight", &[128]),
                ("layer4.1.bn2.bias", &[512]),
                ("fc.weight", &[1000, 512]),
                ("fc.bias", &[1000]),
            ],
        ),
        (
            34,
            218,
            &[
                ("layer3.5.conv1.weight", &[256, 256, 3, 3]),
                ("layer4.0.downsample.0.weight", &[512, 256, 1, 1]),
                ("fc.weight", &[1000, 512]),
            ],
        ),
        (
            50,
            320,
            &[
                ("layer1.0.conv1.weight", &[64, 64, 1, 1]),
                ("layer1.0.conv3.weight", &[256, 64, 1, 1]),
                ("layer1.0.downsample.0.weight", &[256, 64, 1, 1]),
                ("layer2.0.conv2.weight", &[128, 128, 3, 3]),
                ("layer4.2.bn3.running_mean", &[2048]),
                ("fc.weight", &[1000, 2048]),
            ],
        ),
    ];
    for (depth, count, keys) in cases {
        let model = ResNet::new(depth, 1000, &device).unwrap();
        let path = dir.join(format!("resnet{depth}.safetensors"));
        save_torchvision(&model, &path);
        let saved = header(&path);
        assert_eq!(saved.len(), count, "resnet{depth}: {:?}", saved.keys());
        for (key, shape) in keys {
            assert_eq!(
                saved.get(*key).map(Vec::as_slice),
                Some(*shape),
                "resnet{depth} {key}"
            );
        }
        // Every key is torchvision's: nothing of burn's own names is left.
        assert!(
            saved.keys().all(|k| k.starts_with("conv1.")
                || k.starts_with("bn1.")
                || k.starts_with("fc.")
                || k.starts_with("layer")),
            "{:?}",
            saved.keys()
        );
        assert!(
            saved
                .keys()
                .all(|k| !k.contains("gamma") && !k.contains("beta"))
        );
        let names: Vec<String> = saved.keys().cloned().collect();
        assert_eq!(ResNet::depth_from_keys(&names), Some(depth));
    }
    std::fs::remove_dir_all(dir).ok();

    let mobilenet: Vec<String> = ["features.0.0.weight", "classifier.1.weight"]
        .map(String::from)
        .to_vec();
    assert_eq!(ResNet::depth_from_keys(&mobilenet), None);
}

#[test]
fn forward_shapes() {
    let device = Device::flex();
    for (depth, features) in [(18, 512), (50, 2048)] {
        let model = ResNet::new(depth, 7, &device).unwrap();
        let x = Tensor::random([2, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device);
        let want = model.features(x.clone());
        assert_eq!(want.dims(), [2, features]);
        // The inference copy (every BatchNorm, downsample and bottleneck ones included, folded
        // into its convolution) computes the same features.
        let got = model.folded().features(x.clone());
        let err = (got - want.clone()).abs().max().into_scalar::<f32>();
        let scale = want.abs().max().into_scalar::<f32>();
        assert!(
            err <= 1e-5 * scale,
            "resnet{depth} folded: max error {err} of {scale}"
        );
        assert_eq!(model.forward(x).dims(), [2, 7]);
    }
    let model = ResNet::new(34, 1000, &device).unwrap();
    let x = Tensor::random([1, 3, 224, 224], Distribution::Normal(0.0, 1.0), &device);
    assert_eq!(model.forward(x).dims(), [1, 1000]);
}

#[test]
fn save_and_load_through_torchvision_names_round_trips() {
    let device = Device::flex();
    let dir = temp_dir("roundtrip");
    for depth in [18, 50] {
        device.seed(7 + depth as u64);
        let model = ResNet::new(depth, 10, &device).unwrap().map(&mut Perturb);
        let path = dir.join(format!("resnet{depth}.safetensors"));
        save_torchvision(&model, &path);

        let mut fresh = ResNet::new(depth, 10, &device).unwrap();
        let map = fresh.weight_map();
        let report = load_into(
            &mut fresh,
            &WeightSource::Path(path.clone()),
            &map,
            &["num_batches_tracked"],
        )
        .unwrap();
        let saved = header(&path);
        let counters = saved
            .keys()
            .filter(|k| k.ends_with("num_batches_tracked"))
            .count();
        assert_eq!(report.applied, saved.len() - counters);

        let x = Tensor::random([2, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device);
        let want: Vec<f32> = model.forward(x.clone()).into_data().iter::<f32>().collect();
        let got: Vec<f32> = fresh.forward(x.clone()).into_data().iter::<f32>().collect();
        assert_eq!(got, want, "resnet{depth}");
        // A model that was not loaded gives other logits (so the comparison can fail).
        let other = ResNet::new(depth, 10, &device).unwrap();
        let other: Vec<f32> = other.forward(x).into_data().iter::<f32>().collect();
        assert_ne!(other, want);
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_mobilenet_checkpoint_is_refused_naming_a_tensor() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/models/mobilenet_v2/model.safetensors");
    assert!(
        path.exists(),
        "{} is missing: run `make assets` first",
        path.display()
    );
    let device = Device::flex();
    let mut model = ResNet::new(18, 1000, &device).unwrap();
    let map = model.weight_map();
    let err = load_into(
        &mut model,
        &WeightSource::Path(path),
        &map,
        &["num_batches_tracked"],
    )
    .unwrap_err()
    .to_string();
    println!("{err}");
    assert!(err.contains("model.safetensors"), "{err}");
    // Names one tensor, in backticks: a ResNet path (missing) or a MobileNet key (unused).
    assert!(
        err.contains("tensor for `") || err.contains("tensor `"),
        "{err}"
    );
}
