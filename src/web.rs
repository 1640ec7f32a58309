//! The wasm-bindgen facade the browser worker calls. It only translates between JS values and
//! the core's types; every decision lives in the core.

use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise};

use crate::data::image::from_rgba;
use crate::data::source::{ImageSource, LoadFuture};
use crate::data::{FeatureSet, features::SyntheticSpec};
use crate::device::{self, DeviceChoice, Selected};
use crate::models::{ImageModel, ModelConfig};
use crate::train::{self, Control, Progress, Recipe};
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
        })
    }

    /// The selected device: `{ backend, adapter, fallback_reason }`.
    #[wasm_bindgen(getter)]
    pub fn device(&self) -> Result<JsValue, JsError> {
        to_js(&self.selected.info)
    }

    /// Train a head on synthetic feature clusters (`spec`) per `recipe`, calling `onProgress`
    /// with each event; an aborted `signal` cancels between steps. Resolves to the report.
    #[wasm_bindgen(js_name = trainHeadDemo)]
    pub fn train_head_demo(
        &self,
        recipe: JsValue,
        spec: JsValue,
        on_progress: Function,
        signal: JsValue,
    ) -> Promise {
        let selected = Rc::clone(&self.selected);
        future_to_promise(async move {
            let recipe: Recipe = from_js(recipe, "recipe")?;
            let spec: SyntheticSpec = from_js(spec, "dataset spec")?;
            let set = FeatureSet::synthetic(&spec).map_err(js_err)?;
            let mut forward = progress_forwarder(on_progress, signal);
            let (_, report) = train::train_head(&set, &recipe, &selected.device, &mut forward)
                .await
                .map_err(js_err)?;
            Ok(to_js(&report)?)
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
        future_to_promise(async move {
            let recipe: Recipe = from_js(recipe, "recipe")?;
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
            let weights = model
                .to_host()
                .await
                .and_then(|host| host.to_safetensors(&[("format", "pt".into())]))
                .map_err(js_err)?;
            let out = Object::new();
            Reflect::set(&out, &"report".into(), &to_js(&report)?)
                .map_err(|e| js_err(describe_js(&e)))?;
            Reflect::set(&out, &"model".into(), &Uint8Array::from(weights.as_slice()))
                .map_err(|e| js_err(describe_js(&e)))?;
            Reflect::set(&out, &"config".into(), &config.into())
                .map_err(|e| js_err(describe_js(&e)))?;
            Ok(out.into())
        })
    }
}
