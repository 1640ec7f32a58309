//! The wasm-bindgen facade the browser worker calls. It only translates between JS values and
//! the core's types; every decision lives in the core.

use std::rc::Rc;

use js_sys::{Function, Promise, Reflect};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::data::{FeatureSet, features::SyntheticSpec};
use crate::device::{self, DeviceChoice, Selected};
use crate::train::{self, Control, Progress, Recipe};

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
            let set = FeatureSet::synthetic(&spec).map_err(|e| JsError::new(&e.to_string()))?;
            let mut forward = |event: &Progress| {
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
            };
            let (_, report) = train::train_head(&set, &recipe, &selected.device, &mut forward)
                .await
                .map_err(|err| JsError::new(&err.to_string()))?;
            Ok(to_js(&report)?)
        })
    }
}
