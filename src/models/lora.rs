//! Low-rank adapters (LoRA, Hu et al. 2021, as Hugging Face's PEFT implements them): beside a
//! frozen weight `W` (`[out, in]`), two small trainable matrices `A` (`[r, in]`) and `B`
//! (`[out, r]`) add `scale * B A x` to the layer's output, `scale = alpha / r`. `A` starts as
//! PEFT's Kaiming-uniform draw, `B` at zero, so training starts from the pre-trained model.
//! The optimiser keeps state for `A`, `B` and the new head only.
//!
//! Adapters sit on [`Linear`] (this module's, which loads and saves as burn's: same tensor
//! names and layout) and on the CNNs' 1x1 convolutions ([`super::layers::ConvBn`], before
//! the BatchNorm, as PEFT's adapter on a `Conv2d` followed by its `BatchNorm2d`). Which layers
//! get one is [`LoraOptions::target_modules`], matched against the checkpoint's own module
//! names as PEFT matches them. [`merge`](Linear::merge) adds `scale * B A` into `W`: the
//! merged model is an ordinary one.

use burn::module::{Param, ParamGroup};
use burn::nn::{Dropout, DropoutConfig};
use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::module::linear;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The adapters of a phase, following PEFT's `LoraConfig` (its defaults: r 8, alpha 8, no
/// dropout, biases frozen).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoraOptions {
    /// Rank of each adapter.
    pub r: usize,
    /// Scaling numerator: the adapter's output is multiplied by `alpha / r`.
    pub alpha: f64,
    /// Dropout on the adapter's input while training.
    pub dropout: f64,
    /// Layers that get an adapter, as PEFT's `target_modules` list: a layer matches when its
    /// checkpoint name (`bert.encoder.layer.0.attention.self.query`, `features.2.conv.0.0`) is
    /// an entry or ends with `.` + an entry. `null`: the model's defaults, PEFT's where it has
    /// them (BERT `query` and `value`), every 1x1 convolution of a CNN.
    pub target_modules: Option<Vec<String>>,
}

impl Default for LoraOptions {
    fn default() -> Self {
        Self {
            r: 8,
            alpha: 8.0,
            dropout: 0.0,
            target_modules: None,
        }
    }
}

impl LoraOptions {
    /// The recipe's checks, naming the field (`field` is where the options sit).
    pub fn validate(&self, field: &str) -> Result<()> {
        let bad = |name: &str, message: String| Error::Recipe {
            field: format!("{field}.{name}"),
            message,
        };
        if self.r == 0 {
            return Err(bad("r", "the rank must be at least 1".into()));
        }
        if !self.alpha.is_finite() || self.alpha <= 0.0 {
            return Err(bad(
                "alpha",
                format!("{} is not a positive number", self.alpha),
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(bad("dropout", format!("{} is not in [0, 1)", self.dropout)));
        }
        if let Some(targets) = &self.target_modules {
            if targets.is_empty() {
                return Err(bad(
                    "target_modules",
                    "an empty list adapts nothing (null takes the model's defaults)".into(),
                ));
            }
            if let Some(t) = targets.iter().find(|t| t.trim().is_empty()) {
                return Err(bad("target_modules", format!("{t:?} names no layer")));
            }
        }
        Ok(())
    }

    /// `alpha / r`.
    pub fn scale(&self) -> f64 {
        self.alpha / self.r as f64
    }

    /// Whether the layer named `name` (a checkpoint module name) gets an adapter: PEFT's rule
    /// for a list of targets (`defaults` when the options give none; `None`: every layer that
    /// can take one).
    pub fn targets(&self, name: &str, defaults: Option<&[&str]>) -> bool {
        let matches = |t: &str| name == t || name.ends_with(&format!(".{t}"));
        match (&self.target_modules, defaults) {
            (Some(list), _) => list.iter().any(|t| matches(t)),
            (None, Some(defaults)) => defaults.iter().any(|t| matches(t)),
            (None, None) => true,
        }
    }
}

/// One adapter: `A` `[r, in]` and `B` `[out, r]` under PEFT's layout (`lora_A.weight`,
/// `lora_B.weight`; a convolution's are these with two trailing 1s).
#[derive(Module, Debug)]
pub struct Adapter {
    /// `lora_A.weight`, `[r, in]`.
    pub a: Param<Tensor<2>>,
    /// `lora_B.weight`, `[out, r]`.
    pub b: Param<Tensor<2>>,
    /// Dropout on the input while training.
    pub dropout: Dropout,
    /// `alpha / r`.
    #[module(skip)]
    pub scale: f64,
}

impl Adapter {
    /// A new adapter for a layer of `d_in` inputs and `d_out` outputs, `A` drawn from `rng`
    /// as PEFT draws it (Kaiming-uniform with a = sqrt(5): U(-1/sqrt(in), 1/sqrt(in))), `B`
    /// zero: the layer's output is unchanged until `B` trains.
    pub fn new(
        d_in: usize,
        d_out: usize,
        options: &LoraOptions,
        rng: &mut ChaCha8Rng,
        device: &Device,
    ) -> Self {
        let r = options.r;
        let k = 1.0 / (d_in as f32).sqrt();
        let a: Vec<f32> = (0..r * d_in).map(|_| rng.random_range(-k..k)).collect();
        Self {
            a: Param::from_tensor(Tensor::from_data(TensorData::new(a, [r, d_in]), device)),
            b: Param::from_tensor(Tensor::zeros([d_out, r], device)),
            dropout: DropoutConfig::new(options.dropout).init(),
            scale: options.scale(),
        }
    }

    /// An adapter from PEFT's tensors (`a` `[r, in]`, `b` `[out, r]`).
    pub fn from_tensors(a: Tensor<2>, b: Tensor<2>, options: &LoraOptions) -> Self {
        Self {
            a: Param::from_tensor(a),
            b: Param::from_tensor(b),
            dropout: DropoutConfig::new(options.dropout).init(),
            scale: options.scale(),
        }
    }

    /// `scale * B A x` for `x` `[..., in]`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let x = self.dropout.forward(x);
        let down = linear(x, self.a.val().transpose(), None);
        linear(down, self.b.val().transpose(), None).mul_scalar(self.scale)
    }

    /// `scale * B A`, `[out, in]`: what merging adds to the weight (PyTorch's layout).
    pub fn delta(&self) -> Tensor<2> {
        self.b.val().matmul(self.a.val()).mul_scalar(self.scale)
    }

    /// Rank.
    pub fn rank(&self) -> usize {
        self.a.dims()[0]
    }
}

/// A seeded generator for the adapters of a model, one stream per run seed.
pub fn adapter_rng(seed: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(7);
    rng
}

/// A fully connected layer that may carry an adapter: burn's `Linear` (the same name, tensor
/// names and `[in, out]` layout, so checkpoints load and save as before) plus `lora`.
#[derive(Module, Debug)]
pub struct Linear {
    /// `[in, out]`.
    pub weight: Param<Tensor<2>>,
    /// `[out]`.
    pub bias: Option<Param<Tensor<1>>>,
    /// The adapter, in a LoRA phase.
    pub lora: Option<Adapter>,
}

impl From<burn::nn::Linear> for Linear {
    fn from(l: burn::nn::Linear) -> Self {
        Self {
            weight: l.weight,
            bias: l.bias,
            lora: None,
        }
    }
}

impl Linear {
    /// A randomly initialised layer, as burn's `LinearConfig` makes it.
    pub fn new(d_in: usize, d_out: usize, device: &Device) -> Self {
        burn::nn::LinearConfig::new(d_in, d_out).init(device).into()
    }

    /// `x W + b`, plus the adapter's output.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let y = linear(
            x.clone(),
            self.weight.val(),
            self.bias.as_ref().map(|b| b.val()),
        );
        match &self.lora {
            Some(adapter) => y + adapter.forward(x),
            None => y,
        }
    }

    /// `[in, out]`.
    pub fn dims(&self) -> [usize; 2] {
        self.weight.dims()
    }

    /// The layer with its adapter added into the weight (`W + scale B A`), and no adapter.
    pub fn merge(mut self) -> Self {
        self.merge_adapter();
        self
    }
}

/// Every adapted layer of a model, by its checkpoint name: what [`adapt`](LoraSite::adapt),
/// export and import walk.
pub trait LoraSite {
    /// `(in, out)` of the layer's weight as an adapter sees it.
    fn adapter_dims(&self) -> [usize; 2];
    /// Whether an adapter may go here (a CNN's convolution must be 1x1 and ungrouped).
    fn adaptable(&self) -> bool {
        true
    }
    /// The adapter, if any.
    fn adapter(&self) -> Option<&Adapter>;
    /// Set (or remove) the adapter.
    fn set_adapter(&mut self, adapter: Option<Adapter>);
    /// The weight's device.
    fn site_device(&self) -> Device;
    /// Add the adapter into the weight and remove it.
    fn merge_adapter(&mut self);
    /// A convolution (PEFT's adapter tensors then have two trailing 1s).
    fn is_conv(&self) -> bool {
        false
    }
}

impl LoraSite for Linear {
    fn adapter_dims(&self) -> [usize; 2] {
        self.dims()
    }
    fn adapter(&self) -> Option<&Adapter> {
        self.lora.as_ref()
    }
    fn set_adapter(&mut self, adapter: Option<Adapter>) {
        self.lora = adapter;
    }
    fn site_device(&self) -> Device {
        self.weight.device()
    }
    fn merge_adapter(&mut self) {
        if let Some(adapter) = self.lora.take() {
            let merged = self.weight.val().detach() + adapter.delta().transpose();
            self.weight = Param::initialized(self.weight.id, merged);
        }
    }
}

/// The layers of a model an adapter may sit on, each with its checkpoint module name.
pub trait Adaptable {
    /// Module names PEFT adapts by default for this architecture (`None`: every layer that can
    /// take an adapter, tabtune's default where PEFT has none, e.g. a CNN's 1x1 convolutions).
    fn default_targets(&self) -> Option<&'static [&'static str]>;
    /// Every layer that may carry an adapter, with its checkpoint name.
    fn sites(&mut self) -> Vec<(String, &mut dyn LoraSite)>;
}

/// Put new adapters on the layers of `model` that `options` targets, drawn from `seed`. Returns
/// the names adapted; none is an error naming the targets and a few of the layers there are.
pub fn add_adapters(
    model: &mut dyn Adaptable,
    options: &LoraOptions,
    seed: u64,
) -> Result<Vec<String>> {
    options.validate("finetune.lora")?;
    let defaults = model.default_targets();
    let mut rng = adapter_rng(seed);
    let mut adapted = Vec::new();
    let mut names = Vec::new();
    for (name, site) in model.sites() {
        if site.adaptable() {
            names.push(name.clone());
        }
        if site.adaptable() && options.targets(&name, defaults) {
            let [d_in, d_out] = site.adapter_dims();
            let device = site.site_device();
            site.set_adapter(Some(Adapter::new(d_in, d_out, options, &mut rng, &device)));
            adapted.push(name);
        }
    }
    if names.is_empty() {
        return Err(Error::Recipe {
            field: "finetune.lora".into(),
            message: "this model has no layer an adapter goes on (a Linear layer, a 1x1 \
                      convolution; a sensor model's head trains whole): set finetune.lora to \
                      null"
                .into(),
        });
    }
    if adapted.is_empty() {
        let asked = options.target_modules.clone().unwrap_or_else(|| {
            defaults
                .unwrap_or_default()
                .iter()
                .map(|s| s.to_string())
                .collect()
        });
        return Err(Error::Recipe {
            field: "finetune.lora.target_modules".into(),
            message: format!(
                "{asked:?} matches none of the model's {} layers that can take an adapter \
                 ({}, ...)",
                names.len(),
                names.iter().take(4).cloned().collect::<Vec<_>>().join(", ")
            ),
        });
    }
    Ok(adapted)
}

/// The adapters of `model` by checkpoint name, and whether each sits on a convolution.
pub fn adapters(model: &mut dyn Adaptable) -> Vec<(String, Adapter, bool)> {
    model
        .sites()
        .into_iter()
        .filter_map(|(name, site)| site.adapter().map(|a| (name, a.clone(), site.is_conv())))
        .collect()
}

/// Trainable parameters of `model`'s adapters, and their count in the whole model.
pub fn adapter_params(model: &mut dyn Adaptable) -> usize {
    adapters(model)
        .iter()
        .map(|(_, a, _)| a.a.shape().num_elements() + a.b.shape().num_elements())
        .sum()
}

/// Where PEFT's adapter folder goes in an export.
pub const ADAPTER_DIR: &str = "adapter";

/// PEFT's adapter folder for `model`'s adapters (`None` when it has none):
/// `adapter/adapter_config.json` and `adapter/adapter_model.safetensors`, keys
/// `base_model.model.{name}.lora_A.weight` / `lora_B.weight` and the new head's tensors (the
/// ones of `full`, the whole model's export, under `head.`; `None`: the model has no new head,
/// as Whisper) as `modules_to_save`, so that
/// `PeftModel.from_pretrained(base, "adapter")` loads it onto the original model. `task_type`
/// is PEFT's (`SEQ_CLS` for text classifiers); `dropout` the adapters' own; `tabtune` (a text
/// model's options, JSON) goes in the weights' metadata, which PEFT does not read, so that
/// tabtune pools as the model was trained when the folder is loaded onto the base model.
pub fn peft_files(
    model: &mut dyn Adaptable,
    full: &[u8],
    head: Option<&str>,
    task_type: Option<&str>,
    dropout: f64,
    tabtune: Option<String>,
) -> Result<Option<Vec<(String, Vec<u8>)>>> {
    let adapters = adapters(model);
    let Some((_, first, _)) = adapters.first() else {
        return Ok(None);
    };
    let (r, scale) = (first.rank(), first.scale);
    if let Some((name, _, _)) =
        (adapters.iter()).find(|(_, a, _)| a.rank() != r || a.scale != scale)
    {
        return Err(Error::Data(format!(
            "the adapter on {name} has another rank or scale than the others; PEFT's folder \
             holds one of each"
        )));
    }
    let fail = |e: String| Error::Data(format!("cannot write the adapter: {e}"));
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, adapter, conv) in &adapters {
        for (part, t) in [("lora_A", adapter.a.val()), ("lora_B", adapter.b.val())] {
            let mut shape = t.dims().to_vec();
            if *conv {
                shape.extend([1, 1]);
            }
            let data = t.into_data().convert::<f32>();
            tensors.push((
                format!("{PEFT_PREFIX}{name}.{part}.weight"),
                shape,
                data.as_bytes().to_vec(),
            ));
        }
    }
    let whole = safetensors::SafeTensors::deserialize(full).map_err(|e| fail(e.to_string()))?;
    for (key, view) in whole.tensors() {
        if head.is_some_and(|head| key.starts_with(&format!("{head}."))) {
            tensors.push((
                format!("{PEFT_PREFIX}{key}"),
                view.shape().to_vec(),
                view.data().to_vec(),
            ));
        }
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let mut metadata: std::collections::HashMap<String, String> =
        [("format".to_string(), "pt".to_string())].into();
    if let Some(options) = tabtune {
        metadata.insert("tabtune".into(), options);
    }
    let metadata = Some(metadata);
    let weights = crate::weights::f32_safetensors(&tensors, metadata).map_err(fail)?;
    let config = serde_json::json!({
        "peft_type": "LORA",
        "task_type": task_type,
        "r": r,
        "lora_alpha": scale * r as f64,
        "lora_dropout": dropout,
        "target_modules": adapters.iter().map(|(n, _, _)| n.clone()).collect::<Vec<_>>(),
        "modules_to_save": head.map(|h| vec![h]),
        "bias": "none",
        "fan_in_fan_out": false,
        "use_rslora": false,
        "use_dora": false,
        "init_lora_weights": true,
        "inference_mode": true,
        "base_model_name_or_path": null,
        "revision": null,
        "rank_pattern": {},
        "alpha_pattern": {},
        "layers_to_transform": null,
        "layers_pattern": null,
    });
    let config = serde_json::to_vec_pretty(&config).map_err(|e| fail(e.to_string()))?;
    Ok(Some(vec![
        (format!("{ADAPTER_DIR}/adapter_config.json"), config),
        (format!("{ADAPTER_DIR}/adapter_model.safetensors"), weights),
    ]))
}

/// `group` (the head's) and every adapter's parameters of `model`.
pub fn adapter_group(model: &mut dyn Adaptable, group: ParamGroup) -> ParamGroup {
    model
        .sites()
        .iter()
        .filter_map(|(_, s)| s.adapter())
        .fold(group, |g, a| {
            g.fuse(&ParamGroup::ids_from_module(a.clone()))
        })
}

/// Merge every adapter of `model` into its layer's weight.
pub fn merge(model: &mut dyn Adaptable) {
    for (_, site) in model.sites() {
        site.merge_adapter();
    }
}

/// Whether `model` carries any adapter.
pub fn has_adapters(model: &mut dyn Adaptable) -> bool {
    model.sites().iter().any(|(_, s)| s.adapter().is_some())
}

/// The checkpoint module name of the layer at module path `path` (`blocks.3.project.conv.`,
/// with its dot) by an architecture's `map` (checkpoint prefix -> module prefix).
pub fn checkpoint_name(map: &[(String, String)], path: &str) -> String {
    let name = map
        .iter()
        .filter(|(_, to)| path.starts_with(to.as_str()))
        .max_by_key(|(_, to)| to.len())
        .map(|(from, to)| format!("{from}{}", &path[to.len()..]))
        .unwrap_or_else(|| path.to_string());
    name.trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An adapter's output equals the merged weight's, and B = 0 leaves the layer as it was.
    #[test]
    fn merged_layer_equals_adapted_layer() {
        let device = Device::flex();
        device.seed(3);
        let mut layer = Linear::new(6, 5, &device);
        let x = Tensor::<3>::random([2, 3, 6], burn::tensor::Distribution::Default, &device);
        let before = layer.forward(x.clone());
        let options = LoraOptions {
            r: 2,
            alpha: 4.0,
            ..LoraOptions::default()
        };
        layer.lora = Some(Adapter::new(6, 5, &options, &mut adapter_rng(1), &device));
        let same = layer.forward(x.clone());
        assert_eq!(before.to_data(), same.to_data(), "B starts at zero");
        let adapter = layer.lora.as_mut().unwrap();
        adapter.b = Param::from_tensor(Tensor::random(
            [5, 2],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        ));
        let adapted = layer.forward(x.clone());
        let moved = (adapted.clone() - before).abs().max().into_scalar::<f32>();
        assert!(moved > 1e-2, "the adapter changes the output ({moved})");
        let merged = layer.merge();
        assert!(merged.lora.is_none());
        let err = (merged.forward(x) - adapted)
            .abs()
            .max()
            .into_scalar::<f32>();
        assert!(err < 1e-5, "merged vs adapted: {err}");
    }

    /// Every 1x1 ungrouped convolution of the CNNs gets an adapter by default, named as the
    /// checkpoint names it (what PEFT's `target_modules` and keys use).
    #[test]
    fn cnn_adapters_sit_on_the_1x1_convolutions_under_checkpoint_names() {
        use crate::models::{Arch, ImageModel};
        let device = Device::flex();
        for (arch, count, names) in [
            (
                Arch::MobileNetV2,
                34,
                &["features.1.conv.1", "features.2.conv.0.0", "features.18.0"][..],
            ),
            (
                Arch::EfficientNetLite0,
                32,
                &[
                    "_blocks.0._project_conv",
                    "_blocks.1._expand_conv",
                    "_conv_head",
                ][..],
            ),
            (
                Arch::ResNet18,
                3,
                &["layer2.0.downsample.0", "layer4.0.downsample.0"][..],
            ),
        ] {
            let mut model = ImageModel::new(arch, 3, &device).unwrap();
            let adapted = add_adapters(&mut model, &LoraOptions::default(), 1).unwrap();
            assert_eq!(adapted.len(), count, "{arch:?}: {adapted:?}");
            for name in names {
                assert!(
                    adapted.iter().any(|a| a == name),
                    "{name} not in {adapted:?}"
                );
            }
        }
        // A target that is no 1x1 convolution matches nothing: refused, naming some that are.
        let mut model = ImageModel::new(Arch::MobileNetV2, 3, &device).unwrap();
        let options = LoraOptions {
            target_modules: Some(vec!["features.0.0".into()]),
            ..LoraOptions::default()
        };
        let err = add_adapters(&mut model, &options, 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("features.1.conv.1"), "{err}");
    }

    #[test]
    fn targets_match_as_peft_does() {
        let o = LoraOptions::default();
        let d = Some(&["query", "value"][..]);
        assert!(o.targets("bert.encoder.layer.0.attention.self.query", d));
        assert!(!o.targets("bert.encoder.layer.0.attention.self.key", d));
        assert!(!o.targets("bert.encoder.layer.0.attention.self.myquery", d));
        let o = LoraOptions {
            target_modules: Some(vec!["features.2.conv.0.0".into()]),
            ..o
        };
        assert!(o.targets("features.2.conv.0.0", d));
        assert!(!o.targets("features.12.conv.0.0", d));
    }
}

/// PEFT's LoRA adapter folder (`adapter_config.json`, `adapter_model.safetensors`), made by
/// tabtune or by PEFT itself, to put onto its base model and predict with or train on.
#[derive(Debug, Clone)]
pub struct PeftAdapter {
    /// A name for messages (the folder).
    pub name: String,
    /// The options its config describes (`target_modules` as its layers).
    pub options: LoraOptions,
    /// `lora_alpha / sqrt(r)` with rsLoRA, else `lora_alpha / r`.
    pub scale: f64,
    /// PEFT's `task_type` (`SEQ_CLS` for a sequence classifier).
    pub task_type: Option<String>,
    /// The text options a tabtune export wrote in the weights' metadata (`tabtune`).
    tabtune: Option<String>,
    /// The tensors by key, F32 (converted from F16/BF16), with their shapes.
    tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
}

impl PeftAdapter {
    /// Read the two files. What tabtune cannot put onto a model is refused by name: another
    /// PEFT method than LoRA, DoRA, per-layer ranks or alphas, trained biases, Conv1D-style
    /// (`fan_in_fan_out`) weights.
    pub fn parse(name: &str, config_json: &str, weights: &[u8]) -> Result<Self> {
        let fail = |message: String| Error::Weights {
            file: format!("{name}/adapter_config.json"),
            message,
        };
        let config: serde_json::Value =
            serde_json::from_str(config_json).map_err(|e| fail(format!("not JSON: {e}")))?;
        let get = |key: &str| config.get(key).filter(|v| !v.is_null());
        match get("peft_type").and_then(|v| v.as_str()) {
            Some("LORA") => {}
            other => {
                return Err(fail(format!(
                    "peft_type is {other:?}; tabtune reads LoRA adapters (\"LORA\")"
                )));
            }
        }
        let r = get("r")
            .and_then(|v| v.as_u64())
            .filter(|r| *r > 0)
            .ok_or_else(|| fail("r is not a positive whole number".into()))?
            as usize;
        let alpha = get("lora_alpha")
            .and_then(|v| v.as_f64())
            .filter(|a| a.is_finite() && *a > 0.0)
            .ok_or_else(|| fail("lora_alpha is not a positive number".into()))?;
        for (key, unsupported) in [
            (
                "use_dora",
                get("use_dora").and_then(|v| v.as_bool()) == Some(true),
            ),
            (
                "fan_in_fan_out",
                get("fan_in_fan_out").and_then(|v| v.as_bool()) == Some(true),
            ),
            (
                "rank_pattern",
                get("rank_pattern").is_some_and(|v| v.as_object().is_some_and(|o| !o.is_empty())),
            ),
            (
                "alpha_pattern",
                get("alpha_pattern").is_some_and(|v| v.as_object().is_some_and(|o| !o.is_empty())),
            ),
            (
                "bias",
                get("bias")
                    .and_then(|v| v.as_str())
                    .is_some_and(|b| b != "none"),
            ),
        ] {
            if unsupported {
                return Err(fail(format!(
                    "{key} is set; tabtune's adapters are plain LoRA (one rank and alpha, no \
                     DoRA, frozen biases)"
                )));
            }
        }
        let rslora = get("use_rslora").and_then(|v| v.as_bool()) == Some(true);
        let scale = if rslora {
            alpha / (r as f64).sqrt()
        } else {
            alpha / r as f64
        };
        let dropout = get("lora_dropout").and_then(|v| v.as_f64()).unwrap_or(0.0);
        let st = safetensors::SafeTensors::deserialize(weights).map_err(|e| Error::Weights {
            file: format!("{name}/adapter_model.safetensors"),
            message: e.to_string(),
        })?;
        let tabtune = safetensors::SafeTensors::read_metadata(weights)
            .ok()
            .and_then(|(_, m)| m.metadata().as_ref()?.get("tabtune").cloned());
        let mut tensors = Vec::new();
        for (key, view) in st.tensors() {
            let values = crate::weights::floats(view.dtype(), view.data()).ok_or_else(|| {
                Error::Weights {
                    file: format!("{name}/adapter_model.safetensors"),
                    message: format!("tensor `{key}` is {:?}, not a float", view.dtype()),
                }
            })?;
            tensors.push((key, view.shape().to_vec(), values));
        }
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        let targets: Vec<String> = tensors
            .iter()
            .filter_map(|(k, _, _)| k.strip_suffix(".lora_A.weight"))
            .map(|k| k.strip_prefix(PEFT_PREFIX).unwrap_or(k).to_string())
            .collect();
        if targets.is_empty() {
            return Err(Error::Weights {
                file: format!("{name}/adapter_model.safetensors"),
                message: "no `*.lora_A.weight` tensor: not a LoRA adapter".into(),
            });
        }
        Ok(Self {
            name: name.to_string(),
            options: LoraOptions {
                r,
                alpha: scale * r as f64,
                dropout: dropout.clamp(0.0, 0.99),
                target_modules: Some(targets),
            },
            scale,
            task_type: get("task_type").and_then(|v| v.as_str()).map(String::from),
            tabtune,
            tensors,
        })
    }

    /// How a text model with this adapter pools and cuts its inputs: what a tabtune export
    /// wrote, else, for PEFT's sequence classifier (`SEQ_CLS`), the pooler's output, which
    /// `BertForSequenceClassification` classifies. `None`: the model's own.
    pub fn text_options(&self) -> Option<crate::models::TextOptions> {
        match (&self.tabtune, self.task_type.as_deref()) {
            (Some(json), _) => serde_json::from_str(json).ok(),
            (None, Some("SEQ_CLS")) => Some(crate::models::TextOptions {
                pooling: crate::models::Pooling::Pooler,
                ..Default::default()
            }),
            _ => None,
        }
    }

    /// The classes of the new head the adapter carries (`modules_to_save`), if it has one:
    /// the rows of its only two-dimensional tensor that is not an adapter's.
    pub fn head_classes(&self) -> Option<usize> {
        let heads: Vec<usize> = (self.tensors.iter())
            .filter(|(k, s, _)| !k.contains(".lora_") && s.len() == 2)
            .map(|(_, s, _)| s[0])
            .collect();
        match heads.as_slice() {
            [classes] => Some(*classes),
            _ => None,
        }
    }

    /// Put the adapters onto `model`'s layers (every one the file holds must find its layer,
    /// with the layer's shape). Returns the other tensors (the new head, PEFT's
    /// `modules_to_save`) under the checkpoint's own names, `[shape]` and values.
    pub fn apply(&self, model: &mut dyn Adaptable) -> Result<Vec<(String, Vec<usize>, Vec<f32>)>> {
        let fail = |message: String| Error::Weights {
            file: format!("{}/adapter_model.safetensors", self.name),
            message,
        };
        let find = |key: &str| self.tensors.iter().find(|(k, _, _)| k == key);
        let mut used = std::collections::BTreeSet::new();
        for (name, site) in model.sites() {
            let [a_key, b_key] =
                ["lora_A", "lora_B"].map(|p| format!("{PEFT_PREFIX}{name}.{p}.weight"));
            let (Some(a), Some(b)) = (find(&a_key), find(&b_key)) else {
                continue;
            };
            let [d_in, d_out] = site.adapter_dims();
            let r = self.options.r;
            let a_ok = a.1[..2] == [r, d_in] && a.1[2..].iter().all(|d| *d == 1);
            let b_ok = b.1[..2] == [d_out, r] && b.1[2..].iter().all(|d| *d == 1);
            if !site.adaptable() || !a_ok || !b_ok {
                return Err(fail(format!(
                    "`{a_key}` {:?} and `lora_B` {:?} do not fit the layer {name} ({d_in} in, \
                     {d_out} out, rank {r})",
                    a.1, b.1
                )));
            }
            let device = site.site_device();
            let tensor = |(_, _, values): &(String, Vec<usize>, Vec<f32>), shape: [usize; 2]| {
                Tensor::<2>::from_data(TensorData::new(values.clone(), shape), &device)
            };
            let mut adapter =
                Adapter::from_tensors(tensor(a, [r, d_in]), tensor(b, [d_out, r]), &self.options);
            adapter.scale = self.scale;
            site.set_adapter(Some(adapter));
            used.insert(a_key);
            used.insert(b_key);
        }
        let mut rest = Vec::new();
        for (key, shape, values) in &self.tensors {
            if used.contains(key) {
                continue;
            }
            if key.contains(".lora_") {
                return Err(fail(format!(
                    "`{key}` is for a layer this model does not have (or cannot adapt)"
                )));
            }
            let name = key.strip_prefix(PEFT_PREFIX).unwrap_or(key);
            // PEFT's in-memory names, should a file keep them.
            let name = name.replace(".modules_to_save.default.", ".");
            rest.push((name, shape.clone(), values.clone()));
        }
        Ok(rest)
    }
}

/// What PEFT puts before a layer's name in its adapter files.
const PEFT_PREFIX: &str = "base_model.model.";
