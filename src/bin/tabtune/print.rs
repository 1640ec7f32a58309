//! What the command line prints: data and model lines, the progress bar, the report.

use std::io::{IsTerminal, Write};

use tabtune::data::Summary;
use tabtune::session::{Event, Scored};
use tabtune::train::{Control, Progress, RunReport};

/// "data: 25 images in 3 classes from DIR", a line per class, then what was left out.
pub fn summary(summary: &Summary, from: &std::path::Path) {
    let unit = if summary.kind == "text" {
        "texts"
    } else {
        "images"
    };
    println!(
        "data: {} {unit} in {} classes from {}",
        summary.total,
        summary.classes.len(),
        from.display()
    );
    for (class, count) in summary.classes.iter().zip(&summary.counts) {
        println!("  {class}: {count}");
    }
    for (at, why) in &summary.skipped {
        println!("  skipped {at}: {why}");
    }
}

/// "label 97.1%, label 2.9%" for the `top` most probable classes.
pub fn top(scored: &[Scored], top: usize) -> String {
    scored
        .iter()
        .take(top.max(1))
        .map(|s| format!("{} {:.1}%", s.label, s.probability * 100.0))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Feature throughput, each phase, the metrics table.
pub fn report(report: &RunReport, unit: &str) {
    if report.truncated > 0 {
        println!(
            "truncated: {} inputs were cut at the maximum length",
            report.truncated
        );
    }
    if let Some((n, s)) = report.features {
        println!(
            "features: {n} {unit} in {s:.1} s ({:.1} {unit}/s)",
            n as f64 / s
        );
    }
    for phase in &report.phases {
        println!(
            "{}: {} train / {} val {unit}, {} steps in {:.2} s ({:.1} {unit}/s), kept epoch {}, val accuracy {}{}",
            phase.phase,
            phase.train_rows,
            phase.val_rows,
            phase.losses.len(),
            phase.seconds,
            phase.throughput,
            phase.best_epoch,
            phase
                .best_val_accuracy()
                .map_or("-".into(), |a| format!("{:.2}%", a * 100.0)),
            if phase.stopped_early {
                " (stopped early)"
            } else {
                ""
            }
        );
    }
    if let Some(m) = &report.metrics {
        print!("{}", m.table());
    }
}

/// Progress: a redrawn bar with ETA on a terminal, plain lines (epochs, every 10% of the
/// features) when not.
pub struct Bar {
    unit: &'static str,
    tty: bool,
    last_features: usize,
}

impl Bar {
    pub fn new(unit: &'static str) -> Self {
        Self {
            unit,
            tty: std::io::stderr().is_terminal(),
            last_features: 0,
        }
    }

    pub fn clear(&mut self) {
        if self.tty {
            eprint!("\r\x1b[2K");
        }
    }

    fn line(&mut self, label: &str, done: usize, total: usize, detail: &str) {
        let width = 30;
        let filled = (done * width) / total.max(1);
        eprint!(
            "\r\x1b[2K{label} [{}{}] {done}/{total} {detail}",
            "#".repeat(filled),
            "-".repeat(width - filled)
        );
        let _ = std::io::stderr().flush();
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
        match event {
            Progress::Features {
                done,
                total,
                throughput,
                eta_s,
            } => {
                let detail = format!("{throughput:.1} {}/s, ETA {}", self.unit, eta(*eta_s));
                if self.tty {
                    self.line("features", *done, *total, &detail);
                } else if *done > 0
                    && (done * 10 / total.max(&1) > self.last_features * 10 / total.max(&1)
                        || done == total)
                {
                    println!("features {done}/{total}: {detail}");
                }
                self.last_features = *done;
            }
            Progress::Step {
                phase,
                epoch,
                step,
                total_steps,
                loss,
                throughput,
                eta_s,
            } if self.tty => {
                let detail = format!(
                    "epoch {epoch}, loss {loss:.4}, {throughput:.1}/s, ETA {}",
                    eta(*eta_s)
                );
                self.line(phase, *step, *total_steps, &detail);
            }
            Progress::Step { .. } | Progress::Saved(_) => {}
            Progress::Epoch {
                phase,
                epoch,
                train_loss,
                val_accuracy,
            } => {
                self.clear();
                let acc = val_accuracy.map_or("-".into(), |a| format!("{:.2}%", a * 100.0));
                println!("{phase} epoch {epoch}: loss {train_loss:.4}, val accuracy {acc}");
            }
        }
    }
}

fn eta(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "-".into();
    }
    let s = seconds.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}
