//! The PostgreSQL routing queue as `sessions` and `doctor` show it: per
//! session, the messages waiting for its owner (stranded when the owner's
//! lease ran out) and the dead letters.

use std::collections::HashMap;

use airlock_core::Result;
use airlock_postgres::{PgRouteQueue, QueuedSession};

use crate::cli::context;
use crate::cli::output::clean;
use crate::cli::settings::{RegistryLocation, Settings};

/// The registry's routing queue (`None` on SQLite, which has one host).
pub async fn queue(settings: &Settings) -> Result<Option<PgRouteQueue>> {
    match &settings.registry {
        RegistryLocation::Postgres(url) => {
            Ok(Some(context::open_postgres(url).await?.route_queue()))
        }
        RegistryLocation::Sqlite(_) => Ok(None),
    }
}

/// The queue state of each session that has messages queued, by session id.
pub async fn by_session(queue: Option<&PgRouteQueue>) -> Result<HashMap<String, QueuedSession>> {
    let Some(queue) = queue else {
        return Ok(HashMap::new());
    };
    let mut map: HashMap<String, QueuedSession> = HashMap::new();
    for q in queue.sessions().await? {
        match map.get_mut(&q.session_id) {
            // Rows for two owners only during a reassignment's commit: add up.
            Some(seen) => {
                seen.queued += q.queued;
                seen.retrying += q.retrying;
                seen.dead_letters += q.dead_letters;
                seen.stranded |= q.stranded;
                seen.oldest_age_secs = seen.oldest_age_secs.max(q.oldest_age_secs);
            }
            None => {
                map.insert(q.session_id.clone(), q);
            }
        }
    }
    Ok(map)
}

/// One line for people: "3 stranded for host-a, oldest 42 s; 1 dead letter".
pub fn describe(q: &QueuedSession) -> String {
    let mut parts = Vec::new();
    if q.queued > 0 {
        let state = if q.stranded { "stranded" } else { "queued" };
        let mut part = format!("{} {state} for {}", q.queued, clean(&q.owner_host));
        if let Some(age) = q.oldest_age_secs {
            part.push_str(&format!(", oldest {age} s"));
        }
        if q.retrying > 0 {
            part.push_str(&format!(", {} retrying", q.retrying));
        }
        parts.push(part);
    }
    if q.dead_letters > 0 {
        parts.push(format!("{} dead letter(s)", q.dead_letters));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_names_state_owner_age_and_dead_letters() {
        let mut q = QueuedSession {
            session_id: "s".into(),
            owner_host: "host-a".into(),
            queued: 3,
            oldest_age_secs: Some(42),
            retrying: 1,
            dead_letters: 2,
            stranded: true,
        };
        assert_eq!(
            describe(&q),
            "3 stranded for host-a, oldest 42 s, 1 retrying; 2 dead letter(s)"
        );
        q.stranded = false;
        q.retrying = 0;
        q.dead_letters = 0;
        assert_eq!(describe(&q), "3 queued for host-a, oldest 42 s");
        q.queued = 0;
        q.dead_letters = 1;
        assert_eq!(describe(&q), "1 dead letter(s)");
    }
}
