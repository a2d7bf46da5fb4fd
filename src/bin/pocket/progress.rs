//! Progress bars on stderr for commands that move tensor data (hidden when stderr is not a terminal,
//! and for work that ends within a second: indicatif draws nothing before its first tick).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar counting `total` bytes (0 when not known yet: [`update`] sets it).
pub fn bytes_bar(total: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(what.to_string());
    pb
}

/// Moves the bar to `done` of `total` bytes, resizing it if the total changed.
pub fn update(bar: &ProgressBar, done: u64, total: u64) {
    if bar.length() != Some(total) {
        bar.set_length(total);
    }
    bar.set_position(done);
}

/// A bar counting `total` steps of some unit (chunks, passes), with an estimate of the time left.
pub fn steps_bar(total: u64, what: &str, unit: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(&format!(
        "{{msg}} [{{bar:40}}] {unit} {{pos}}/{{len}} eta {{eta}}"
    )) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(what.to_string());
    pb
}
