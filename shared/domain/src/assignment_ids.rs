//! The `assignmentId`s the CLI's writers set (contract section 2): derived
//! from what identifies the assignment, so that a run that died midway and
//! is run again writes the same ids and the dispatcher makes no second
//! offer. A UUID v5 of the parts (36 characters, within 1 to 128). The
//! dispatcher's check of a row's own id is `assignment::read_assignment_id`.

use uuid::Uuid;

/// Namespaces, one per writer, so that two writers' ids never meet.
const ASSIGN_NAMESPACE: Uuid = Uuid::from_u128(0x6f66_6665_7273_2d61_7373_6967_6e2d_0001);
const PLAN_NAMESPACE: Uuid = Uuid::from_u128(0x6f66_6665_7273_2d70_6c61_6e2d_0000_0001);

/// The parts as a JSON array: unambiguous whatever characters they hold.
fn derive(namespace: &Uuid, parts: &[&str]) -> String {
    let name = serde_json::to_string(parts).unwrap_or_default();
    Uuid::new_v5(namespace, name.as_bytes()).to_string()
}

/// `offers assign`: from the row's userId, sortKey, startDate and
/// expiryDate, as written in the file.
pub fn for_assigned_row(user_id: &str, sort_key: &str, start: &str, expiry: &str) -> String {
    derive(&ASSIGN_NAMESPACE, &[user_id, sort_key, start, expiry])
}

/// `offers campaign plan`: from the campaign, the user and the rank, not
/// the offer chosen: a rerun that chose differently still lands on the same
/// k assignments.
pub fn for_planned_rank(campaign_id: &str, user_id: &str, rank: usize) -> String {
    derive(&PLAN_NAMESPACE, &[campaign_id, user_id, &rank.to_string()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_distinct_and_bounded() {
        let a = for_assigned_row("u", "c+o", "2030-01-01T00:00:00Z", "2030-02-01T00:00:00Z");
        assert_eq!(
            a,
            for_assigned_row("u", "c+o", "2030-01-01T00:00:00Z", "2030-02-01T00:00:00Z")
        );
        assert_ne!(
            a,
            for_assigned_row("u", "c+o", "2030-01-01T00:00:00Z", "2030-03-01T00:00:00Z")
        );
        // No concatenation ambiguity: ("ab", "c") is not ("a", "bc").
        assert_ne!(
            for_planned_rank("ab", "c", 1),
            for_planned_rank("a", "bc", 1)
        );
        assert_ne!(for_planned_rank("c", "u", 1), for_planned_rank("c", "u", 2));
        assert_eq!(for_planned_rank("c", "u", 1).len(), 36);
        assert_eq!(a.len(), 36, "within the 1 to 128 characters of section 2");
    }
}
