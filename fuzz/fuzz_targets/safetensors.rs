#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tabtune::fuzz::safetensors(data));
