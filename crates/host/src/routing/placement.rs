//! Which host owns a new session: by default the host that creates it, or
//! whatever a [`Placement`] the host supplies decides.

use std::fmt;

use airlock_core::{Error, ResolveRequest, Result};
use async_trait::async_trait;

/// Chooses the owner of a session a resolve may create.
///
/// [`SessionManager::with_placement`](crate::SessionManager::with_placement)
/// consults it on every resolve whose request names no owner; its answer is
/// recorded only if the resolve creates the session (an existing session
/// keeps its owner). A session placed on another host gets no folder here:
/// messages written through this host are routed to the owner, whose
/// drainer creates the folder with the first one.
#[async_trait]
pub trait Placement: fmt::Debug + Send + Sync + 'static {
    /// The owner for a session `request` would create; `None` for the host
    /// resolving it. An error fails the resolve before anything is created.
    async fn place(&self, request: &ResolveRequest) -> Result<Option<String>>;
}

/// A [`Placement`] from a closure (for a rule that needs no I/O).
pub fn place_with<F>(rule: F) -> impl Placement
where
    F: Fn(&ResolveRequest) -> Option<String> + Send + Sync + 'static,
{
    PlaceWith(rule)
}

struct PlaceWith<F>(F);

impl<F> fmt::Debug for PlaceWith<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlaceWith(..)")
    }
}

#[async_trait]
impl<F> Placement for PlaceWith<F>
where
    F: Fn(&ResolveRequest) -> Option<String> + Send + Sync + 'static,
{
    async fn place(&self, request: &ResolveRequest) -> Result<Option<String>> {
        Ok((self.0)(request))
    }
}

/// The owner a placement chose, refused when it is no usable host id.
pub(crate) fn checked_owner(owner: String) -> Result<String> {
    if owner.trim().is_empty() || owner.chars().any(char::is_control) {
        return Err(Error::InvalidInput(format!(
            "the placement hook chose the host id {}, which is empty or has control characters",
            airlock_core::escape_for_log(&owner)
        )));
    }
    Ok(owner)
}
