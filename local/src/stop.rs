//! The stack's stop signal, as its long-running parts (function supervisors,
//! stream mappings) read it.

use tokio::sync::watch;

/// Told to stop, or the stack that would tell it is gone.
pub(crate) fn stopping(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_signal_or_a_vanished_stack_both_mean_stop() {
        let (sender, receiver) = watch::channel(false);
        assert!(!stopping(&receiver));
        sender.send(true).expect("send");
        assert!(stopping(&receiver));
        let (sender, receiver) = watch::channel(false);
        drop(sender);
        assert!(stopping(&receiver), "no one left to say stop: stop");
    }
}
