//! What the command line prints: the core's descriptions, and a progress bar on a terminal.

use std::io::{IsTerminal, Write};

use tabtune::session::Event;
use tabtune::train::{Control, Progress};

/// Progress: a redrawn bar with ETA on a terminal, plain lines (epochs, every 10% of the
/// features) when not.
pub struct Bar {
    unit: &'static str,
    tty: bool,
    last_features: usize,
}

impl Bar {
    pub fn new(unit: &'static str) -> Self {
        let tty = std::io::stderr().is_terminal();
        Self {
            unit,
            tty,
            last_features: 0,
        }
    }

    fn clear(&self) {
        if self.tty {
            eprint!("\r\x1b[2K");
        }
    }

    /// Print one session event (checkpoints are the caller's).
    pub fn event(&mut self, event: &Event) -> Control {
        match event {
            Event::Progress(p) => self.progress(p),
            Event::Warning(w) => {
                self.clear();
                println!("{w}");
            }
            Event::PhaseEnd(_) | Event::Checkpoint(_) => {}
        }
        Control::Continue
    }

    fn progress(&mut self, event: &Progress) {
        let Some(text) = event.describe(self.unit) else {
            return;
        };
        let (done, total) = match event {
            Progress::Features { done, total, .. } => (*done, *total),
            Progress::Step {
                step, total_steps, ..
            } => (*step, *total_steps),
            _ => {
                self.clear();
                return println!("{text}");
            }
        };
        if self.tty {
            let filled = done * 30 / total.max(1);
            eprint!(
                "\r\x1b[2K[{}{}] {text}",
                "#".repeat(filled),
                "-".repeat(30 - filled)
            );
            let _ = std::io::stderr().flush();
        } else if let Progress::Features { .. } = event {
            let tenth = |n: usize| n * 10 / total.max(1);
            if done > 0 && (tenth(done) > tenth(self.last_features) || done == total) {
                println!("{text}");
            }
            self.last_features = done;
        }
    }
}
