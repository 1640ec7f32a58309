//! The wasm-bindgen facade the browser worker calls: JS values in, one `session::Session`
//! call, JS values out. Every decision lives in the core.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise};

use crate::bench::{Bench, BenchSpec};
use crate::data::source::{ListedImages, LoadFn};
use crate::data::{Columns, TextSet, image::from_rgba};
use crate::device::{self, DeviceChoice, DeviceInfo};
use crate::session::{self as core, Dataset, Event, ModelFiles, ModelKind};
use crate::train::{Control, Recipe, RunReport};

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

fn from_js<T: serde::de::DeserializeOwned + Default>(
    value: JsValue,
    what: &str,
) -> Result<T, JsError> {
    if value.is_undefined() || value.is_null() {
        return Ok(T::default());
    }
    serde_wasm_bindgen::from_value(value).map_err(|err| js_err(format!("{what}: {err}")))
}

/// A JS value as JSON text (`None` for undefined/null).
fn json(value: &JsValue, what: &str) -> Result<Option<String>, JsError> {
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    let text = js_sys::JSON::stringify(value)
        .map_err(|e| js_err(format!("{what}: {}", describe_js(&e))))?;
    Ok(Some(text.into()))
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

/// `{files: {name: Uint8Array}}` of named files.
fn files_to_js(files: &[(String, Vec<u8>)]) -> Result<JsValue, JsValue> {
    let map = Object::new();
    for (name, data) in files {
        Reflect::set(&map, &name.into(), &Uint8Array::from(data.as_slice()))?;
    }
    Ok(map.into())
}

/// The page's model files `{kind?, name, weights, config?, tokenizer?, extras?: {name: bytes}}`.
fn model_files(files: &JsValue) -> Result<ModelFiles, JsError> {
    let name = get(files, "name")
        .as_string()
        .unwrap_or_else(|| "model".into());
    let mut named = Vec::new();
    named.push((
        "model.safetensors".to_string(),
        bytes(&get(files, "weights"))
            .ok_or_else(|| js_err("model files: `weights` (bytes) is missing"))?,
    ));
    if let Some(config) = get(files, "config").as_string() {
        named.push(("config.json".into(), config.into_bytes()));
    }
    if let Some(tokenizer) = bytes(&get(files, "tokenizer")) {
        named.push(("tokenizer.json".into(), tokenizer));
    }
    let extras = get(files, "extras");
    if extras.is_object() {
        for key in Object::keys(&extras.clone().into()).iter() {
            if let (Some(file), Some(data)) = (
                key.as_string(),
                bytes(&get(&extras, &key.as_string().unwrap_or_default())),
            ) {
                named.push((file, data));
            }
        }
    }
    let expected = get(files, "kind")
        .as_string()
        .map(|k| ModelKind::parse(&k))
        .transpose()
        .map_err(js_err)?;
    ModelFiles::from_named(&name, named, expected).map_err(js_err)
}

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
            Event::Checkpoint(c) => (|| {
                let value = to_js(&serde_json::json!({"kind": "checkpoint", "phase": c.phase, "recipe": c.recipe, "report": c.report})).ok()?;
                Reflect::set(&value, &"files".into(), &files_to_js(&c.files).ok()?).ok()?;
                Some(value)
            })(),
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
        let mut session = self.inner.try_borrow_mut().map_err(|_| {
            js_err("the session is busy training; wait for the run to end or cancel it")
        })?;
        f(&mut session).map_err(js_err)
    }

    /// Load a model (see `model_files`): resolves to `{kind, name, arch, parameters, tensors,
    /// bytes, outputs, classes}`; a fine-tuned classifier predicts at once.
    #[wasm_bindgen(js_name = loadModel)]
    pub fn load_model(&self, files: JsValue) -> Result<JsValue, JsError> {
        let files = model_files(&files)?;
        to_js(&self.with(|s| s.load(files).cloned())?)
    }

    /// Set (or, with `append`, extend) the image dataset: `items` `[{name, label}]` (labels as
    /// names; `classes` fixes their order), `split` `{train, val}` rows, `load(i)` the decoder.
    #[wasm_bindgen(js_name = setImages)]
    pub fn set_images(
        &self,
        items: JsValue,
        classes: JsValue,
        split: JsValue,
        append: bool,
        load: Function,
    ) -> Result<JsValue, JsError> {
        #[derive(serde::Deserialize, Default)]
        struct Item {
            name: String,
            label: String,
        }
        #[derive(serde::Deserialize, Default)]
        struct Split {
            train: Vec<usize>,
            val: Vec<usize>,
        }
        let items: Vec<Item> = from_js(items, "items")?;
        let items = items.into_iter().map(|i| (i.name, i.label)).collect();
        let classes: Option<Vec<String>> = from_js(classes, "classes")?;
        let split: Option<Split> = from_js(split, "split")?;
        to_js(&self.with(|s| {
            if append {
                return s.extend_images(items);
            }
            let source = ListedImages::new(items, classes, js_loader(load))?;
            let split = split.map(|s| (s.train, s.val));
            s.set_dataset(Dataset::Images {
                source: Box::new(source),
                split,
                skipped: Vec::new(),
            })
        })?)
    }

    /// Set a text table (CSV/TSV/JSONL bytes; `name` tells the format) with `columns`
    /// (`{text?, label?, per_class?}`, detected when left out): resolves to its summary.
    #[wasm_bindgen(js_name = setText)]
    pub fn set_text(
        &self,
        data: Uint8Array,
        name: String,
        columns: JsValue,
    ) -> Result<JsValue, JsError> {
        let columns: Columns = from_js(columns, "columns")?;
        to_js(&self.with(|s| {
            let set = TextSet::parse(&data.to_vec(), &name, &columns)?;
            s.set_dataset(Dataset::Text { set, split: None })
        })?)
    }

    /// The recipe defaults of the loaded model's kind, every field filled in.
    #[wasm_bindgen(js_name = defaultRecipe)]
    pub fn default_recipe(&self) -> Result<JsValue, JsError> {
        to_js(&self.with(|s| Ok(s.default_recipe()))?)
    }

    /// `recipe` over the defaults, validated against the dataset: the whole recipe, or an
    /// error naming the field.
    #[wasm_bindgen(js_name = checkRecipe)]
    pub fn check_recipe(&self, recipe: JsValue) -> Result<JsValue, JsError> {
        let recipe = json(&recipe, "recipe")?;
        to_js(&self.with(|s| s.check_recipe(recipe.as_deref()))?)
    }

    /// Run `recipe`; `onEvent` gets every event (see `forwarder`). Resolves to the report.
    pub fn train(&self, recipe: JsValue, on_event: Function, signal: JsValue) -> Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move {
            let text = json(&recipe, "recipe")?;
            let mut session = inner
                .try_borrow_mut()
                .map_err(|_| js_err("a run is already going on in this session"))?;
            let recipe = session.check_recipe(text.as_deref()).map_err(js_err)?;
            let report = session
                .train(&recipe, &mut forwarder(on_event, signal))
                .await
                .map_err(js_err)?;
            Ok(to_js(&report)?)
        })
    }

    /// Continue a run from its head-phase checkpoint `{model: Uint8Array, config: string}`
    /// with the run's `recipe` and `report`; the dataset must be set again first.
    pub fn resume(
        &self,
        checkpoint: JsValue,
        recipe: JsValue,
        report: JsValue,
        on_event: Function,
        signal: JsValue,
    ) -> Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move {
            let weights = bytes(&get(&checkpoint, "model"))
                .ok_or_else(|| js_err("checkpoint: `model` (bytes) is missing"))?;
            let config = get(&checkpoint, "config")
                .as_string()
                .ok_or_else(|| js_err("checkpoint: `config` is missing"))?;
            let recipe: Recipe = serde_wasm_bindgen::from_value(recipe)
                .map_err(|e| js_err(format!("recipe: {e}")))?;
            let report: RunReport = serde_wasm_bindgen::from_value(report)
                .map_err(|e| js_err(format!("report: {e}")))?;
            let mut session = inner
                .try_borrow_mut()
                .map_err(|_| js_err("a run is already going on in this session"))?;
            let report = session
                .resume(
                    weights,
                    config,
                    &recipe,
                    report,
                    &mut forwarder(on_event, signal),
                )
                .await
                .map_err(js_err)?;
            Ok(to_js(&report)?)
        })
    }

    /// The last run's `{classes, metrics, misclassified, skipped}`.
    pub fn evaluate(&self) -> Result<JsValue, JsError> {
        to_js(&self.with(|s| s.last_evaluation())?)
    }

    /// Classify `texts`: one list per text of `{label, probability}`, most probable first.
    #[wasm_bindgen(js_name = predictText)]
    pub fn predict_text(&self, texts: Vec<String>) -> Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move {
            let mut session = inner
                .try_borrow_mut()
                .map_err(|_| js_err("the session is busy training"))?;
            Ok(to_js(
                &session.predict_texts(&texts).await.map_err(js_err)?,
            )?)
        })
    }

    /// Classify one image (`width` x `height` RGBA pixels): `{label, probability}` entries.
    #[wasm_bindgen(js_name = predictImage)]
    pub fn predict_image(&self, width: u32, height: u32, rgba: Uint8Array) -> Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move {
            let image = from_rgba(rgba.to_vec(), width, height, "image").map_err(js_err)?;
            let mut session = inner
                .try_borrow_mut()
                .map_err(|_| js_err("the session is busy training"))?;
            let mut ranked = session.predict_images(vec![image]).await.map_err(js_err)?;
            Ok(to_js(&ranked.remove(0))?)
        })
    }

    /// The model in use as a Hugging Face-style folder: `{files: {name: Uint8Array}, zip}`.
    #[wasm_bindgen(js_name = exportModel)]
    pub fn export_model(&self) -> Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move {
            let mut session = inner
                .try_borrow_mut()
                .map_err(|_| js_err("the session is busy training"))?;
            let files = session.export().await.map_err(js_err)?;
            let zip = crate::weights::zip_files(&files).map_err(js_err)?;
            let out = Object::new();
            Reflect::set(&out, &"files".into(), &files_to_js(&files)?)?;
            Reflect::set(&out, &"zip".into(), &Uint8Array::from(zip.as_slice()))?;
            Ok(out.into())
        })
    }

    /// Tests: token ids, hidden states and sentence embeddings of `sentences` under the text
    /// model in `files` (see `bench::embed_text`).
    #[wasm_bindgen(js_name = embedText)]
    pub fn embed_text(&self, files: JsValue, sentences: Vec<String>) -> Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move {
            let files = model_files(&files)?;
            let device = inner.borrow().device().clone();
            let embedded = crate::bench::embed_text(&files, &sentences, &device)
                .await
                .map_err(js_err)?;
            let out: Object = to_js(&serde_json::json!({"ids": embedded.ids, "mask": embedded.mask, "dims": embedded.dims, "truncated": embedded.truncated}))?.into();
            Reflect::set(
                &out,
                &"hidden".into(),
                &js_sys::Float32Array::from(embedded.hidden.as_slice()),
            )?;
            Reflect::set(
                &out,
                &"embeddings".into(),
                &js_sys::Float32Array::from(embedded.embeddings.as_slice()),
            )?;
            Ok(out.into())
        })
    }

    /// The bench: a speed workload (`{workload, batch?, tokens?, seed?}`) on this device.
    pub fn bench(&self, spec: JsValue) -> Result<BenchRun, JsError> {
        let spec: BenchSpec = from_js(spec, "bench")?;
        let bench = Bench::new(spec, self.inner.borrow().device()).map_err(js_err)?;
        Ok(BenchRun {
            bench: Rc::new(RefCell::new(Some(bench))),
        })
    }
}

/// A built benchmark workload (see `Session.bench`).
#[wasm_bindgen]
pub struct BenchRun {
    bench: Rc<RefCell<Option<Bench>>>,
}

#[wasm_bindgen]
impl BenchRun {
    /// Time one repetition: `{seconds, items, device_bytes_in_use, device_bytes_reserved}`.
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
