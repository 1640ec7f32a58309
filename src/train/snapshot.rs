//! What a phase needs to go on after an epoch, as bytes: the trained parameters (by module
//! path), the kept epoch's, the optimiser state and the loop's own state. Written after every
//! epoch; a resumed run puts it back and ends with the weights of a run that never stopped.
//! Tensors are read back with awaited reads (the browser cannot read the GPU synchronously).

use std::collections::{BTreeMap, HashMap};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::TensorData;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use super::run::{PhaseReport, Predictions};
use crate::{Error, Result};

/// The loop's state after an epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoopState {
    /// The phase ("head" or "finetune").
    pub phase: String,
    /// Epochs done (from 1).
    pub epoch: usize,
    /// The phase's report so far (its losses give the schedule's position).
    pub report: PhaseReport,
    /// Best validation accuracy so far.
    pub best: Option<f64>,
    /// Epochs since the best one (early stopping).
    pub since_best: usize,
    /// The kept epoch's validation (labels, predictions).
    pub best_predictions: Option<Predictions>,
    /// Rows trained on so far (throughput).
    pub rows_done: usize,
}

/// A phase's state after an epoch: all a run needs to continue with the next one.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochState {
    /// The loop's state.
    pub state: LoopState,
    /// The trained parameters, by module path (safetensors).
    pub model: Vec<u8>,
    /// The kept epoch's parameters when it is not the last one.
    pub kept: Option<Vec<u8>>,
    /// The optimiser's state (safetensors).
    pub optimizer: Vec<u8>,
}

const STATE: &str = "epoch.json";
const MODEL: &str = "epoch-model.safetensors";
const KEPT: &str = "epoch-kept.safetensors";
const OPTIMIZER: &str = "epoch-optimizer.safetensors";

impl EpochState {
    /// Whether a checkpoint's file `name` is part of the state (not of the model).
    pub fn is_state_file(name: &str) -> bool {
        [STATE, MODEL, KEPT, OPTIMIZER].contains(&name)
    }

    /// The state as named files (beside the model files of a checkpoint).
    pub fn files(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let state =
            serde_json::to_vec_pretty(&self.state).map_err(|e| Error::Data(e.to_string()))?;
        let mut files = vec![
            (STATE.to_string(), state),
            (MODEL.to_string(), self.model.clone()),
            (OPTIMIZER.to_string(), self.optimizer.clone()),
        ];
        if let Some(kept) = &self.kept {
            files.push((KEPT.to_string(), kept.clone()));
        }
        Ok(files)
    }

    /// The state among a checkpoint's `files`, if it holds one (a checkpoint taken at the
    /// phase boundary does not).
    pub fn from_files(files: &[(String, Vec<u8>)]) -> Result<Option<Self>> {
        let find = |name: &str| {
            files
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, b)| b.clone())
        };
        let Some(state) = find(STATE) else {
            return Ok(None);
        };
        let state: LoopState = serde_json::from_slice(&state)
            .map_err(|e| Error::Data(format!("checkpoint {STATE}: {e}")))?;
        let need = |name: &str| {
            find(name).ok_or_else(|| {
                Error::Data(format!(
                    "the checkpoint has {STATE} but no {name}: it is incomplete"
                ))
            })
        };
        Ok(Some(Self {
            model: need(MODEL)?,
            optimizer: need(OPTIMIZER)?,
            kept: find(KEPT),
            state,
        }))
    }
}

/// Named tensors and string metadata read from safetensors bytes.
pub(crate) struct Named {
    pub tensors: HashMap<String, Tensor<1>>,
    pub metadata: BTreeMap<String, String>,
}

/// `tensors` (flattened) and `metadata` as safetensors bytes, every tensor read back awaited.
pub(crate) async fn write_named(
    tensors: Vec<(String, Tensor<1>)>,
    metadata: BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    let mut data = Vec::with_capacity(tensors.len());
    for (name, tensor) in tensors {
        let values = tensor
            .into_data_async()
            .await
            .map_err(crate::error::compute)?
            .convert::<f32>();
        data.push((name, values));
    }
    let tensors: Vec<_> = (data.iter())
        .map(|(name, values)| (name.clone(), vec![values.num_elements()], values.as_bytes()))
        .collect();
    let metadata = (!metadata.is_empty()).then(|| metadata.into_iter().collect());
    crate::weights::f32_safetensors(&tensors, metadata).map_err(Error::Data)
}

/// What `write_named` wrote, the tensors on `device`; `what` names the bytes in errors.
pub(crate) fn read_named(bytes: &[u8], what: &str, device: &Device) -> Result<Named> {
    let bad = |e: safetensors::SafeTensorError| Error::Data(format!("{what}: {e}"));
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(bad)?;
    let file = SafeTensors::deserialize(bytes).map_err(bad)?;
    let mut tensors = HashMap::new();
    for (name, view) in file.iter() {
        if view.dtype() != Dtype::F32 || view.shape().len() != 1 {
            return Err(Error::Data(format!(
                "{what}: {name} is not a flat f32 tensor"
            )));
        }
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let n = values.len();
        tensors.insert(
            name.to_string(),
            Tensor::from_data(TensorData::new(values, [n]), device),
        );
    }
    let metadata = header
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    Ok(Named { tensors, metadata })
}

/// Module paths of the parameters of `model` that train (require a gradient).
pub(crate) fn trainable_paths<M: Module>(model: &M) -> Vec<String> {
    let mut visitor = Collect {
        path: Vec::new(),
        only: None,
        found: Vec::new(),
        trainable: true,
    };
    model.visit(&mut visitor);
    visitor.found.into_iter().map(|(path, _)| path).collect()
}

/// The parameters of `model` at `paths` as safetensors bytes.
pub(crate) async fn save_params<M: Module>(model: &M, paths: &[String]) -> Result<Vec<u8>> {
    let mut visitor = Collect {
        path: Vec::new(),
        only: Some(paths),
        found: Vec::new(),
        trainable: false,
    };
    model.visit(&mut visitor);
    write_named(visitor.found, BTreeMap::new()).await
}

/// `model` with the parameters `save_params` wrote put back (each keeps its identity and
/// whether it trains); every saved one must find its parameter, of the same size.
pub(crate) fn load_params<M: Module>(model: M, bytes: &[u8], what: &str) -> Result<M> {
    let device = model
        .devices()
        .first()
        .cloned()
        .ok_or_else(|| Error::Data(format!("{what}: the model has no device")))?;
    let mut put = Put {
        path: Vec::new(),
        tensors: read_named(bytes, what, &device)?.tensors,
        errors: Vec::new(),
    };
    let model = model.map(&mut put);
    put.errors.extend(
        put.tensors
            .keys()
            .map(|name| format!("{name} is not a parameter of this model")),
    );
    match put.errors.is_empty() {
        true => Ok(model),
        false => Err(Error::Data(format!(
            "{what} does not fit the model (another model or recipe?): {}",
            put.errors.join("; ")
        ))),
    }
}

struct Collect<'a> {
    path: Vec<String>,
    only: Option<&'a [String]>,
    found: Vec<(String, Tensor<1>)>,
    trainable: bool,
}

impl ModuleVisitor for Collect<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let path = self.path.join(".");
        let tensor = param.val();
        let wanted = match self.only {
            Some(only) => only.contains(&path),
            None => !self.trainable || tensor.is_require_grad(),
        };
        if wanted {
            self.found.push((path, tensor.flatten::<1>(0, D - 1)));
        }
    }
}

struct Put {
    path: Vec<String>,
    tensors: HashMap<String, Tensor<1>>,
    errors: Vec<String>,
}

impl ModuleMapper for Put {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let path = self.path.join(".");
        let Some(saved) = self.tensors.remove(&path) else {
            return param;
        };
        let (id, tensor, mapper) = param.consume();
        let shape = tensor.shape();
        if saved.dims()[0] != shape.num_elements() {
            self.errors.push(format!(
                "{path} has {} values, the model's has {}",
                saved.dims()[0],
                shape.num_elements()
            ));
            return Param::from_mapped_value(id, tensor, mapper);
        }
        let mut value = saved.to_device(&tensor.device()).reshape(shape);
        if tensor.is_require_grad() {
            value = value.require_grad();
        }
        Param::from_mapped_value(id, value, mapper)
    }
}
