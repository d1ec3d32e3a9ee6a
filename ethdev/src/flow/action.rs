//! Actions: what happens to a packet a rule matches.
//!
//! A rule's action list is validated and folded into [`Actions`]: at most one
//! fate (queue, drop, RSS, or none), an optional mark and whether to count.
//! Action order does not matter; each refusal names the offending action.

use crate::error::{FlowError, FlowErrorCause};
use crate::rss::RssHashTypes;

/// One action of a flow rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FlowAction {
    /// Fate: deliver to this receive queue.
    Queue(u16),
    /// Fate: drop the packet.
    Drop,
    /// Fate: spread matched packets over `queues` by an RSS hash of `types`
    /// (empty `types`: the port's configured hash types).
    Rss {
        /// Candidate queues, indexed by the hash; must not be empty.
        queues: Vec<u16>,
        /// Which packet types and fields to hash.
        types: RssHashTypes,
    },
    /// Fate: none; the packet continues to lower-priority rules and, if none
    /// decides, to the port's default RSS. Same as giving no fate action.
    Passthru,
    /// Attach this 32-bit value to the packet (flow director mark).
    Mark(u32),
    /// Count matched packets and bytes, read with `FlowTable::query`.
    Count,
}

/// The fate a rule decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RuleFate {
    Queue(u16),
    Drop,
    Rss { queues: Box<[u16]>, types: RssHashTypes },
    Passthru,
}

/// A validated action list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Actions {
    pub(crate) fate: RuleFate,
    pub(crate) mark: Option<u32>,
    pub(crate) count: bool,
}

/// Which earlier action set each singleton slot, for error messages.
#[derive(Default)]
struct Seen {
    fate: Option<usize>,
    mark: Option<usize>,
    count: Option<usize>,
}

fn action_error(index: usize, message: impl Into<String>) -> FlowError {
    FlowError::new(FlowErrorCause::Action(index), message)
}

/// Records that action `index` fills `slot`, refusing a second filler.
fn claim(slot: &mut Option<usize>, index: usize, what: &str) -> Result<(), FlowError> {
    match slot.replace(index) {
        Some(first) => Err(action_error(index, format!("second {what} action (first is action {first})"))),
        None => Ok(()),
    }
}

fn check_queue(queue: u16, nb_rx_queues: u16, index: usize) -> Result<(), FlowError> {
    if queue >= nb_rx_queues {
        return Err(action_error(index, format!("queue {queue} out of range: port has {nb_rx_queues} rx queues")));
    }
    Ok(())
}

fn rss_fate(queues: &[u16], types: RssHashTypes, nb_rx_queues: u16, index: usize) -> Result<RuleFate, FlowError> {
    if queues.is_empty() {
        return Err(action_error(index, "RSS action with an empty queue list"));
    }
    for &queue in queues {
        check_queue(queue, nb_rx_queues, index)?;
    }
    Ok(RuleFate::Rss { queues: queues.into(), types })
}

/// Validates `actions` against a port with `nb_rx_queues` receive queues.
pub(crate) fn compile_actions(actions: &[FlowAction], nb_rx_queues: u16) -> Result<Actions, FlowError> {
    let mut seen = Seen::default();
    let mut compiled = Actions { fate: RuleFate::Passthru, mark: None, count: false };
    for (index, action) in actions.iter().enumerate() {
        match action {
            FlowAction::Mark(value) => {
                claim(&mut seen.mark, index, "MARK")?;
                compiled.mark = Some(*value);
            }
            FlowAction::Count => {
                claim(&mut seen.count, index, "COUNT")?;
                compiled.count = true;
            }
            fate => {
                claim(&mut seen.fate, index, "fate")?;
                compiled.fate = compile_fate(fate, nb_rx_queues, index)?;
            }
        }
    }
    Ok(compiled)
}

fn compile_fate(action: &FlowAction, nb_rx_queues: u16, index: usize) -> Result<RuleFate, FlowError> {
    match action {
        FlowAction::Queue(queue) => check_queue(*queue, nb_rx_queues, index).map(|()| RuleFate::Queue(*queue)),
        FlowAction::Drop => Ok(RuleFate::Drop),
        FlowAction::Rss { queues, types } => rss_fate(queues, *types, nb_rx_queues, index),
        FlowAction::Passthru | FlowAction::Mark(_) | FlowAction::Count => Ok(RuleFate::Passthru),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_actions_is_a_passthru_rule() {
        let compiled = compile_actions(&[], 1);
        assert_eq!(compiled, Ok(Actions { fate: RuleFate::Passthru, mark: None, count: false }));
    }

    #[test]
    fn order_does_not_matter() {
        let a = compile_actions(&[FlowAction::Count, FlowAction::Queue(1), FlowAction::Mark(7)], 2);
        let b = compile_actions(&[FlowAction::Mark(7), FlowAction::Queue(1), FlowAction::Count], 2);
        assert_eq!(a, b);
        assert_eq!(a.map(|a| (a.fate, a.mark, a.count)), Ok((RuleFate::Queue(1), Some(7), true)));
    }

    #[test]
    fn passthru_counts_as_the_fate() {
        let err = compile_actions(&[FlowAction::Passthru, FlowAction::Drop], 1);
        assert_eq!(err.map_err(|e| e.cause), Err(FlowErrorCause::Action(1)));
    }

    #[test]
    fn rss_queues_are_checked_one_by_one() {
        let rss = FlowAction::Rss { queues: vec![0, 1, 4], types: RssHashTypes::IPV4_TCP };
        let err = compile_actions(&[FlowAction::Mark(1), rss], 4);
        assert_eq!(err.map_err(|e| e.cause), Err(FlowErrorCause::Action(1)));
    }
}
