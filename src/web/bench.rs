//! The `bench` feature's entry points: the speed workloads `make bench` times in the tab
//! (`Session.bench`) and the browser tests' look inside a text model (`embedText`). Left out
//! of the page's module.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::{Session, get, js_err, named_files, to_js};
use crate::bench::{Bench, BenchSpec};

#[wasm_bindgen]
impl Session {
    /// Tests: token ids, hidden states and sentence embeddings of `sentences` under the text
    /// model `{name, files}` (see `bench::embed_text`).
    #[wasm_bindgen(js_name = embedText)]
    pub fn embed_text(&self, files: JsValue, sentences: Vec<String>) -> Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move {
            let name = get(&files, "name")
                .as_string()
                .unwrap_or_else(|| "model".into());
            let named = named_files(&get(&files, "files"), "model: `files`")?;
            let kind = Some(crate::session::ModelKind::Text);
            let files =
                crate::session::ModelFiles::from_named(&name, named, kind).map_err(js_err)?;
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
        let spec: BenchSpec =
            serde_wasm_bindgen::from_value(spec).map_err(|e| js_err(format!("bench: {e}")))?;
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
