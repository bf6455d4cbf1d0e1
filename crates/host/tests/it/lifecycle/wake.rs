//! The wake decision: due work and no guest, stale heartbeat removed first.

use airlock_host::lifecycle::{Wake, decide_wake};

#[test]
fn wakes_only_for_due_work_with_no_guest() {
    let rows = [
        (0, false, false, Wake::Leave),
        (0, false, true, Wake::Leave),
        (3, true, true, Wake::Leave),
        (3, true, false, Wake::Leave),
        (
            1,
            false,
            false,
            Wake::Start {
                remove_heartbeat: false,
            },
        ),
        (
            1,
            false,
            true,
            Wake::Start {
                remove_heartbeat: true,
            },
        ),
    ];
    for (due, running, heartbeat, want) in rows {
        assert_eq!(
            decide_wake(due, running, heartbeat),
            want,
            "due {due} running {running} heartbeat {heartbeat}"
        );
    }
}
