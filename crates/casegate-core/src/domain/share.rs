//! How many mailboxes one instance reads when several share a PostgreSQL database:
//! each takes at most its fair share, so mailboxes spread over the instances instead of
//! all going to the first one that starts.

/// At most `ceil(mailboxes / alive)` leases per instance (`alive` counts this one).
pub fn fair_share(mailboxes: usize, alive: u64) -> usize {
    let alive = usize::try_from(alive.max(1)).unwrap_or(usize::MAX);
    mailboxes.div_ceil(alive)
}

/// What an instance holding `held` leases does in one round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rebalance {
    /// Try to take up to this many free or expired leases.
    Take(usize),
    /// Hand one lease over (finish the batch in hand, then release it): another
    /// instance came up and this one holds more than its share.
    GiveUpOne,
    Hold,
}

/// The round's step for an instance holding `held` of `mailboxes` with `alive` instances.
pub fn rebalance(held: usize, mailboxes: usize, alive: u64) -> Rebalance {
    let share = fair_share(mailboxes, alive);
    if held > share {
        Rebalance::GiveUpOne
    } else if held < share {
        Rebalance::Take(share - held)
    } else {
        Rebalance::Hold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_mailboxes_spread_over_the_instances_alive() {
        assert_eq!(fair_share(3, 1), 3);
        assert_eq!(fair_share(3, 2), 2);
        assert_eq!(fair_share(3, 3), 1);
        assert_eq!(fair_share(3, 5), 1);
        assert_eq!(fair_share(2, 3), 1);
        assert_eq!(fair_share(0, 3), 0);
        // A count of zero (its own heartbeat not seen yet) counts as itself alone.
        assert_eq!(fair_share(3, 0), 3);
    }

    #[test]
    fn an_instance_over_its_share_gives_one_up_and_one_under_it_takes() {
        assert_eq!(rebalance(3, 3, 2), Rebalance::GiveUpOne);
        assert_eq!(rebalance(2, 3, 2), Rebalance::Hold);
        assert_eq!(rebalance(0, 3, 2), Rebalance::Take(2));
        assert_eq!(rebalance(1, 3, 3), Rebalance::Hold);
        // The last instance left takes everything over.
        assert_eq!(rebalance(1, 3, 1), Rebalance::Take(2));
    }
}
