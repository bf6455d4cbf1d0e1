//! Running guests inside a VM: the agent in the VM, `vm-exec` on the host, and the clock offset between them.
//!
//! The VM's init starts `airlock-crossmount agent --listen 0.0.0.0:PORT`;
//! QEMU forwards a host port to it. Each connection sends one request line,
//! fields separated by tabs:
//!
//! * `clock`: then every line the host sends is answered with the guest's
//!   [`now_ms`], so the host can measure the offset by round trip;
//! * `run <nonce or -> <arg>…`: the agent starts `airlock-crossmount <arg>…`
//!   (with the mount nonce in its environment), pipes its stdout to the
//!   connection and the connection to its stdin, and closes the connection
//!   when it exits.
//!
//! `airlock-crossmount vm-exec HOST:PORT -- guest …` is the host's end: the
//! harness starts it where it would start a local guest, and it prints the
//! guest's events with their times moved onto the host's clock.
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Command;

use crate::protocol::{Event, now_ms};

/// A measured offset of the guest's clock against the host's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockOffset {
    /// Guest time minus host time, at the middle of the fastest round trip.
    pub offset_ms: i64,
    /// That round trip: the offset is right within half of it.
    pub rtt_ms: u64,
}

/// Measures the guest's clock offset with the best of `samples` round trips.
pub fn clock_offset(agent: &str, samples: usize) -> Result<ClockOffset, String> {
    let stream = TcpStream::connect(agent).map_err(|e| format!("agent {agent}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut out = stream.try_clone().map_err(|e| e.to_string())?;
    let mut lines = BufReader::new(stream).lines();
    writeln!(out, "clock").map_err(|e| e.to_string())?;
    let mut best: Option<ClockOffset> = None;
    for _ in 0..samples.max(1) {
        let t0 = now_ms();
        writeln!(out, "ping").map_err(|e| e.to_string())?;
        let line = lines
            .next()
            .ok_or("agent closed the clock connection")?
            .map_err(|e| e.to_string())?;
        let t1 = now_ms();
        let guest: u64 = line
            .trim()
            .parse()
            .map_err(|_| format!("agent sent {line:?} for the time"))?;
        let sample = ClockOffset {
            offset_ms: guest as i64 - ((t0 + t1) / 2) as i64,
            rtt_ms: t1 - t0,
        };
        if best.is_none_or(|b| sample.rtt_ms < b.rtt_ms) {
            best = Some(sample);
        }
    }
    best.ok_or_else(|| "no clock sample".to_owned())
}

/// Host side: runs `airlock-crossmount <args>` in the VM and relays it; returns when it exits.
pub fn exec(agent: &str, args: &[String]) -> Result<(), String> {
    let offset = clock_offset(agent, 5)?;
    let stream = TcpStream::connect(agent).map_err(|e| format!("agent {agent}: {e}"))?;
    let mut out = stream.try_clone().map_err(|e| e.to_string())?;
    let nonce = std::env::var(airlock_sqlite_fs::host::MOUNT_NONCE_ENV)
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "-".into());
    let mut request = vec!["run".to_owned(), nonce];
    request.extend(args.iter().cloned());
    writeln!(out, "{}", request.join("\t")).map_err(|e| e.to_string())?;
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if writeln!(out, "{line}").is_err() {
                return;
            }
        }
        // Our stdin closed: the guest's closes too, which tells it to stop.
        let _ = out.shutdown(Shutdown::Write);
    });
    let mut stdout = std::io::stdout().lock();
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        let line = match Event::parse(&line) {
            Some(e) => e.shifted(-offset.offset_ms).line(),
            None => line,
        };
        writeln!(stdout, "{line}").map_err(|e| e.to_string())?;
        stdout.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Guest side: serves requests on `listen` for ever.
pub fn agent(listen: &str) -> Result<(), String> {
    let listener = TcpListener::bind(listen).map_err(|e| format!("{listen}: {e}"))?;
    eprintln!("airlock-crossmount agent listening on {listen}");
    for conn in listener.incoming() {
        let Ok(stream) = conn else { continue };
        std::thread::spawn(move || {
            if let Err(e) = serve(stream) {
                eprintln!("agent: {e}");
            }
        });
    }
    Ok(())
}

fn serve(stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    let fields: Vec<&str> = first.trim_end_matches('\n').split('\t').collect();
    match fields.as_slice() {
        ["clock"] => {
            for line in reader.lines() {
                line?;
                writeln!(out, "{}", now_ms())?;
            }
            Ok(())
        }
        ["run", nonce, args @ ..] => {
            let cmd = Command::new(std::env::current_exe()?);
            let nonce = Some(*nonce).filter(|n| *n != "-");
            let mut child = crate::run::start_piped(cmd, args, nonce)?;
            let mut child_in = child.stdin.take();
            std::thread::spawn(move || {
                for line in reader.lines() {
                    let Ok(line) = line else { break };
                    let Some(stdin) = child_in.as_mut() else {
                        break;
                    };
                    if writeln!(stdin, "{line}").is_err() {
                        break;
                    }
                }
                drop(child_in);
            });
            if let Some(mut child_out) = child.stdout.take() {
                let _ = std::io::copy(&mut child_out, &mut out);
            }
            child.wait()?;
            stream.shutdown(Shutdown::Both)
        }
        _ => writeln!(out, "error agent: unknown request {first:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_offset_of_a_local_agent_is_small() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            serve(s).unwrap();
        });
        let c = clock_offset(&addr, 3).unwrap();
        // Same clock on both ends: within the round trip.
        assert!(c.offset_ms.unsigned_abs() <= c.rtt_ms + 1, "{c:?}");
    }
}
