//! `airlock-crossmount`: the harness binary (`run` the matrix, act as a `guest`, or bridge to a VM: `agent`, `vm-exec`, `vm-clock`).
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("guest") => match airlock_crossmount::guest::parse_args(&args[1..]) {
            Ok(a) => {
                airlock_crossmount::guest::run(&a);
                0
            }
            Err(e) => {
                eprintln!("guest: {e}");
                2
            }
        },
        Some("agent") => {
            match airlock_crossmount::vm::agent(args.get(1).map_or("0.0.0.0:7000", String::as_str))
            {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("agent: {e}");
                    1
                }
            }
        }
        Some("vm-exec") if args.len() > 2 && args[2] == "--" => {
            match airlock_crossmount::vm::exec(&args[1], &args[3..]) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("vm-exec: {e}");
                    1
                }
            }
        }
        Some("vm-clock") => match airlock_crossmount::vm::clock_offset(
            args.get(1).map_or("127.0.0.1:7000", String::as_str),
            20,
        ) {
            Ok(c) => {
                println!(
                    "guest clock offset {} ms (round trip {} ms)",
                    c.offset_ms, c.rtt_ms
                );
                0
            }
            Err(e) => {
                eprintln!("vm-clock: {e}");
                1
            }
        },
        _ => match airlock_crossmount::suite::main(&args) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("crossmount: {e}");
                1
            }
        },
    };
    std::process::exit(code);
}
