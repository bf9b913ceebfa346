//! Progress bars for long runs (drawn on stderr only when it is a terminal) and Ctrl-C.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `total` steps; hidden when stderr is not a terminal (scripts, CI, tests).
pub fn bar(total: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template("{msg} {wide_bar} {human_pos}/{human_len} steps, eta {eta}")
            .expect("a valid template"),
    );
    pb.set_message(what.to_string());
    pb
}

/// A flag set by Ctrl-C: long runs poll it and stop, keeping what they computed.
pub fn ctrl_c_flag() -> Arc<AtomicBool> {
    let stopped = Arc::new(AtomicBool::new(false));
    let flag = stopped.clone();
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    stopped
}
