//! The runtime seam through the fake: calls recorded, failures surfaced,
//! a hanging runtime bounded by its timeout.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use airlock_core::{AgentGroupId, ResolveRequest, SessionId, SessionMode, Timestamp};
use airlock_host::GuestLaunch;
use airlock_host::lifecycle::{FakeRuntime, Runtime, RuntimeCall, RuntimeError, RuntimeTimeouts};

fn launch() -> GuestLaunch {
    let request = ResolveRequest::new(
        AgentGroupId::new("ag").unwrap(),
        None,
        None,
        SessionMode::Shared,
    );
    GuestLaunch {
        session: request.new_session(SessionId::generate(), Timestamp::now()),
        session_dir: Some(PathBuf::from("/nowhere")),
        env: vec![("AIRLOCK_MOUNT_NONCE".into(), "n".into())],
    }
}

fn short() -> RuntimeTimeouts {
    RuntimeTimeouts {
        is_running: Duration::from_millis(20),
        wake: Duration::from_millis(20),
        kill: Duration::from_millis(20),
    }
}

#[tokio::test]
async fn wake_and_kill_are_recorded_and_change_what_is_running() {
    let fake = FakeRuntime::new();
    let woken = Arc::new(AtomicUsize::new(0));
    let w = woken.clone();
    fake.on_wake(move |_| {
        w.fetch_add(1, Ordering::SeqCst);
    });
    let runtime = Runtime::new(Arc::new(fake.clone()), RuntimeTimeouts::default());
    let launch = launch();
    let id = launch.session.id.clone();
    assert!(!runtime.is_running(&id).await.unwrap());
    runtime.wake(&launch).await.unwrap();
    assert!(runtime.is_running(&id).await.unwrap());
    assert_eq!(woken.load(Ordering::SeqCst), 1);
    runtime.kill(&id).await.unwrap();
    assert!(!runtime.is_running(&id).await.unwrap());
    // Killing a session with no guest is not an error.
    runtime.kill(&id).await.unwrap();
    assert_eq!((fake.wakes(&id), fake.kills(&id)), (1, 2));
    assert_eq!(fake.calls()[1], RuntimeCall::Wake(id.clone()));
}

#[tokio::test]
async fn a_failing_runtime_says_which_call_failed() {
    let fake = FakeRuntime::new();
    fake.fail("wake", "image not found");
    let runtime = Runtime::new(Arc::new(fake.clone()), RuntimeTimeouts::default());
    let launch = launch();
    let err = runtime.wake(&launch).await.unwrap_err();
    assert!(
        matches!(&err, RuntimeError::Failed { op: "wake", message, .. } if message == "image not found")
    );
    assert!(err.to_string().contains(launch.session.id.as_str()));
    assert!(!fake.running(&launch.session.id));
}

#[tokio::test]
async fn a_hanging_runtime_is_cut_off_by_the_timeout() {
    let fake = FakeRuntime::new();
    let runtime = Runtime::new(Arc::new(fake.clone()), short());
    let id = launch().session.id;
    fake.hang("is_running");
    fake.hang("kill");
    assert!(matches!(
        runtime.is_running(&id).await,
        Err(RuntimeError::TimedOut {
            op: "is_running",
            ..
        })
    ));
    assert!(matches!(
        runtime.kill(&id).await,
        Err(RuntimeError::TimedOut { op: "kill", .. })
    ));
}
