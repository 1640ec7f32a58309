//! The fuzz corpus `make fuzz` keeps (fuzz/corpus/<target>/: the seeds of
//! scripts/fuzz_seeds.py and every input libFuzzer found new code with), replayed through the
//! same entry points (tabtune::fuzz): none may panic, and none may take long.
#![cfg(not(target_arch = "wasm32"))]

use std::time::{Duration, Instant};

#[test]
fn the_fuzz_corpus_replays_without_a_panic_or_a_hang() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut slowest = (Duration::ZERO, String::new());
    for (target, run) in tabtune::fuzz::TARGETS {
        let mut inputs: Vec<_> = std::fs::read_dir(root.join(target))
            .unwrap_or_else(|e| panic!("fuzz/corpus/{target}: {e}"))
            .map(|e| e.unwrap().path())
            .collect();
        inputs.sort();
        assert!(!inputs.is_empty(), "fuzz/corpus/{target} is empty");
        let start = Instant::now();
        for input in &inputs {
            let bytes = std::fs::read(input).unwrap();
            let one = Instant::now();
            run(&bytes);
            let took = one.elapsed();
            if took > slowest.0 {
                slowest = (took, input.display().to_string());
            }
        }
        println!(
            "{target}: {} inputs in {:.2?}",
            inputs.len(),
            start.elapsed()
        );
    }
    println!("slowest: {} in {:.2?}", slowest.1, slowest.0);
    // libFuzzer's own limit for a hang is 1,200 s; an input that takes seconds is a bug here.
    assert!(
        slowest.0 < Duration::from_secs(5),
        "{} took {:.2?}",
        slowest.1,
        slowest.0
    );
}
