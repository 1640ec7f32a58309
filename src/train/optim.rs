//! The optimisers a phase steps with (SGD with momentum and L2 weight decay, AdamW) with their
//! state in tabtune's hands: kept per parameter path, so an epoch's checkpoint can read it back
//! with awaited reads (the browser cannot read the GPU synchronously, which burn's optimiser
//! records do) and a resumed run can put it back on a freshly loaded model. The arithmetic is
//! burn 0.22's `Sgd`/`AdamW`, operation for operation, on the parameters' inner tensors.

use std::collections::{BTreeMap, HashMap};

use burn::module::{Module, ModuleMapper, Param};
use burn::optim::GradientsParams;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::prelude::*;

use super::recipe::{OptimizerKind, PhaseSpec};
use super::snapshot::{Named, read_named, write_named};
use crate::Result;

#[derive(Debug, Clone, Copy)]
enum Rule {
    /// Velocity `v = g + momentum * v` (dampening 0, not Nesterov) of `g = grad + decay * w`.
    Sgd { momentum: f32, decay: Option<f32> },
    /// Adam's bias-corrected moments, weights decayed by `lr * decay` (decoupled).
    AdamW { decay: f32 },
}

// burn's AdamWConfig defaults, which the recipe does not change.
const BETA_1: f32 = 0.9;
const BETA_2: f32 = 0.999;
const EPSILON: f32 = 1e-5;

/// One parameter's state, flattened (the rules are elementwise).
#[derive(Clone)]
struct State {
    /// Steps taken.
    time: usize,
    /// SGD's velocity, Adam's first moment.
    first: Tensor<1>,
    /// Adam's second moment.
    second: Option<Tensor<1>>,
}

/// A phase's optimiser and its per-parameter state.
pub(crate) struct Optimizer {
    rule: Rule,
    states: HashMap<String, State>,
}

impl Optimizer {
    pub fn new(spec: &PhaseSpec) -> Self {
        let rule = match spec.optimizer {
            OptimizerKind::Sgd => Rule::Sgd {
                momentum: spec.momentum as f32,
                decay: (spec.weight_decay > 0.0).then_some(spec.weight_decay),
            },
            OptimizerKind::Adamw => Rule::AdamW {
                decay: spec.weight_decay,
            },
        };
        Self {
            rule,
            states: HashMap::new(),
        }
    }

    /// Update every parameter of `model` that has a gradient in `grads`, at its learning rate.
    pub fn step<M: Module>(
        &mut self,
        lrs: &ModuleLearningRate,
        model: M,
        grads: GradientsParams,
    ) -> M {
        model.map(&mut Stepper {
            rule: self.rule,
            states: &mut self.states,
            grads,
            lrs,
            path: Vec::new(),
        })
    }

    /// The state as safetensors bytes (read back with awaited reads).
    pub async fn save(&self) -> Result<Vec<u8>> {
        let mut named = Vec::new();
        let mut times = BTreeMap::new();
        let mut paths: Vec<&String> = self.states.keys().collect();
        paths.sort();
        for path in paths {
            let state = &self.states[path];
            times.insert(path.clone(), state.time.to_string());
            named.push((format!("{path}/first"), state.first.clone()));
            if let Some(second) = &state.second {
                named.push((format!("{path}/second"), second.clone()));
            }
        }
        write_named(named, times).await
    }

    /// Put back a state `save` wrote, its tensors on `device` (the parameters' inner device).
    pub fn load(&mut self, bytes: &[u8], device: &Device) -> Result<()> {
        let Named {
            mut tensors,
            metadata,
        } = read_named(bytes, "the optimiser state", device)?;
        self.states.clear();
        for (path, time) in metadata {
            let bad = || crate::Error::Data(format!("the optimiser state of {path} is incomplete"));
            let first = tensors.remove(&format!("{path}/first")).ok_or_else(bad)?;
            let second = tensors.remove(&format!("{path}/second"));
            if matches!(self.rule, Rule::AdamW { .. }) != second.is_some() {
                return Err(bad());
            }
            let time = time.parse().map_err(|_| bad())?;
            self.states.insert(
                path,
                State {
                    time,
                    first,
                    second,
                },
            );
        }
        Ok(())
    }
}

impl Rule {
    /// New weights and state from weights `w`, gradient `g` and the previous state.
    fn apply(
        self,
        lr: f64,
        w: Tensor<1>,
        g: Tensor<1>,
        state: Option<State>,
    ) -> (Tensor<1>, State) {
        match self {
            Rule::Sgd { momentum, decay } => {
                let g = match decay {
                    Some(decay) => w.clone().mul_scalar(decay).add(g),
                    None => g,
                };
                let (v, time) = match state {
                    Some(s) => (g.add(s.first.mul_scalar(momentum)), s.time + 1),
                    None => (g, 1),
                };
                let w = w - v.clone().mul_scalar(lr);
                (
                    w,
                    State {
                        time,
                        first: v,
                        second: None,
                    },
                )
            }
            Rule::AdamW { decay } => {
                let (m, v, time) = match state {
                    Some(State {
                        time,
                        first,
                        second: Some(second),
                    }) => (
                        first
                            .mul_scalar(BETA_1)
                            .add(g.clone().mul_scalar(1.0 - BETA_1)),
                        second
                            .mul_scalar(BETA_2)
                            .add(g.square().mul_scalar(1.0 - BETA_2)),
                        time + 1,
                    ),
                    _ => (
                        g.clone().mul_scalar(1.0 - BETA_1),
                        g.square().mul_scalar(1.0 - BETA_2),
                        1,
                    ),
                };
                let t = time as i32;
                let m_hat = m.clone().div_scalar(1f32 - BETA_1.powi(t));
                let v_hat = v.clone().div_scalar(1f32 - BETA_2.powi(t));
                let delta = m_hat.div(v_hat.sqrt().add_scalar(EPSILON));
                let rate = lr * decay as f64;
                let decayed = if rate == 0.0 {
                    w
                } else {
                    w.mul_scalar(1.0 - rate)
                };
                let w = decayed - delta.mul_scalar(lr);
                (
                    w,
                    State {
                        time,
                        first: m,
                        second: Some(v),
                    },
                )
            }
        }
    }
}

struct Stepper<'a> {
    rule: Rule,
    states: &'a mut HashMap<String, State>,
    grads: GradientsParams,
    lrs: &'a ModuleLearningRate,
    path: Vec<String>,
}

impl ModuleMapper for Stepper<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let path = self.path.join(".");
        let lr = self.lrs.lr_from_param(id, Some(&path));
        let require_grad = tensor.is_require_grad();
        let strategy = tensor.gradient_checkpointing_strategy();
        let shape = tensor.shape();
        let n = shape.num_elements();
        let w = tensor.inner().reshape([n]);
        let (w, state) = self
            .rule
            .apply(lr, w, grad.reshape([n]), self.states.remove(&path));
        self.states.insert(path, state);
        let mut updated = Tensor::from_inner(w.reshape(shape));
        if let Some(strategy) = strategy {
            updated = updated.with_gradient_checkpointing_strategy(strategy);
        }
        if require_grad {
            updated = updated.require_grad();
        }
        Param::from_mapped_value(id, updated, mapper)
    }
}
