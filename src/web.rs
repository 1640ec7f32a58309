//! The wasm-bindgen facade the browser worker calls: JS values in, one `session::Session`
//! call, JS values out. Every decision lives in the core.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise};

use crate::data::source::{ListedImages, LoadFn};
use crate::data::{Columns, TextSet, image::from_rgba};
use crate::device::{self, DeviceChoice, DeviceInfo};
use crate::session::{self as core, Dataset, Event, ModelFiles, ModelKind};
use crate::train::Control;

// The bench's and the browser tests' entry points (`Session.bench`, `embedText`): only in the
// build with the `bench` feature (www/pkg-bench), not in the page's module.
#[cfg(feature = "bench")]
mod bench;

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

fn js_err(err: impl std::fmt::Display) -> JsError {
    JsError::new(&err.to_string())
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsError> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(js_err)
}

fn get(value: &JsValue, key: &str) -> JsValue {
    Reflect::get(value, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

fn bytes(value: &JsValue) -> Option<Vec<u8>> {
    value.is_object().then(|| Uint8Array::new(value).to_vec())
}

fn describe_js(value: &JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}

/// `head` for JS with `files: {name: Uint8Array}` beside its fields.
fn with_files(head: &impl Serialize, files: &[(String, Vec<u8>)]) -> Result<JsValue, JsValue> {
    let (value, map) = (to_js(head)?, Object::new());
    for (name, data) in files {
        Reflect::set(&map, &name.into(), &Uint8Array::from(data.as_slice()))?;
    }
    Reflect::set(&value, &"files".into(), &map)?;
    Ok(value)
}

/// Named files `{file name: Uint8Array | string}`.
fn named_files(files: &JsValue, what: &str) -> Result<Vec<(String, Vec<u8>)>, JsError> {
    if !files.is_object() {
        return Err(js_err(format!("{what} (file name -> bytes) is missing")));
    }
    let mut named = Vec::new();
    for key in Object::keys(files.unchecked_ref::<Object>()).iter() {
        let value = Reflect::get(files, &key).unwrap_or(JsValue::UNDEFINED);
        let data = value
            .as_string()
            .map(String::into_bytes)
            .or_else(|| bytes(&value));
        let name = key.as_string().unwrap_or_default();
        named.push((
            name,
            data.ok_or_else(|| js_err(format!("{what}: files are bytes or text")))?,
        ));
    }
    Ok(named)
}

/// `f` on the session in a promise of its result; a second call while one runs (a training
/// run holds the session) is refused.
fn spawn<T: Serialize + 'static>(
    inner: &Rc<RefCell<core::Session>>,
    f: impl AsyncFnOnce(&mut core::Session) -> crate::Result<T> + 'static,
) -> Promise {
    let inner = Rc::clone(inner);
    future_to_promise(async move {
        let mut session = inner.try_borrow_mut().map_err(|_| js_err(BUSY))?;
        Ok(to_js(&f(&mut session).await.map_err(js_err)?)?)
    })
}

const BUSY: &str = "the session is busy with a training run; wait for it to end or cancel it";

/// Each core event for JS's `onEvent`: progress as its own tag (`features`, `step`, `epoch`),
/// `phase_end`, `warning`, `checkpoint` (with the files); an aborted `signal` cancels.
fn forwarder(on_event: Function, signal: JsValue) -> impl FnMut(Event) -> Control {
    move |event: Event| {
        let value = match event {
            Event::Progress(p) => to_js(p).ok(),
            Event::PhaseEnd(p) => {
                to_js(&serde_json::json!({"kind": "phase_end", "phase": p.phase, "report": p})).ok()
            }
            Event::Warning(w) => to_js(&serde_json::json!({"kind": "warning", "message": w})).ok(),
            Event::Checkpoint(c) => {
                let head = serde_json::json!({"kind": "checkpoint", "phase": c.phase,
                    "epoch": c.epoch, "recipe": c.recipe, "report": c.report});
                with_files(&head, &c.files).ok()
            }
        };
        if let Some(value) = value {
            let _ = on_event.call1(&JsValue::NULL, &value);
        }
        match get(&signal, "aborted").as_bool() {
            Some(true) => Control::Cancel,
            _ => Control::Continue,
        }
    }
}

/// The page's decoder: `load(i)` resolves to `{width, height, data}` RGBA pixels.
fn js_loader(load: Function) -> LoadFn {
    Box::new(move |i, name| {
        let name = name.to_string();
        let call = load.call1(&JsValue::NULL, &JsValue::from(i as u32));
        Box::pin(async move {
            let fail = |what: String| crate::Error::Data(format!("{name}: {what}"));
            let promise = call.map_err(|e| fail(describe_js(&e)))?;
            let value = JsFuture::from(Promise::resolve(&promise))
                .await
                .map_err(|e| fail(describe_js(&e)))?;
            let size = |key: &str| get(&value, key).as_f64().unwrap_or(0.0) as u32;
            let data = bytes(&get(&value, "data"))
                .ok_or_else(|| fail("load() gave no pixel data".into()))?;
            from_rgba(data, size("width"), size("height"), &name)
        })
    })
}

/// 16 kHz mono samples of `{bytes}` (an audio file, decoded here) or `{samples, rate}`.
fn audio_of(item: &JsValue, name: &str) -> crate::Result<Vec<f32>> {
    use crate::data::{audio, mel::SAMPLE_RATE};
    let samples = get(item, "samples");
    if samples.is_object() {
        let samples = js_sys::Float32Array::new(&samples).to_vec();
        let rate = get(item, "rate").as_f64().unwrap_or(f64::from(SAMPLE_RATE));
        if !(1000.0..=384_000.0).contains(&rate) {
            return Err(crate::Error::Data(format!(
                "{name}: sample rate {rate} Hz is not one audio is recorded at"
            )));
        }
        if samples.is_empty() {
            return Err(crate::Error::Data(format!(
                "{name}: the recording is empty"
            )));
        }
        return audio::resample(&samples, rate as u32, SAMPLE_RATE);
    }
    match bytes(&get(item, "bytes")) {
        Some(data) => audio::load(data, name),
        None => Err(crate::Error::Data(format!(
            "{name}: give the file's `bytes` or recorded `samples` and their `rate`"
        ))),
    }
}

/// A fine-tuning session on the device chosen once per worker.
#[wasm_bindgen]
pub struct Session {
    inner: Rc<RefCell<core::Session>>,
    info: DeviceInfo,
}

#[wasm_bindgen]
impl Session {
    /// Select the device: `"auto"` (WebGPU, else CPU with the reason), `"gpu"` or `"cpu"`.
    pub async fn create(choice: String) -> Result<Session, JsError> {
        let choice: DeviceChoice = choice.parse().map_err(js_err)?;
        let selected = device::select(choice).await.map_err(js_err)?;
        Ok(Session {
            inner: Rc::new(RefCell::new(core::Session::new(selected.device))),
            info: selected.info,
        })
    }

    /// The selected device: `{ backend, adapter, fallback_reason }`.
    #[wasm_bindgen(getter)]
    pub fn device(&self) -> Result<JsValue, JsError> {
        to_js(&self.info)
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut core::Session) -> crate::Result<T>,
    ) -> Result<T, JsError> {
        f(&mut *self.inner.try_borrow_mut().map_err(|_| js_err(BUSY))?).map_err(js_err)
    }

    /// Load the model `name` from `files` (`{file name: Uint8Array | string}`; `kind` "image"
    /// or "text" when its files leave it open): resolves to `{kind, name, arch, parameters,
    /// tensors, bytes, outputs, classes}`; a fine-tuned classifier predicts at once.
    #[wasm_bindgen(js_name = loadModel)]
    pub fn load_model(
        &self,
        name: String,
        kind: Option<String>,
        files: JsValue,
    ) -> Result<JsValue, JsError> {
        let named = named_files(&files, "model: `files`")?;
        let kind = kind
            .map(|k| ModelKind::parse(&k))
            .transpose()
            .map_err(js_err)?;
        to_js(&self.with(|s| s.load(ModelFiles::from_named(&name, named, kind)?).cloned())?)
    }

    /// Put PEFT's adapter folder (`config`: adapter_config.json's text, `weights`:
    /// adapter_model.safetensors' bytes, `name` for messages) onto the loaded model: resolves
    /// to the model's info as `loadModel` does.
    #[wasm_bindgen(js_name = loadAdapter)]
    pub fn load_adapter(
        &self,
        name: String,
        config: String,
        weights: Vec<u8>,
    ) -> Result<JsValue, JsError> {
        to_js(&self.with(|s| s.load_adapter(&name, &config, &weights).cloned())?)
    }

    /// Compile the first training step's kernels on a copy of the loaded model while the data
    /// loads (the session stays free): resolves to true when done, false when `stop()` (asked
    /// between the parts) said to stop, e.g. because another model was chosen.
    #[wasm_bindgen(js_name = warmUp)]
    pub fn warm_up(&self, stop: Function) -> Result<Promise, JsError> {
        let warm = self.with(|s| s.warm_up())?;
        Ok(future_to_promise(async move {
            let stop = || stop.call0(&JsValue::NULL).ok().and_then(|v| v.as_bool()) == Some(true);
            Ok(warm.run(&stop).await.map_err(js_err)?.into())
        }))
    }

    /// Set (or, with `append`, extend) the image dataset: item `names` and `labels` (class
    /// names; `classes` fixes their order), the `train` and `val` rows when given, `load(i)`
    /// the page's decoder.
    #[wasm_bindgen(js_name = setImages)]
    pub fn set_images(
        &self,
        names: Vec<String>,
        labels: Vec<String>,
        classes: Option<Vec<String>>,
        train: Option<Vec<usize>>,
        val: Option<Vec<usize>>,
        append: bool,
        load: Function,
    ) -> Result<JsValue, JsError> {
        let split = train.zip(val);
        let items = names.into_iter().zip(labels).collect();
        to_js(&self.with(|s| match append {
            true => s.extend_images(items),
            false => {
                let source = Box::new(ListedImages::new(items, classes, js_loader(load))?);
                s.set_dataset(Dataset::Images {
                    source,
                    split,
                    skipped: Vec::new(),
                })
            }
        })?)
    }

    /// Set a text table (CSV/TSV/JSONL bytes; `name` tells the format) with `columns` (JSON
    /// `{text?, label?, per_class?}`, detected when left out): resolves to its summary.
    #[wasm_bindgen(js_name = setText)]
    pub fn set_text(
        &self,
        data: Uint8Array,
        name: String,
        columns: String,
    ) -> Result<JsValue, JsError> {
        let columns: Columns =
            serde_json::from_str(&columns).map_err(|e| js_err(format!("columns: {e}")))?;
        to_js(&self.with(|s| {
            let set = TextSet::parse(&data.to_vec(), &name, &columns)?;
            s.set_dataset(Dataset::Text { set, split: None })
        })?)
    }

    /// Set an audio dataset: `items` is an array of `{name, label, bytes}` (an audio file:
    /// WAV, MP3, OGG/Vorbis, FLAC, decoded here with the same code as the CLI's) or `{name,
    /// label, samples, rate}` (mono samples, e.g. recorded in the page); `classes` fixes the
    /// class order (else sorted). Files that cannot be decoded are left out and named in the
    /// summary; a class left empty is an error.
    #[wasm_bindgen(js_name = setAudio)]
    pub fn set_audio(
        &self,
        items: js_sys::Array,
        classes: Option<Vec<String>>,
    ) -> Result<JsValue, JsError> {
        let labels: Vec<String> = items
            .iter()
            .map(|item| get(&item, "label").as_string().unwrap_or_default())
            .collect();
        let classes = classes.unwrap_or_else(|| crate::data::classes::order(&labels));
        let mut clips = crate::data::AudioClips::new(classes.clone());
        for (i, (item, label)) in items.iter().zip(&labels).enumerate() {
            let name = get(&item, "name")
                .as_string()
                .unwrap_or_else(|| format!("clip {}", i + 1));
            let index = crate::data::classes::index_of(&classes, label).ok_or_else(|| {
                js_err(format!("{name}: label {label:?} is not one of the classes"))
            })?;
            match audio_of(&item, &name) {
                Ok(samples) => clips.push_samples(&name, samples, index),
                Err(err) => clips.skipped.push((name, err.to_string())),
            }
        }
        to_js(&self.with(|s| {
            clips.check_classes("the audio dataset")?;
            s.set_dataset(Dataset::Audio { clips, split: None })
        })?)
    }

    /// Set numeric recordings: `files` is an array of `{name, group?, text}` (CSV/TSV/JSONL
    /// by the name's extension: a time column, channel columns, and a `label` column or
    /// target columns); `group` (a person or device; default the name) keeps a group on one
    /// side of the split; `val` marks the validation files (else the recipe's split). Files
    /// that cannot be used are named in the summary.
    #[wasm_bindgen(js_name = setSeries)]
    pub fn set_series(&self, files: js_sys::Array) -> Result<JsValue, JsError> {
        let mut all = Vec::new();
        let mut val = Vec::new();
        for (i, item) in files.iter().enumerate() {
            let name = get(&item, "name")
                .as_string()
                .unwrap_or_else(|| format!("recording {}.csv", i + 1));
            let group = get(&item, "group")
                .as_string()
                .unwrap_or_else(|| name.clone());
            let data = match get(&item, "text").as_string() {
                Some(text) => text.into_bytes(),
                None => bytes(&get(&item, "bytes"))
                    .ok_or_else(|| js_err(format!("{name}: give its `text` or `bytes`")))?,
            };
            if get(&item, "val").as_bool() == Some(true) {
                val.push(name.clone());
            }
            all.push((name, group, data));
        }
        let val = (!val.is_empty()).then_some(val);
        to_js(&self.with(|s| s.set_dataset(Dataset::series(all, val)?))?)
    }

    /// A series model's predictions on recordings (`[{name, text}]`): per recording, the
    /// class probabilities of each window or the outputs at every step.
    #[wasm_bindgen(js_name = predictSeries)]
    pub fn predict_series(&self, files: js_sys::Array) -> Promise {
        let files: Vec<(String, Vec<u8>)> = files
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let name = get(&item, "name")
                    .as_string()
                    .unwrap_or_else(|| format!("recording {}.csv", i + 1));
                let text = get(&item, "text").as_string().unwrap_or_default();
                (name, text.into_bytes())
            })
            .collect();
        spawn(&self.inner, async move |s| s.predict_series(files).await)
    }

    /// Set transcribed audio: `files` is an array of `{name, bytes}` with the set's relative
    /// paths as names: a `metadata.csv` (file_name, transcription) or a `.jsonl` of `{audio,
    /// text}` with the audio files it names, or `x.wav` beside `x.txt`; `train/` and `val/`
    /// folders are a given split. Rows that cannot be used are named in the summary.
    #[wasm_bindgen(js_name = setTranscripts)]
    pub fn set_transcripts(&self, files: js_sys::Array) -> Result<JsValue, JsError> {
        let files = named_bytes(&files, "file").map_err(js_err)?;
        let set = crate::data::transcripts::Transcripts::from_files(files).map_err(js_err)?;
        to_js(&self.with(|s| s.set_dataset(Dataset::Transcripts { set }))?)
    }

    /// Transcribe audio files (`[{name, bytes}]`) with the model that predicts, or with
    /// `original` the loaded model as it came: `[{name, text, seconds}]`.
    pub fn transcribe(&self, files: js_sys::Array, original: bool) -> Promise {
        let files = named_bytes(&files, "clip");
        spawn(&self.inner, async move |s| {
            s.transcribe(files?, original).await
        })
    }

    /// Classify one audio clip (`{bytes}` of a file or `{samples, rate}`): `{label,
    /// probability}` entries, the mean over the clip's windows.
    #[wasm_bindgen(js_name = predictAudio)]
    pub fn predict_audio(&self, clip: JsValue) -> Promise {
        let samples = audio_of(&clip, "clip");
        spawn(&self.inner, async move |s| {
            Ok(s.predict_audio(&[samples?]).await?.remove(0))
        })
    }

    /// The recipe defaults of the loaded model's kind, every field filled in.
    #[wasm_bindgen(js_name = defaultRecipe)]
    pub fn default_recipe(&self) -> Result<JsValue, JsError> {
        to_js(&self.with(|s| Ok(s.default_recipe()))?)
    }

    /// `recipe` (JSON) over the defaults, validated against the dataset: the whole recipe, or
    /// an error naming the field.
    #[wasm_bindgen(js_name = checkRecipe)]
    pub fn check_recipe(&self, recipe: Option<String>) -> Result<JsValue, JsError> {
        to_js(&self.with(|s| s.check_recipe(recipe.as_deref()))?)
    }

    /// What `recipe`'s adapters (LoRA) would train on the loaded model: layers, adapter and
    /// head parameters against the model's, the adapter folder's bytes; `null` without them.
    #[wasm_bindgen(js_name = loraPlan)]
    pub fn lora_plan(&self, recipe: Option<String>) -> Result<JsValue, JsError> {
        to_js(&self.with(|s| s.lora_plan(recipe.as_deref()))?)
    }

    /// Run `recipe` (JSON); `onEvent` gets every event (see `forwarder`). Resolves to the report.
    pub fn train(&self, recipe: Option<String>, on_event: Function, signal: JsValue) -> Promise {
        spawn(&self.inner, async move |s| {
            let recipe = s.check_recipe(recipe.as_deref())?;
            s.train(&recipe, &mut forwarder(on_event, signal)).await
        })
    }

    /// Continue a run from one of its checkpoints (the `files` of a `checkpoint` event); the
    /// model and the dataset must be set again first.
    pub fn resume(
        &self,
        files: JsValue,
        on_event: Function,
        signal: JsValue,
    ) -> Result<Promise, JsError> {
        let files = named_files(&files, "checkpoint")?;
        Ok(spawn(&self.inner, async move |s| {
            s.resume(files, &mut forwarder(on_event, signal)).await
        }))
    }

    /// The GPU memory pool after returning its free pages: `{in_use_bytes, reserved_bytes,
    /// allocations}` (null on the CPU), with the module's `wasm_bytes`.
    pub fn memory(&self) -> Result<JsValue, JsError> {
        let memory = self.with(|s| Ok(s.memory()))?;
        let wasm = wasm_bindgen::memory().unchecked_into::<js_sys::WebAssembly::Memory>();
        let bytes = get(&wasm.buffer(), "byteLength");
        to_js(&serde_json::json!({"device": memory, "wasm_bytes": bytes.as_f64()}))
    }

    /// The last run's `{classes, metrics, misclassified, skipped}`.
    pub fn evaluate(&self) -> Result<JsValue, JsError> {
        to_js(&self.with(|s| s.last_evaluation())?)
    }

    /// Classify `texts`: one list per text of `{label, probability}`, most probable first.
    #[wasm_bindgen(js_name = predictText)]
    pub fn predict_text(&self, texts: Vec<String>) -> Promise {
        spawn(&self.inner, async move |s| s.predict_texts(&texts).await)
    }

    /// Classify one image (`width` x `height` RGBA pixels): `{label, probability}` entries.
    #[wasm_bindgen(js_name = predictImage)]
    pub fn predict_image(&self, width: u32, height: u32, rgba: Uint8Array) -> Promise {
        let rgba = rgba.to_vec();
        spawn(&self.inner, async move |s| {
            let image = from_rgba(rgba, width, height, "image")?;
            Ok(s.predict_images(vec![image]).await?.remove(0))
        })
    }

    /// The model in use as a Hugging Face-style folder: `{files: {name: Uint8Array}, zip}`;
    /// its report.json keeps the dataset's examples only when `examples` is true.
    #[wasm_bindgen(js_name = exportModel)]
    pub fn export_model(&self, examples: bool, adapter_only: bool) -> Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move {
            let mut session = inner.try_borrow_mut().map_err(|_| js_err(BUSY))?;
            let files = session
                .export_parts(examples, adapter_only)
                .await
                .map_err(js_err)?;
            let zip = crate::weights::zip_files(&files).map_err(js_err)?;
            let out = with_files(&serde_json::json!({}), &files)?;
            Reflect::set(&out, &"zip".into(), &Uint8Array::from(zip.as_slice()))?;
            Ok(out)
        })
    }
}

/// `[{name, bytes}]` as (name, bytes); `what` names an item without a name.
fn named_bytes(items: &js_sys::Array, what: &str) -> crate::Result<Vec<(String, Vec<u8>)>> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let name = get(&item, "name")
                .as_string()
                .unwrap_or_else(|| format!("{what} {}", i + 1));
            let data = bytes(&get(&item, "bytes"))
                .ok_or_else(|| crate::Error::Data(format!("{name}: give its `bytes`")))?;
            Ok((name, data))
        })
        .collect()
}
