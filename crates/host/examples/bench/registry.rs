//! W4 (resolve a session that exists, in each mode, with a large registry)
//! and W4b (resolve a new one: row, folder and both mailboxes).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use airlock_core::{MessagingGroupId, ResolveRequest, SessionMode, SessionStore};

use crate::report::{Latencies, fail, figure};
use crate::setup::{Host, ids};

/// Concurrent callers while bulk-loading the registry.
const LOADERS: usize = 8;

/// The three wirings, with the key suffix of their figures.
const MODES: [(SessionMode, &str); 3] = [
    (SessionMode::PerThread, ""),
    (SessionMode::Shared, ".shared"),
    (SessionMode::AgentShared, ".agent_shared"),
];

/// Sample key `i` of `mode`: per-thread keys are among the preloaded ones.
fn sample(chat: &MessagingGroupId, mode: SessionMode, i: usize) -> Result<ResolveRequest, String> {
    Ok(match mode {
        SessionMode::PerThread => per_thread(chat, &format!("t{i}"))?,
        SessionMode::Shared => ResolveRequest::new(
            ids::agent(&format!("bench-s{i}"))?,
            Some(chat.clone()),
            None,
            mode,
        ),
        _ => ResolveRequest::new(ids::agent(&format!("bench-a{i}"))?, None, None, mode),
    })
}

fn per_thread(chat: &MessagingGroupId, thread: &str) -> Result<ResolveRequest, String> {
    Ok(ResolveRequest::new(
        ids::agent("bench")?,
        Some(chat.clone()),
        Some(ids::thread(thread)?),
        SessionMode::PerThread,
    ))
}

/// Loads the registry, then measures existing and new resolutions.
pub async fn run(dir: &Path, quick: bool) -> Result<(), String> {
    let (sessions, samples, rounds, new) = if quick {
        (2_000, 20, 3, 10)
    } else {
        (100_000, 200, 5, 100)
    };
    let host = Host::open(dir)?;
    let chat = host.chat("C0BENCH").await?;
    preload(&host.store, &chat, sessions).await?;
    for (mode, suffix) in MODES {
        // The first resolve through the manager creates the folder.
        for i in 0..samples {
            resolve(&host, sample(&chat, mode, i)?).await?;
        }
        for _ in 0..rounds {
            let mut taken = Vec::with_capacity(samples);
            for i in 0..samples {
                let request = sample(&chat, mode, i)?;
                let start = Instant::now();
                let created = resolve(&host, request).await?;
                taken.push(start.elapsed());
                if created {
                    return Err(format!("{mode:?} sample {i} was created twice"));
                }
            }
            figure(
                &format!("w4.resolve_existing_p50_us{suffix}"),
                Latencies::new(taken)?.p50_us(),
            );
        }
    }
    let mut taken = Vec::with_capacity(new);
    for i in 0..new {
        let request = per_thread(&chat, &format!("new{i}"))?;
        let start = Instant::now();
        let created = resolve(&host, request).await?;
        taken.push(start.elapsed());
        if !created {
            return Err(format!("new key {i} found an existing session"));
        }
    }
    figure("w4b.resolve_new_p50_us", Latencies::new(taken)?.p50_us());
    Ok(())
}

async fn resolve(host: &Host, request: ResolveRequest) -> Result<bool, String> {
    let resolved = host
        .manager
        .resolve_session(request)
        .await
        .map_err(fail("resolve_session"))?;
    Ok(resolved.created)
}

/// `count` per-thread sessions in the registry only (no folders: the
/// samples get theirs on first use), [`LOADERS`] callers at a time.
async fn preload(
    store: &Arc<dyn SessionStore>,
    chat: &MessagingGroupId,
    count: usize,
) -> Result<(), String> {
    let mut tasks = Vec::new();
    for k in 0..LOADERS {
        let store = store.clone();
        let chat = chat.clone();
        tasks.push(tokio::spawn(async move {
            for i in (k..count).step_by(LOADERS) {
                let request = per_thread(&chat, &format!("t{i}"))?;
                store
                    .resolve_session(request)
                    .await
                    .map_err(fail("preloading the registry"))?;
            }
            Ok::<_, String>(())
        }));
    }
    for task in tasks {
        task.await.map_err(fail("a loader task"))??;
    }
    Ok(())
}
