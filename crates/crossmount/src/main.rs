//! `airlock-crossmount`: the harness binary (`run` the matrix, or act as a `guest`).
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
