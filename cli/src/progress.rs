//! Progress on stderr, drawn by indicatif: a bar redrawn in place at most ten
//! times a second on a terminal, a plain line every few seconds otherwise
//! (logs, CI), where a redrawn bar would only be noise.

use indicatif::{
    ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressState, ProgressStyle, TermLike,
};
use std::fmt;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a plain line is written when stderr is not a terminal.
const LINE_PERIOD: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Redrawn in place on a terminal.
    Bar,
    /// One line per period, for a stderr that is a file or a pipe.
    Lines,
}

pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// Progress of `label`, out of `total` when it is known.
    pub fn new(label: &'static str, total: Option<u64>) -> Self {
        if std::io::stderr().is_terminal() {
            Self::drawn_to(
                label,
                total,
                Style::Bar,
                ProgressDrawTarget::stderr_with_hz(10),
            )
        } else {
            let lines = Lines::new(Box::new(std::io::stderr()), LINE_PERIOD, Instant::now());
            Self::drawn_to(
                label,
                total,
                Style::Lines,
                ProgressDrawTarget::term_like_with_hz(Box::new(lines), 1),
            )
        }
    }

    fn drawn_to(
        label: &'static str,
        total: Option<u64>,
        style: Style,
        target: ProgressDrawTarget,
    ) -> Self {
        // A bar stays on its terminal line when done; plain lines need no end.
        let finish = match style {
            Style::Bar => ProgressFinish::AndLeave,
            Style::Lines => ProgressFinish::AndClear,
        };
        let bar = ProgressBar::with_draw_target(total, target)
            .with_style(progress_style(style, total.is_some()))
            .with_prefix(label)
            .with_finish(finish);
        Self { bar }
    }

    pub fn advance(&mut self, count: u64) {
        self.bar.inc(count);
    }

    /// Ends the bar's line (the summary follows on stdout).
    pub fn finish(&mut self) {
        self.bar.finish_using_style();
    }
}

/// `writing: [####....] 100/200 rows (50%), 50 rows/s`; without the bar in
/// plain lines, without the total and percentage when the total is unknown.
fn progress_style(style: Style, total_known: bool) -> ProgressStyle {
    let template = match (style, total_known) {
        (Style::Bar, true) => "{prefix}: [{bar:30}] {pos}/{len} rows ({percent}%), {rate}",
        (Style::Lines, true) => "{prefix}: {pos}/{len} rows ({percent}%), {rate}",
        (_, false) => "{prefix}: {pos} rows, {rate}",
    };
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("#.")
        .with_key("rate", |state: &ProgressState, out: &mut dyn fmt::Write| {
            let seconds = state.elapsed().as_secs_f64();
            let rate = if seconds > 0.0 {
                state.pos() as f64 / seconds
            } else {
                0.0
            };
            let _ = write!(out, "{rate:.0} rows/s");
        })
}

/// A stderr that is a file or a pipe, as indicatif's terminal: no cursor to
/// move, so each draw becomes one line, at most one a period.
struct Lines {
    period: Duration,
    state: Mutex<LinesState>,
}

struct LinesState {
    out: Box<dyn Write + Send>,
    /// The draw being written, until indicatif flushes it.
    line: String,
    last_written: Instant,
}

impl Lines {
    fn new(out: Box<dyn Write + Send>, period: Duration, now: Instant) -> Self {
        Self {
            period,
            state: Mutex::new(LinesState {
                out,
                line: String::new(),
                last_written: now,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LinesState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether a line may be written at `now`: a period after the last one.
    fn due(&self, state: &mut LinesState, now: Instant) -> bool {
        if now.duration_since(state.last_written) < self.period {
            return false;
        }
        state.last_written = now;
        true
    }
}

impl fmt::Debug for Lines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lines")
            .field("period", &self.period)
            .finish_non_exhaustive()
    }
}

impl TermLike for Lines {
    /// Wide enough that no line is wrapped.
    fn width(&self) -> u16 {
        500
    }

    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn write_line(&self, text: &str) -> std::io::Result<()> {
        self.write_str(text)?;
        self.flush()
    }

    fn write_str(&self, text: &str) -> std::io::Result<()> {
        self.state().line.push_str(text);
        Ok(())
    }

    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }

    /// Writes the draw as one line, when one is due. Progress is best
    /// effort: a closed stderr must not stop the work.
    fn flush(&self) -> std::io::Result<()> {
        let mut state = self.state();
        let drawn = std::mem::take(&mut state.line);
        let line = drawn.trim_matches(|c: char| c == '\r' || c.is_whitespace());
        if !line.is_empty() && self.due(&mut state, Instant::now()) {
            let _ = writeln!(state.out, "{line}");
            let _ = state.out.flush();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// What a `Lines` terminal wrote.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn last_line(&self) -> String {
            let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
            String::from_utf8_lossy(&bytes)
                .lines()
                .last()
                .unwrap_or_default()
                .to_owned()
        }
    }

    /// `label`'s progress in `style`, `done` rows after `elapsed`, as drawn.
    fn drawn(
        label: &'static str,
        total: Option<u64>,
        style: Style,
        done: u64,
        elapsed: Duration,
    ) -> String {
        let captured = Captured::default();
        let lines = Lines::new(Box::new(captured.clone()), Duration::ZERO, Instant::now());
        let mut progress = Progress::drawn_to(
            label,
            total,
            style,
            ProgressDrawTarget::term_like(Box::new(lines)),
        );
        progress.bar = progress.bar.with_elapsed(elapsed);
        progress.advance(done);
        progress.bar.tick();
        captured.last_line()
    }

    #[test]
    fn plain_lines_are_written_at_most_once_a_period() {
        let start = Instant::now();
        let lines = Lines::new(Box::new(Captured::default()), LINE_PERIOD, start);
        let mut state = lines.state();
        assert!(!lines.due(&mut state, start + Duration::from_secs(4)));
        assert!(lines.due(&mut state, start + Duration::from_secs(5)));
        assert!(!lines.due(&mut state, start + Duration::from_secs(9)));
        assert!(lines.due(&mut state, start + Duration::from_secs(10)));
    }

    #[test]
    fn renders_a_bar_on_a_terminal_and_plain_text_otherwise() {
        assert_eq!(
            drawn(
                "writing",
                Some(200),
                Style::Bar,
                100,
                Duration::from_secs(2)
            ),
            format!(
                "writing: [{}{}] 100/200 rows (50%), 50 rows/s",
                "#".repeat(15),
                ".".repeat(15)
            )
        );
        assert_eq!(
            drawn(
                "writing",
                Some(200),
                Style::Lines,
                100,
                Duration::from_secs(2)
            ),
            "writing: 100/200 rows (50%), 50 rows/s"
        );
        assert_eq!(
            drawn("validating", None, Style::Lines, 30, Duration::from_secs(3)),
            "validating: 30 rows, 10 rows/s"
        );
    }
}
