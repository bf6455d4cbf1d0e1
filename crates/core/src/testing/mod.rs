//! The conformance suite every `SessionStore` backend runs (feature `testing`).
//!
//! Each check is a plain `pub async fn` over a fresh store; the
//! [`session_store_conformance!`](crate::session_store_conformance) macro
//! turns them into one `#[tokio::test]` each in a backend's test crate:
//!
//! ```text
//! async fn fresh_store() -> Option<airlock_core::testing::StoreUnderTest> { … }
//! airlock_core::session_store_conformance!(fresh_store);
//! ```
//!
//! A factory returns `None` when the backend cannot run here (e.g. no
//! PostgreSQL); it must print why, and the test says it was skipped.

mod adopt;
pub mod history;
mod mailbox;
mod registry;
mod resolution;

use std::any::Any;
use std::sync::Arc;

use crate::ids::{AgentGroupId, MessagingGroupId, ThreadId};
use crate::session::{NewMessagingGroup, ResolveRequest, SessionMode};
use crate::store::{SessionStore, SessionStoreExt};

pub use adopt::*;
pub use mailbox::*;
pub use registry::*;
pub use resolution::*;

/// A store for one test plus whatever keeps its storage alive (a temp dir,
/// a database schema that is dropped on drop).
pub struct StoreUnderTest {
    /// The store under test.
    pub store: Arc<dyn SessionStore>,
    /// Dropped at the end of the test.
    pub guard: Box<dyn Any + Send>,
}

impl StoreUnderTest {
    /// Wraps a store that needs no clean-up.
    pub fn new(store: Arc<dyn SessionStore>) -> Self {
        Self {
            store,
            guard: Box::new(()),
        }
    }
}

/// The name libtest knows test `name` of module `module_path` by (what
/// `module_path!()` gives there), for `--exact` when a test binary re-runs
/// itself as a child: the path without the binary's crate name, so
/// `it::registry_processes` and `child_opener` give
/// `registry_processes::child_opener`.
pub fn libtest_name(module_path: &str, name: &str) -> String {
    let module = module_path
        .split_once("::")
        .map_or("", |(_crate_name, module)| module);
    assert!(!module.is_empty(), "{module_path} is not a test module");
    format!("{module}::{name}")
}

/// An agent group id for tests.
pub fn agent(name: &str) -> AgentGroupId {
    AgentGroupId::new(name).expect("test agent group id")
}

/// A thread id for tests.
pub fn thread(name: &str) -> ThreadId {
    ThreadId::new(name).expect("test thread id")
}

/// Registers (or finds) a messaging group for `("test", platform_id)`.
pub async fn chat(store: &dyn SessionStore, platform_id: &str) -> MessagingGroupId {
    store
        .ensure_messaging_group(NewMessagingGroup::new("test", platform_id))
        .await
        .expect("ensure messaging group")
        .id
}

/// A resolve request.
pub fn request(
    agent_group: &AgentGroupId,
    messaging_group: Option<&MessagingGroupId>,
    thread: Option<&ThreadId>,
    mode: SessionMode,
) -> ResolveRequest {
    ResolveRequest::new(
        agent_group.clone(),
        messaging_group.cloned(),
        thread.cloned(),
        mode,
    )
}

/// Expands the conformance suite into one `#[tokio::test]` per check.
///
/// `$factory` is an `async fn() -> Option<StoreUnderTest>`.
#[macro_export]
macro_rules! session_store_conformance {
    ($factory:path) => {
        $crate::__session_store_conformance!(
            $factory;
            messaging_group_round_trip,
            messaging_group_is_unique_per_platform_chat,
            concurrent_ensure_messaging_group_agrees,
            unknown_ids_are_not_found,
            new_session_has_spec_defaults,
            shared_ignores_the_thread,
            per_thread_separates_threads,
            per_thread_without_thread_behaves_like_shared,
            agent_shared_spans_messaging_groups,
            agent_shared_never_takes_a_chat_session,
            lookups_are_scoped_by_agent_group,
            no_messaging_group_creates_every_time,
            archived_sessions_are_never_reused,
            reactivating_into_a_taken_key_conflicts,
            deleting_a_session_frees_its_key,
            update_session_applies_each_field,
            list_sessions_filters_and_orders,
            owner_host_is_recorded,
            concurrent_resolves_create_one_session,
            concurrent_resolves_of_many_keys,
            adopted_session_is_stored_as_given_and_resolved,
            adopting_an_existing_id_changes_nothing,
            adopting_into_a_taken_key_conflicts,
            adopting_checks_the_messaging_group,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __session_store_conformance {
    ($factory:path; $($name:ident),+ $(,)?) => {
        mod session_store_conformance {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    match $factory().await {
                        Some(under_test) => {
                            $crate::testing::$name(under_test.store.clone()).await;
                            drop(under_test);
                        }
                        None => eprintln!(
                            "SKIPPED {}: the backend is not available here (see above)",
                            stringify!($name)
                        ),
                    }
                }
            )+
        }
    };
}
