//! Idle connections by session file and role, the least recently returned
//! evicted first. A host with more sessions than the pool holds misses on
//! most takes, and a list searched from the end compared every pooled path
//! under the pool's lock on each miss; here a take or a return is a hash
//! lookup whatever the pool's size.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::Role;

/// The idle connections (`C` is a `rusqlite::Connection` in the crate).
pub(super) struct IdlePool<C> {
    by_key: HashMap<(PathBuf, Role), Vec<(u64, C)>>,
    /// Return order: the first entry is the next one evicted.
    order: BTreeMap<u64, (PathBuf, Role)>,
    next: u64,
}

impl<C> Default for IdlePool<C> {
    fn default() -> Self {
        Self {
            by_key: HashMap::new(),
            order: BTreeMap::new(),
            next: 0,
        }
    }
}

impl<C> IdlePool<C> {
    /// The most recently returned connection to `path` for `role`.
    pub(super) fn take(&mut self, path: &Path, role: Role) -> Option<C> {
        let key = (path.to_path_buf(), role);
        let idle = self.by_key.get_mut(&key)?;
        let (seq, conn) = idle.pop()?;
        if idle.is_empty() {
            self.by_key.remove(&key);
        }
        self.order.remove(&seq);
        Some(conn)
    }

    /// Keeps `conn`, first evicting the least recently returned connections
    /// so that at most `capacity` stay idle; returns those, for the caller
    /// to close outside its lock.
    #[must_use]
    pub(super) fn put(&mut self, path: PathBuf, role: Role, conn: C, capacity: usize) -> Vec<C> {
        let mut evicted = Vec::new();
        while self.order.len() >= capacity.max(1) {
            let Some((seq, key)) = self.order.pop_first() else {
                break;
            };
            if let Some(idle) = self.by_key.get_mut(&key) {
                if let Some(at) = idle.iter().position(|(s, _)| *s == seq) {
                    evicted.push(idle.remove(at).1);
                }
                if idle.is_empty() {
                    self.by_key.remove(&key);
                }
            }
        }
        let seq = self.next;
        self.next += 1;
        self.order.insert(seq, (path.clone(), role));
        self.by_key
            .entry((path, role))
            .or_default()
            .push((seq, conn));
        evicted
    }

    /// Idle connections held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str) -> PathBuf {
        PathBuf::from(format!("/state/{name}/host.db"))
    }

    #[test]
    fn a_take_gets_the_last_returned_of_its_file_and_role() {
        let mut pool = IdlePool::default();
        for (name, role, conn) in [
            ("a", Role::Writes, 1),
            ("a", Role::Writes, 2),
            ("a", Role::Publish, 3),
            ("b", Role::Writes, 4),
        ] {
            assert!(pool.put(p(name), role, conn, 8).is_empty());
        }
        assert_eq!(pool.take(&p("a"), Role::Writes), Some(2));
        assert_eq!(pool.take(&p("a"), Role::Publish), Some(3));
        assert_eq!(pool.take(&p("a"), Role::Publish), None);
        assert_eq!(pool.take(&p("a"), Role::Writes), Some(1));
        assert_eq!(pool.take(&p("a"), Role::Writes), None);
        assert_eq!(pool.take(&p("c"), Role::Writes), None);
        assert_eq!(pool.len(), 1);
    }

    #[test]
    fn a_full_pool_evicts_the_least_recently_returned() {
        let mut pool = IdlePool::default();
        assert!(pool.put(p("a"), Role::Writes, 1, 3).is_empty());
        assert!(pool.put(p("b"), Role::Writes, 2, 3).is_empty());
        assert!(pool.put(p("a"), Role::Writes, 3, 3).is_empty());
        assert_eq!(pool.put(p("c"), Role::Publish, 4, 3), [1]);
        assert_eq!(pool.len(), 3);
        assert_eq!(pool.take(&p("a"), Role::Writes), Some(3));
        assert_eq!(pool.take(&p("a"), Role::Writes), None, "1 was evicted");
        assert_eq!(pool.take(&p("b"), Role::Writes), Some(2));
        assert_eq!(pool.take(&p("c"), Role::Publish), Some(4));
        assert_eq!(pool.len(), 0);
    }
}
