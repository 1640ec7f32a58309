//! Compute device selection: WebGPU in the browser, a native GPU when asked, the CPU otherwise.
//!
//! Whatever is chosen is reported back as a [`DeviceInfo`] — backend, adapter and, when a GPU
//! was wanted but not obtained, the reason — so the page and the CLI can say what they run on.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// What the caller asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// Browser: WebGPU, falling back to the CPU backend (with the reason). Native: the CPU.
    #[default]
    Auto,
    /// WebGPU in the browser, wgpu (Vulkan/Metal/DX12) natively; an error if there is none.
    Gpu,
    /// The pure-Rust CPU backend (burn's `flex`), also available in wasm.
    Cpu,
}

impl std::str::FromStr for DeviceChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(Self::Auto),
            "gpu" | "webgpu" | "wgpu" => Ok(Self::Gpu),
            "cpu" => Ok(Self::Cpu),
            other => Err(Error::Device(format!(
                "unknown device '{other}': expected auto, gpu or cpu"
            ))),
        }
    }
}

/// Which backend runs the tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// WebGPU through the browser.
    Webgpu,
    /// Native wgpu (Vulkan, Metal or DX12).
    Wgpu,
    /// burn's pure-Rust CPU backend.
    Cpu,
}

/// The GPU adapter in use, as far as the platform tells.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AdapterReport {
    /// Vendor ("google", "nvidia", ...); in browsers from `GPUAdapterInfo.vendor`.
    pub vendor: String,
    /// Architecture ("swiftshader", "ampere", ...) where the browser reports one.
    pub architecture: String,
    /// Human-readable device name or description.
    pub description: String,
    /// Graphics API underneath ("browser-webgpu", "vulkan", ...).
    pub api: String,
    /// Driver, natively.
    pub driver: String,
    /// True for a software adapter (SwiftShader, lavapipe, WARP).
    pub software: bool,
}

/// What was selected, and why when it is not what was asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// The backend running the tensors.
    pub backend: BackendKind,
    /// The adapter, for GPU backends.
    pub adapter: Option<AdapterReport>,
    /// Why the GPU was not used, when `auto` fell back to the CPU.
    pub fallback_reason: Option<String>,
    /// The largest buffer the GPU device takes, in bytes: the smaller of its `maxBufferSize`
    /// and `maxStorageBufferBindingSize` (no single tensor can be larger).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_buffer_bytes: Option<u64>,
}

impl DeviceInfo {
    fn cpu(fallback_reason: Option<String>) -> Self {
        Self {
            backend: BackendKind::Cpu,
            adapter: None,
            fallback_reason,
            max_buffer_bytes: None,
        }
    }

    /// One line for logs and the CLI.
    pub fn summary(&self) -> String {
        let mut line = match (&self.backend, &self.adapter) {
            (BackendKind::Cpu, _) => "cpu (burn flex)".to_string(),
            (kind, Some(a)) => format!(
                "{} adapter: vendor={} architecture={} description={} api={}{}",
                if *kind == BackendKind::Webgpu {
                    "webgpu"
                } else {
                    "wgpu"
                },
                a.vendor,
                a.architecture,
                a.description,
                a.api,
                if a.software { " (software)" } else { "" }
            ),
            (kind, None) => format!("{kind:?}"),
        };
        if let Some(max) = self.max_buffer_bytes {
            line.push_str(&format!("; largest buffer {} MiB", max >> 20));
        }
        if let Some(reason) = &self.fallback_reason {
            line.push_str(&format!("; GPU not used: {reason}"));
        }
        line
    }
}

/// A selected device, ready for tensors, with its report.
#[derive(Debug, Clone)]
pub struct Selected {
    /// The burn device (without autodiff; training wraps it).
    pub device: Device,
    /// What it is.
    pub info: DeviceInfo,
}

/// The GPU runtime can be registered once per process (a second registration fails), so the
/// first successful selection is kept and handed out again.
static GPU: std::sync::Mutex<Option<Selected>> = std::sync::Mutex::new(None);

/// Select a device. Async because WebGPU adapters can only be requested asynchronously in a
/// browser; natively it completes at once.
pub async fn select(choice: DeviceChoice) -> Result<Selected> {
    match choice {
        DeviceChoice::Cpu => Ok(cpu(None)),
        DeviceChoice::Gpu => gpu_once().await,
        DeviceChoice::Auto if cfg!(target_arch = "wasm32") => match gpu_once().await {
            Ok(selected) => Ok(selected),
            Err(Error::Device(reason)) => Ok(cpu(Some(reason))),
            Err(err) => Err(err),
        },
        DeviceChoice::Auto => Ok(cpu(None)),
    }
}

async fn gpu_once() -> Result<Selected> {
    if let Some(selected) = GPU.lock().map_err(|_| poisoned())?.clone() {
        return Ok(selected);
    }
    let selected = gpu().await?;
    *GPU.lock().map_err(|_| poisoned())? = Some(selected.clone());
    Ok(selected)
}

/// The largest buffer `device` takes, when it is the selected GPU (None on the CPU).
pub fn max_buffer(device: &Device) -> Option<u64> {
    let selected = GPU.lock().ok()?;
    let gpu = selected.as_ref()?;
    (gpu.device == device.clone().inner()).then_some(gpu.info.max_buffer_bytes)?
}

/// The smaller of the device's two buffer limits.
fn buffer_limit(limits: &burn::tensor::wgpu::wgpu::Limits) -> u64 {
    limits
        .max_buffer_size
        .min(limits.max_storage_buffer_binding_size)
}

fn poisoned() -> Error {
    Error::Device("the GPU device registry was poisoned by an earlier panic".into())
}

fn cpu(fallback_reason: Option<String>) -> Selected {
    Selected {
        device: Device::flex(),
        info: DeviceInfo::cpu(fallback_reason),
    }
}

#[cfg(not(target_arch = "wasm32"))]
async fn gpu() -> Result<Selected> {
    let (device, setup) = Device::wgpu_options()
        .init_with_setup()
        .map_err(|err| Error::Device(format!("no native GPU through wgpu: {err}")))?;
    let info = setup.adapter.get_info();
    let max_buffer_bytes = Some(buffer_limit(&setup.device.limits()));
    let software = matches!(info.device_type, burn::tensor::wgpu::wgpu::DeviceType::Cpu);
    Ok(Selected {
        device,
        info: DeviceInfo {
            backend: BackendKind::Wgpu,
            adapter: Some(AdapterReport {
                vendor: format!("{:#06x}", info.vendor),
                architecture: String::new(),
                description: info.name,
                api: format!("{:?}", info.backend).to_lowercase(),
                driver: format!("{} {}", info.driver, info.driver_info)
                    .trim()
                    .to_string(),
                software,
            }),
            fallback_reason: None,
            max_buffer_bytes,
        },
    })
}

#[cfg(target_arch = "wasm32")]
async fn gpu() -> Result<Selected> {
    // Ask the browser first: it says *why* there is no GPU (no navigator.gpu, no adapter), and
    // reports vendor/architecture, which wgpu's web backend does not pass through.
    let adapter = web_adapter::probe().await.map_err(Error::Device)?;
    let (device, setup) = Device::wgpu_options()
        .init_with_setup_async()
        .await
        .map_err(|err| Error::Device(format!("WebGPU device could not be created: {err}")))?;
    Ok(Selected {
        device,
        info: DeviceInfo {
            backend: BackendKind::Webgpu,
            adapter: Some(adapter),
            fallback_reason: None,
            max_buffer_bytes: Some(buffer_limit(&setup.device.limits())),
        },
    })
}

#[cfg(target_arch = "wasm32")]
mod web_adapter {
    use js_sys::{Function, Promise, Reflect};
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;

    use super::AdapterReport;

    fn get(target: &JsValue, key: &str) -> JsValue {
        Reflect::get(target, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
    }

    fn string(target: &JsValue, key: &str) -> String {
        get(target, key).as_string().unwrap_or_default()
    }

    /// Request an adapter from `navigator.gpu` (window or worker) and read its info.
    pub async fn probe() -> Result<AdapterReport, String> {
        let navigator = get(&js_sys::global(), "navigator");
        let gpu = get(&navigator, "gpu");
        if gpu.is_undefined() || gpu.is_null() {
            return Err("this browser exposes no WebGPU (navigator.gpu is missing)".into());
        }
        let request: Function = get(&gpu, "requestAdapter")
            .dyn_into()
            .map_err(|_| "navigator.gpu.requestAdapter is not a function".to_string())?;
        let options = js_sys::Object::new();
        let _ = Reflect::set(
            &options,
            &"powerPreference".into(),
            &"high-performance".into(),
        );
        let promise: Promise = request
            .call1(&gpu, &options)
            .map_err(|err| format!("requestAdapter threw: {err:?}"))?
            .dyn_into()
            .map_err(|_| "requestAdapter did not return a promise".to_string())?;
        let adapter = JsFuture::from(promise)
            .await
            .map_err(|err| format!("requestAdapter failed: {err:?}"))?;
        if adapter.is_null() || adapter.is_undefined() {
            return Err(
                "navigator.gpu.requestAdapter() returned no adapter (WebGPU disabled or this GPU is blocklisted)"
                    .into(),
            );
        }
        let info = get(&adapter, "info");
        let software = get(&adapter, "isFallbackAdapter")
            .as_bool()
            .unwrap_or(false)
            || get(&info, "isFallbackAdapter").as_bool().unwrap_or(false)
            || string(&info, "architecture") == "swiftshader";
        Ok(AdapterReport {
            vendor: string(&info, "vendor"),
            architecture: string(&info, "architecture"),
            description: string(&info, "description"),
            api: "browser-webgpu".into(),
            driver: String::new(),
            software,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choice_parses_and_names_bad_input() {
        assert_eq!("gpu".parse::<DeviceChoice>().unwrap(), DeviceChoice::Gpu);
        let err = "tpu".parse::<DeviceChoice>().unwrap_err().to_string();
        assert!(err.contains("'tpu'"), "{err}");
    }

    #[test]
    fn auto_is_cpu_natively_and_says_so() {
        let selected = futures_lite::future::block_on(select(DeviceChoice::Auto)).unwrap();
        assert_eq!(selected.info.backend, BackendKind::Cpu);
        assert!(selected.info.fallback_reason.is_none());
        assert_eq!(selected.info.summary(), "cpu (burn flex)");
    }
}
