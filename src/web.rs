//! The wasm-bindgen facade the browser worker calls. It only translates between JS values and
//! the core's types; every decision lives in the core.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise};

use crate::bench::{Bench, BenchSpec};
use crate::data::image::from_rgba;
use crate::data::source::{ImageSource, LoadFuture};
use crate::data::{Columns, TextSet};
use crate::device::{self, DeviceChoice, Selected};
use crate::models::bert::{l2_normalize, mean_pool};
use crate::models::{ImageModel, ModelConfig, TextModel, TextOptions};
use crate::train::{self, Control, Modality, Progress, Recipe};
use crate::weights::WeightSource;

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsError> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|err| JsError::new(&err.to_string()))
}

fn from_js<T: serde::de::DeserializeOwned + Default>(
    value: JsValue,
    what: &str,
) -> Result<T, JsError> {
    if value.is_undefined() || value.is_null() {
        return Ok(T::default());
    }
    serde_wasm_bindgen::from_value(value).map_err(|err| JsError::new(&format!("{what}: {err}")))
}

/// A recipe from JS, over the defaults of `modality` (fields left out keep them).
fn recipe_from_js(value: JsValue, modality: Modality) -> Result<Recipe, JsError> {
    if value.is_undefined() || value.is_null() {
        return Ok(Recipe::defaults(modality));
    }
    let json = js_sys::JSON::stringify(&value)
        .map_err(|e| js_err(format!("recipe: {}", describe_js(&e))))?;
    Recipe::from_json_for(&String::from(json), modality).map_err(js_err)
}

fn set(out: &Object, key: &str, value: &JsValue) -> Result<(), JsError> {
    Reflect::set(out, &key.into(), value)
        .map(|_| ())
        .map_err(|e| js_err(describe_js(&e)))
}

/// What a fine-tuning call resolves to: `{report, model: Uint8Array, config: string}`.
fn finetuned(
    report: &train::RunReport,
    weights: &[u8],
    config: String,
) -> Result<JsValue, JsValue> {
    let out = Object::new();
    set(&out, "report", &to_js(report)?)?;
    set(&out, "model", &Uint8Array::from(weights))?;
    set(&out, "config", &config.into())?;
    Ok(out.into())
}

/// The files of a text model as JS hands them over.
struct TextFiles {
    weights: WeightSource,
    config: String,
    tokenizer: Vec<u8>,
}

impl TextFiles {
    /// `files`: `{weights: Uint8Array, config: string, tokenizer: Uint8Array, name?: string}`.
    fn from_js(files: &JsValue) -> Result<Self, JsError> {
        let get = |key: &str| Reflect::get(files, &key.into()).unwrap_or(JsValue::UNDEFINED);
        let bytes = |key: &str| -> Result<Vec<u8>, JsError> {
            let v = get(key);
            if !v.is_object() {
                return Err(js_err(format!("model files: `{key}` (bytes) is missing")));
            }
            Ok(Uint8Array::new(&v).to_vec())
        };
        let name = get("name").as_string().unwrap_or_else(|| "model".into());
        Ok(Self {
            weights: WeightSource::Bytes {
                name: format!("{name}/model.safetensors"),
                bytes: bytes("weights")?,
            },
            config: get("config")
                .as_string()
                .ok_or_else(|| js_err("model files: `config` (config.json text) is missing"))?,
            tokenizer: bytes("tokenizer")?,
        })
    }

    fn load(
        &self,
        options: Option<&TextOptions>,
        device: &burn::prelude::Device,
    ) -> Result<TextModel, JsError> {
        let name = self.weights.name();
        let dir = name.trim_end_matches("/model.safetensors");
        TextModel::load(
            &self.config,
            &format!("{dir}/config.json"),
            &self.tokenizer,
            &format!("{dir}/tokenizer.json"),
            &self.weights,
            options,
            device,
        )
        .map_err(js_err)
    }
}

fn js_err(err: impl std::fmt::Display) -> JsError {
    JsError::new(&err.to_string())
}

/// `onProgress` gets every event; an aborted `signal` cancels between steps.
fn progress_forwarder(on_progress: Function, signal: JsValue) -> impl FnMut(&Progress) -> Control {
    move |event: &Progress| {
        if let Ok(value) = to_js(event) {
            let _ = on_progress.call1(&JsValue::NULL, &value);
        }
        let aborted = Reflect::get(&signal, &"aborted".into())
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        if aborted {
            Control::Cancel
        } else {
            Control::Continue
        }
    }
}

/// The dataset as JS describes it: `{ classes, items: [{name, label}], split?: {train, val} }`
/// plus a `load(i)` function resolving to decoded pixels `{width, height, data}` (RGBA).
#[derive(Deserialize)]
struct DatasetSpec {
    classes: Vec<String>,
    items: Vec<ItemSpec>,
    #[serde(default)]
    split: Option<SplitSpec>,
}

#[derive(Deserialize)]
struct ItemSpec {
    name: String,
    label: u32,
}

#[derive(Deserialize)]
struct SplitSpec {
    train: Vec<usize>,
    val: Vec<usize>,
}

/// Images decoded on demand by the page's `load(i)` (e.g. `createImageBitmap` + a canvas).
struct JsImages {
    spec: DatasetSpec,
    load: Function,
}

impl ImageSource for JsImages {
    fn classes(&self) -> &[String] {
        &self.spec.classes
    }
    fn len(&self) -> usize {
        self.spec.items.len()
    }
    fn label(&self, i: usize) -> u32 {
        self.spec.items[i].label
    }
    fn name(&self, i: usize) -> String {
        self.spec.items[i].name.clone()
    }
    fn load(&self, i: usize) -> LoadFuture<'_> {
        let name = self.name(i);
        let call = self.load.call1(&JsValue::NULL, &JsValue::from(i as u32));
        Box::pin(async move {
            let fail = |what: String| crate::Error::Data(format!("{name}: {what}"));
            let promise = call.map_err(|e| fail(format!("{e:?}")))?;
            let value = JsFuture::from(Promise::resolve(&promise))
                .await
                .map_err(|e| fail(describe_js(&e)))?;
            let get = |key: &str| Reflect::get(&value, &key.into()).ok();
            let width = get("width").and_then(|v| v.as_f64()).unwrap_or(0.0) as u32;
            let height = get("height").and_then(|v| v.as_f64()).unwrap_or(0.0) as u32;
            let data = get("data")
                .filter(|d| d.is_object())
                .map(|d| Uint8Array::new(&d).to_vec())
                .ok_or_else(|| fail("load() gave no pixel data".into()))?;
            from_rgba(data, width, height, &name)
        })
    }
}

fn describe_js(value: &JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}

/// A compute device chosen once per worker; training calls run on it.
#[wasm_bindgen]
pub struct Session {
    selected: Rc<Selected>,
    /// The last fine-tuned model, on the device, for `predict*`.
    trained: Rc<RefCell<Option<Trained>>>,
}

/// A fine-tuned (or reloaded) model with its class names.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum Model {
    Image(ImageModel),
    Text(TextModel),
}

/// The model `predict*` and `exportModel` use: its labels, config.json and the run's report.
struct Trained {
    model: Model,
    labels: Vec<String>,
    config: String,
    report: Option<train::RunReport>,
}

impl Model {
    /// The model as safetensors bytes (read back from the device first: WebGPU reads are
    /// async), under its checkpoint's own names.
    async fn safetensors(&self) -> crate::Result<Vec<u8>> {
        let metadata = [("format", "pt".to_string())];
        match self {
            Model::Image(m) => m.to_host().await?.to_safetensors(&metadata),
            Model::Text(m) => m.to_host().await?.to_safetensors(&metadata),
        }
    }
}

/// Keep `model` in `slot` for `predict*` and resolve to `{report, model, config}`.
async fn keep(
    slot: &RefCell<Option<Trained>>,
    model: Model,
    report: train::RunReport,
    config: String,
) -> Result<JsValue, JsValue> {
    let trained = Trained {
        model,
        labels: report.classes.clone(),
        config: config.clone(),
        report: Some(report.clone()),
    };
    let weights = trained.model.safetensors().await.map_err(js_err)?;
    *slot.borrow_mut() = Some(trained);
    finetuned(&report, &weights, config)
}

fn modality(kind: &str) -> Result<Modality, JsError> {
    match kind {
        "image" => Ok(Modality::Image),
        "text" => Ok(Modality::Text),
        other => Err(js_err(format!(
            "unknown model kind \"{other}\": \"image\" or \"text\""
        ))),
    }
}

/// One class and its probability.
#[derive(Serialize)]
struct Scored {
    label: String,
    probability: f32,
}

/// Each row of probabilities as (label, probability), most probable first.
fn ranked(rows: Vec<Vec<f32>>, labels: &[String]) -> Vec<Vec<Scored>> {
    rows.into_iter()
        .map(|p| {
            let mut r: Vec<Scored> = p
                .into_iter()
                .zip(labels)
                .map(|(probability, label)| Scored {
                    label: label.clone(),
                    probability,
                })
                .collect();
            r.sort_by(|a, b| b.probability.total_cmp(&a.probability));
            r
        })
        .collect()
}

/// A built benchmark workload (see `Session.bench`).
#[wasm_bindgen]
pub struct BenchRun {
    bench: Rc<RefCell<Option<Bench>>>,
}

#[wasm_bindgen]
impl BenchRun {
    /// Time one repetition: resolves to `{seconds, items, device_bytes_in_use,
    /// device_bytes_reserved}`.
    pub fn rep(&self) -> Promise {
        let cell = Rc::clone(&self.bench);
        future_to_promise(async move {
            let mut bench = cell
                .borrow_mut()
                .take()
                .ok_or_else(|| js_err("a repetition of this bench is already running"))?;
            let rep = bench.rep().await;
            *cell.borrow_mut() = Some(bench);
            Ok(to_js(&rep.map_err(js_err)?)?)
        })
    }
}

#[wasm_bindgen]
impl Session {
    /// Select the device: `"auto"` (WebGPU, else CPU with the reason), `"gpu"` or `"cpu"`.
    pub async fn create(choice: String) -> Result<Session, JsError> {
        let choice: DeviceChoice = choice
            .parse()
            .map_err(|e: crate::Error| JsError::new(&e.to_string()))?;
        let selected = device::select(choice)
            .await
            .map_err(|err| JsError::new(&err.to_string()))?;
        Ok(Session {
            selected: Rc::new(selected),
            trained: Rc::new(RefCell::new(None)),
        })
    }

    /// The selected device: `{ backend, adapter, fallback_reason }`.
    #[wasm_bindgen(getter)]
    pub fn device(&self) -> Result<JsValue, JsError> {
        to_js(&self.selected.info)
    }

    /// A speed workload (`make bench`) on this device: `spec` is
    /// `{workload: "image_features" | "image_step" | "text_features" | "text_step", batch?,
    /// tokens?, seed?}`; the returned run's `rep()` times one repetition.
    pub fn bench(&self, spec: JsValue) -> Result<BenchRun, JsError> {
        let spec: BenchSpec = from_js(spec, "bench")?;
        let bench = Bench::new(spec, &self.selected.device).map_err(js_err)?;
        Ok(BenchRun {
            bench: Rc::new(RefCell::new(Some(bench))),
        })
    }

    /// Fine-tune the image model in `weights` (safetensors bytes; `name` for messages) on
    /// `dataset` (`{classes, items: [{name, label}], split?: {train, val}}`, whose `load(i)`
    /// resolves to `{width, height, data}` RGBA pixels) per `recipe`. Resolves to
    /// `{report, model, config}`: the run's report, the fine-tuned model as safetensors bytes
    /// under torchvision's key names, and its config.json text.
    #[wasm_bindgen(js_name = finetuneImages)]
    #[allow(clippy::too_many_arguments)]
    pub fn finetune_images(
        &self,
        weights: Uint8Array,
        name: String,
        dataset: JsValue,
        load: Function,
        recipe: JsValue,
        on_progress: Function,
        signal: JsValue,
    ) -> Promise {
        let selected = Rc::clone(&self.selected);
        let trained = Rc::clone(&self.trained);
        future_to_promise(async move {
            let recipe = recipe_from_js(recipe, Modality::Image)?;
            let spec: DatasetSpec = serde_wasm_bindgen::from_value(dataset)
                .map_err(|e| JsError::new(&format!("dataset: {e}")))?;
            let split = spec
                .split
                .as_ref()
                .map(|s| (s.train.clone(), s.val.clone()));
            let source = JsImages { spec, load };
            let device = &selected.device;
            let bytes = WeightSource::Bytes {
                name,
                bytes: weights.to_vec(),
            };
            let (model, _) = ImageModel::load(&bytes, device).map_err(js_err)?;
            drop(bytes);
            let mut forward = progress_forwarder(on_progress, signal);
            let (model, report) =
                train::finetune_images(model, &source, split, &recipe, 16, device, &mut forward)
                    .await
                    .map_err(js_err)?;
            let config = ModelConfig::new(model.arch(), &report.classes).to_json();
            keep(&trained, Model::Image(model), report, config).await
        })
    }

    /// Token ids, last hidden states and L2-normalised mean-pooled sentence embeddings of
    /// `sentences` under the text model in `files` (`{weights, config, tokenizer, name?}`):
    /// resolves to `{ids, mask, dims: [batch, len, hidden], hidden: Float32Array, embeddings:
    /// Float32Array, truncated}`.
    #[wasm_bindgen(js_name = embedText)]
    pub fn embed_text(&self, files: JsValue, sentences: Vec<String>) -> Promise {
        let selected = Rc::clone(&self.selected);
        future_to_promise(async move {
            let device = &selected.device;
            let model = TextFiles::from_js(&files)?.load(None, device)?;
            let tokens = model.tokenizer.encode(&sentences).map_err(js_err)?;
            let (ids, mask, types) = tokens.tensors(device);
            let hidden = model.net.bert.forward(ids, mask.clone(), types);
            let dims = hidden.dims();
            let embeddings = l2_normalize(mean_pool(hidden.clone(), mask));
            let read = |t: burn::tensor::TensorData| -> Result<Vec<f32>, JsError> {
                t.try_to_vec::<f32>().map_err(|e| js_err(format!("{e:?}")))
            };
            let hidden = read(hidden.into_data_async().await.map_err(js_err)?)?;
            let embeddings = read(embeddings.into_data_async().await.map_err(js_err)?)?;
            let out = Object::new();
            set(&out, "ids", &to_js(&tokens.ids)?)?;
            set(&out, "mask", &to_js(&tokens.mask)?)?;
            set(&out, "dims", &to_js(&dims)?)?;
            set(&out, "truncated", &to_js(&tokens.truncated)?)?;
            set(
                &out,
                "hidden",
                &js_sys::Float32Array::from(hidden.as_slice()),
            )?;
            set(
                &out,
                "embeddings",
                &js_sys::Float32Array::from(embeddings.as_slice()),
            )?;
            Ok(out.into())
        })
    }

    /// Fine-tune the text model in `files` (`{weights, config, tokenizer, name?}`) on the table
    /// `data` (CSV/TSV/JSONL bytes; `dataName` tells the format by its extension and names it
    /// in messages) with `columns` (`{text?, label?}`, detected when left out) per `recipe`
    /// (over the text defaults). Resolves to `{report, model, config}`: the report, the model
    /// as safetensors bytes under Hugging Face's `BertForSequenceClassification` names, and
    /// its config.json text (with id2label).
    #[wasm_bindgen(js_name = finetuneText)]
    #[allow(clippy::too_many_arguments)]
    pub fn finetune_text(
        &self,
        files: JsValue,
        data: Uint8Array,
        data_name: String,
        columns: JsValue,
        recipe: JsValue,
        on_progress: Function,
        signal: JsValue,
    ) -> Promise {
        let selected = Rc::clone(&self.selected);
        let trained = Rc::clone(&self.trained);
        future_to_promise(async move {
            let recipe = recipe_from_js(recipe, Modality::Text)?;
            let columns: Columns = from_js(columns, "columns")?;
            let set = TextSet::parse(&data.to_vec(), &data_name, &columns).map_err(js_err)?;
            let device = &selected.device;
            let model = TextFiles::from_js(&files)?.load(Some(&recipe.text), device)?;
            let mut forward = progress_forwarder(on_progress, signal);
            let (model, report) =
                train::finetune_text(model, &set, None, &recipe, 32, device, &mut forward)
                    .await
                    .map_err(js_err)?;
            let config =
                serde_json::to_string_pretty(&model.hf_config(&report.classes)).map_err(js_err)?;
            keep(&trained, Model::Text(model), report, config).await
        })
    }

    /// Classify `texts` with the last fine-tuned text model: resolves to one list per text of
    /// `{label, probability}`, most probable first.
    #[wasm_bindgen(js_name = predictText)]
    pub fn predict_text(&self, texts: Vec<String>) -> Promise {
        let selected = Rc::clone(&self.selected);
        let trained = Rc::clone(&self.trained);
        future_to_promise(async move {
            let (net, tokenizer, labels) = match &*trained.borrow() {
                Some(Trained {
                    model: Model::Text(m),
                    labels,
                    ..
                }) => (m.net.clone(), m.tokenizer.clone(), labels.clone()),
                _ => {
                    return Err(js_err(
                        "no text model has been fine-tuned or loaded in this session yet",
                    )
                    .into());
                }
            };
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let probs = train::text::predict(&net, &tokenizer, &refs, 32, &selected.device)
                .await
                .map_err(js_err)?;
            Ok(to_js(&ranked(probs, &labels))?)
        })
    }

    /// Classify one image (`width` x `height` RGBA pixels) with the last fine-tuned image
    /// model: resolves to `{label, probability}` entries, most probable first.
    #[wasm_bindgen(js_name = predictImage)]
    pub fn predict_image(&self, width: u32, height: u32, rgba: Uint8Array) -> Promise {
        let selected = Rc::clone(&self.selected);
        let trained = Rc::clone(&self.trained);
        future_to_promise(async move {
            let (model, labels) = match &*trained.borrow() {
                Some(Trained {
                    model: Model::Image(m),
                    labels,
                    ..
                }) => (m.clone(), labels.clone()),
                _ => {
                    return Err(js_err(
                        "no image model has been fine-tuned or loaded in this session yet",
                    )
                    .into());
                }
            };
            let image = from_rgba(rgba.to_vec(), width, height, "image").map_err(js_err)?;
            let pre = model.arch().preprocess();
            let side = pre.crop as usize;
            let x = burn::prelude::Tensor::<4>::from_data(
                burn::tensor::TensorData::new(pre.rgb(image, None), [1, 3, side, side]),
                &selected.device,
            );
            let probs = burn::tensor::activation::softmax(model.forward(x), 1)
                .into_data_async()
                .await
                .map_err(js_err)?;
            let probs: Vec<f32> = probs.iter::<f32>().collect();
            let mut rows = ranked(vec![probs], &labels);
            Ok(to_js(&rows.remove(0))?)
        })
    }

    /// Describe a checkpoint before training: `{kind, name, arch, parameters, tensors, bytes,
    /// outputs, classes}` from its tensor names and shapes and its config.json text, if any.
    #[wasm_bindgen(js_name = describeModel)]
    pub fn describe_model(
        weights: Uint8Array,
        name: String,
        config: Option<String>,
    ) -> Result<JsValue, JsError> {
        let bytes = weights.to_vec();
        let size = bytes.len();
        let source = WeightSource::Bytes { name, bytes };
        to_js(&crate::models::describe(&source, size, config.as_deref()).map_err(js_err)?)
    }

    /// The recipe defaults of `kind` ("image" or "text"), every field filled in.
    #[wasm_bindgen(js_name = defaultRecipe)]
    pub fn default_recipe(kind: String) -> Result<JsValue, JsError> {
        to_js(&Recipe::defaults(modality(&kind)?))
    }

    /// `recipe` over the defaults of `kind`, validated (and, with the dataset's class
    /// `counts`, no chosen batch larger than the training rows): the whole recipe, or an error naming
    /// the field.
    #[wasm_bindgen(js_name = checkRecipe)]
    pub fn check_recipe(
        recipe: JsValue,
        kind: String,
        counts: Option<Vec<u32>>,
    ) -> Result<JsValue, JsError> {
        let modality = modality(&kind)?;
        let recipe = recipe_from_js(recipe, modality)?;
        if let Some(counts) = counts {
            let counts: Vec<usize> = counts.into_iter().map(|c| c as usize).collect();
            let rows = crate::data::split::train_count(&counts, recipe.val_fraction);
            recipe
                .check_rows(rows, &Recipe::defaults(modality))
                .map_err(js_err)?;
        }
        to_js(&recipe)
    }

    /// Classes, counts and warnings of an image dataset whose items have `labels`.
    #[wasm_bindgen(js_name = summarizeImages)]
    pub fn summarize_images(classes: Vec<String>, labels: Vec<u32>) -> Result<JsValue, JsError> {
        to_js(&crate::data::Summary::images(&classes, &labels))
    }

    /// Parse the table `data` (CSV/TSV/JSONL, `name` tells which) with `columns` and
    /// summarise it: classes, counts, warnings, the header, the columns in use, a preview.
    #[wasm_bindgen(js_name = summarizeText)]
    pub fn summarize_text(
        data: Uint8Array,
        name: String,
        columns: JsValue,
    ) -> Result<JsValue, JsError> {
        let columns: Columns = from_js(columns, "columns")?;
        let set = TextSet::parse(&data.to_vec(), &name, &columns).map_err(js_err)?;
        to_js(&crate::data::Summary::text(&set, 5))
    }

    /// Load a fine-tuned model for `predict*` and `exportModel` without training: `kind`
    /// "image" with `files` `{weights, config, name?}` (config.json with id2label) or "text"
    /// with `{weights, config, tokenizer, name?}`. Resolves to its class names.
    #[wasm_bindgen(js_name = loadTrained)]
    pub fn load_trained(&self, kind: String, files: JsValue) -> Promise {
        let selected = Rc::clone(&self.selected);
        let trained = Rc::clone(&self.trained);
        future_to_promise(async move {
            let device = &selected.device;
            let loaded = match modality(&kind)? {
                Modality::Text => {
                    let files = TextFiles::from_js(&files)?;
                    let model = files.load(None, device)?;
                    let labels = model.labels.clone().ok_or_else(|| {
                        js_err(format!(
                            "{}: not a fine-tuned classifier (no classifier tensors with \
                             id2label in config.json)",
                            files.weights.name()
                        ))
                    })?;
                    Trained {
                        config: files.config.clone(),
                        model: Model::Text(model),
                        labels,
                        report: None,
                    }
                }
                Modality::Image => {
                    let get = |key: &str| Reflect::get(&files, &key.into()).ok();
                    let name = get("name")
                        .and_then(|v| v.as_string())
                        .unwrap_or_else(|| "model".into());
                    let weights = get("weights")
                        .filter(|v| v.is_object())
                        .ok_or_else(|| js_err("model files: `weights` (bytes) is missing"))?;
                    let config = get("config").and_then(|v| v.as_string()).ok_or_else(|| {
                        js_err("model files: `config` (config.json text with id2label) is missing")
                    })?;
                    let parsed = ModelConfig::from_json(&config, &format!("{name}/config.json"))
                        .map_err(js_err)?;
                    let source = WeightSource::Bytes {
                        name: format!("{name}/model.safetensors"),
                        bytes: Uint8Array::new(&weights).to_vec(),
                    };
                    let (model, _) = ImageModel::load(&source, device).map_err(js_err)?;
                    if model.classes() != parsed.num_labels {
                        return Err(js_err(format!(
                            "{name}: the classifier has {} outputs but config.json names {} \
                             classes",
                            model.classes(),
                            parsed.num_labels
                        ))
                        .into());
                    }
                    Trained {
                        labels: parsed.labels(),
                        model: Model::Image(model),
                        config,
                        report: None,
                    }
                }
            };
            let labels = to_js(&loaded.labels)?;
            *trained.borrow_mut() = Some(loaded);
            Ok(labels)
        })
    }

    /// The model in use as a Hugging Face-style folder: `{files: {name: Uint8Array}, zip:
    /// Uint8Array}` with model.safetensors, config.json, report.json (after a run),
    /// tokenizer.json (text) and the `extras` given (`{name: Uint8Array}`, e.g. vocab.txt).
    #[wasm_bindgen(js_name = exportModel)]
    pub fn export_model(&self, extras: JsValue) -> Promise {
        let trained = Rc::clone(&self.trained);
        future_to_promise(async move {
            let (weights, mut files) = {
                let slot = trained.borrow();
                let t = slot
                    .as_ref()
                    .ok_or_else(|| js_err("no model has been fine-tuned or loaded yet"))?;
                let mut files = vec![("config.json".to_string(), t.config.clone().into_bytes())];
                if let Model::Text(m) = &t.model {
                    files.push(("tokenizer.json".into(), m.tokenizer.json.clone()));
                }
                if let Some(report) = &t.report {
                    let json = serde_json::to_vec_pretty(&serde_json::json!({ "report": report }))
                        .map_err(js_err)?;
                    files.push(("report.json".into(), json));
                }
                // Read back from the device outside the borrow: other calls may need the slot.
                (t.model.clone(), files)
            };
            files.insert(
                0,
                (
                    "model.safetensors".into(),
                    weights.safetensors().await.map_err(js_err)?,
                ),
            );
            if extras.is_object() {
                for key in Object::keys(&extras.clone().into()).iter() {
                    let name = key.as_string().unwrap_or_default();
                    let value = Reflect::get(&extras, &key).unwrap_or(JsValue::UNDEFINED);
                    if !files.iter().any(|(n, _)| *n == name) && value.is_object() {
                        files.push((name, Uint8Array::new(&value).to_vec()));
                    }
                }
            }
            let zip = crate::weights::zip_files(&files).map_err(js_err)?;
            let map = Object::new();
            for (name, bytes) in &files {
                set(&map, name, &Uint8Array::from(bytes.as_slice()))?;
            }
            let out = Object::new();
            set(&out, "files", &map)?;
            set(&out, "zip", &Uint8Array::from(zip.as_slice()))?;
            Ok(out.into())
        })
    }
}
