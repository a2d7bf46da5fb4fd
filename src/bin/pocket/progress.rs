//! Progress bars on stderr for commands that move tensor data (hidden when stderr is not a terminal,
//! with `-q`, and for work that ends within a second: indicatif draws nothing before its first tick).
//! Every bar has an estimate of the time left, "?" until there is a rate to estimate it from.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

fn target() -> ProgressDrawTarget {
    if crate::fmt::look().quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    }
}

/// The time left as "1m05s", or "?" before anything is done (indicatif would say "0s").
fn eta(state: &ProgressState, w: &mut dyn std::fmt::Write) {
    let secs = state.eta().as_secs();
    if state.pos() == 0 || state.elapsed().as_millis() < 200 {
        let _ = w.write_str("?");
    } else if secs >= 3600 {
        let _ = write!(w, "{}h{:02}m", secs / 3600, secs / 60 % 60);
    } else if secs >= 60 {
        let _ = write!(w, "{}m{:02}s", secs / 60, secs % 60);
    } else {
        let _ = write!(w, "{secs}s");
    }
}

fn style(template: &str) -> Option<ProgressStyle> {
    ProgressStyle::with_template(template)
        .ok()
        .map(|s| s.with_key("eta", eta).progress_chars("=> "))
}

/// A bar counting `total` bytes (0 when not known yet: [`update`] sets it).
pub fn bytes_bar(total: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(total), target());
    if let Some(s) = style("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}") {
        pb.set_style(s);
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
    let pb = ProgressBar::with_draw_target(Some(total), target());
    if let Some(s) = style(&format!(
        "{{msg}} [{{bar:30}}] {unit} {{pos}}/{{len}} eta {{eta}}"
    )) {
        pb.set_style(s);
    }
    pb.set_message(what.to_string());
    pb
}

/// A bar over `total` bytes of tensors, naming the tensor in work (requantize).
pub fn tensors_bar(total: u64) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(total), target());
    if let Some(s) =
        style("[{elapsed}] [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {wide_msg}")
    {
        pb.set_style(s);
    }
    pb
}
