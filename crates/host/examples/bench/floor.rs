//! The disk's floor, measured in the same folder as the workloads:
//! `pwrite 4 KiB + fsync`, `write 1 MiB to a new file + fsync`, and a bare
//! SQLite `open + INSERT + close` in DELETE/FULL (what one mailbox write
//! cannot avoid).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

use rusqlite::Connection;

use crate::report::{Latencies, fail, figure, timed};

/// Measures each floor figure.
pub fn run(dir: &Path, quick: bool) -> Result<(), String> {
    let rounds = if quick { 20 } else { 200 };
    figure("floor.pwrite_4k_fsync_p50_us", pwrite_fsync(dir, rounds)?);
    figure(
        "floor.write_1mib_fsync_p50_us",
        write_file_fsync(dir, rounds / 4)?,
    );
    figure(
        "floor.sqlite_open_insert_close_p50_us",
        sqlite_open_insert_close(dir, rounds)?,
    );
    Ok(())
}

fn pwrite_fsync(dir: &Path, rounds: usize) -> Result<f64, String> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(dir.join("floor-4k"))
        .map_err(fail("creating floor-4k"))?;
    let page = [0x5au8; 4096];
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let (done, took) = timed(|| {
            file.write_all_at(&page, 0)?;
            file.sync_all()
        });
        done.map_err(fail("pwrite + fsync"))?;
        samples.push(took);
    }
    Ok(Latencies::new(samples)?.p50_us())
}

/// A new 1 MiB file each round: what an attachment costs the disk.
fn write_file_fsync(dir: &Path, rounds: usize) -> Result<f64, String> {
    let data = vec![0xa5u8; 1024 * 1024];
    let mut samples = Vec::with_capacity(rounds);
    for n in 0..rounds.max(3) {
        let path = dir.join(format!("floor-1mib-{n}"));
        let (done, took) = timed(|| {
            let mut file = File::create(&path)?;
            file.write_all(&data)?;
            file.sync_all()
        });
        done.map_err(fail("write 1 MiB + fsync"))?;
        samples.push(took);
        std::fs::remove_file(&path).map_err(fail("removing a floor file"))?;
    }
    Ok(Latencies::new(samples)?.p50_us())
}

fn sqlite_open_insert_close(dir: &Path, rounds: usize) -> Result<f64, String> {
    let path = dir.join("floor.db");
    {
        let conn = Connection::open(&path).map_err(fail("creating floor.db"))?;
        conn.execute_batch(
            "PRAGMA journal_mode=DELETE; CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL);",
        )
        .map_err(fail("creating floor.db's table"))?;
    }
    let body = "x".repeat(200);
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let (done, took) = timed(|| -> rusqlite::Result<()> {
            let conn = Connection::open(&path)?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.execute("INSERT INTO t (body) VALUES (?1)", [&body])?;
            conn.close().map_err(|(_, e)| e)
        });
        done.map_err(fail("open + INSERT + close"))?;
        samples.push(took);
    }
    Ok(Latencies::new(samples)?.p50_us())
}
