//! Progress on stderr: a bar redrawn at most ten times a second on a
//! terminal, a plain line every few seconds otherwise (logs, CI).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

const BAR_WIDTH: usize = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Redrawn in place (`\r`) on a terminal.
    Bar,
    /// One line per period, for a stderr that is a file or a pipe.
    Lines,
}

impl Style {
    fn period(self) -> Duration {
        match self {
            Style::Bar => Duration::from_millis(100),
            Style::Lines => Duration::from_secs(5),
        }
    }
}

pub struct Progress {
    label: &'static str,
    total: Option<u64>,
    done: u64,
    started: Instant,
    last_drawn: Instant,
    style: Style,
    drawn: bool,
}

impl Progress {
    /// Progress of `label`, out of `total` when it is known.
    pub fn new(label: &'static str, total: Option<u64>) -> Self {
        let style = if std::io::stderr().is_terminal() {
            Style::Bar
        } else {
            Style::Lines
        };
        Self::with_style(label, total, style, Instant::now())
    }

    pub fn with_style(label: &'static str, total: Option<u64>, style: Style, now: Instant) -> Self {
        Self {
            label,
            total,
            done: 0,
            started: now,
            last_drawn: now,
            style,
            drawn: false,
        }
    }

    pub fn advance(&mut self, count: u64) {
        self.done += count;
        let now = Instant::now();
        if let Some(text) = self.due(now) {
            self.draw(&text);
        }
    }

    /// The text to draw now, if a period has passed since the last one.
    pub fn due(&mut self, now: Instant) -> Option<String> {
        if now.duration_since(self.last_drawn) < self.style.period() {
            return None;
        }
        self.last_drawn = now;
        Some(self.render(now))
    }

    /// Ends the bar's line (the summary follows on stdout).
    pub fn finish(&mut self) {
        if self.drawn && self.style == Style::Bar {
            let text = self.render(Instant::now());
            self.draw(&text);
            eprintln!();
        }
    }

    pub fn render(&self, now: Instant) -> String {
        let seconds = now.duration_since(self.started).as_secs_f64();
        let rate = if seconds > 0.0 {
            self.done as f64 / seconds
        } else {
            0.0
        };
        let counts = match self.total {
            Some(total) => {
                let fraction = if total == 0 {
                    1.0
                } else {
                    (self.done as f64 / total as f64).min(1.0)
                };
                let bar = match self.style {
                    Style::Bar => {
                        let filled = (fraction * BAR_WIDTH as f64) as usize;
                        format!(
                            "[{}{}] ",
                            "#".repeat(filled),
                            ".".repeat(BAR_WIDTH - filled)
                        )
                    }
                    Style::Lines => String::new(),
                };
                format!("{bar}{}/{total} rows ({:.0}%)", self.done, fraction * 100.0)
            }
            None => format!("{} rows", self.done),
        };
        format!("{}: {counts}, {rate:.0} rows/s", self.label)
    }

    fn draw(&mut self, text: &str) {
        self.drawn = true;
        let mut stderr = std::io::stderr().lock();
        // Progress is best effort: a closed stderr must not stop the work.
        let _ = match self.style {
            Style::Bar => write!(stderr, "\r{text}\x1b[K"),
            Style::Lines => writeln!(stderr, "{text}"),
        };
        let _ = stderr.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_at_most_once_a_period() {
        let start = Instant::now();
        let mut progress = Progress::with_style("writing", Some(100), Style::Bar, start);
        progress.done = 10;
        assert_eq!(progress.due(start + Duration::from_millis(50)), None);
        assert!(progress.due(start + Duration::from_millis(100)).is_some());
        assert_eq!(progress.due(start + Duration::from_millis(150)), None);
        assert!(progress.due(start + Duration::from_millis(200)).is_some());

        let mut lines = Progress::with_style("writing", None, Style::Lines, start);
        assert_eq!(lines.due(start + Duration::from_secs(4)), None);
        assert!(lines.due(start + Duration::from_secs(5)).is_some());
    }

    #[test]
    fn renders_a_bar_on_a_terminal_and_plain_text_otherwise() {
        let start = Instant::now();
        let mut bar = Progress::with_style("writing", Some(200), Style::Bar, start);
        bar.done = 100;
        assert_eq!(
            bar.render(start + Duration::from_secs(2)),
            format!(
                "writing: [{}{}] 100/200 rows (50%), 50 rows/s",
                "#".repeat(15),
                ".".repeat(15)
            )
        );
        let mut plain = Progress::with_style("validating", None, Style::Lines, start);
        plain.done = 30;
        assert_eq!(
            plain.render(start + Duration::from_secs(3)),
            "validating: 30 rows, 10 rows/s"
        );
    }
}
