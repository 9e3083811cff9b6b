//! Standard output for people and pipes: [`out!`](crate::out) and [`outln!`](crate::outln)
//! print like `print!` and `println!`, but a reader that went away (`tributary search "" --json
//! | head`) ends the command quietly with exit code 0, as `ls | head` does, instead of the
//! panic `println!` gives ("failed printing to stdout: Broken pipe", exit 101).
//!
//! Why a writer rather than restoring `SIGPIPE`'s default disposition at start (what C tools
//! get for free): changing a signal disposition needs `unsafe`, which the workspace forbids,
//! and it would apply to `tributary up` too, where an EPIPE on a child's pipe must stay an
//! error the service handles, not kill the whole mesh. Every command prints through these
//! two macros, so the rule holds for all of them.

use std::io::{ErrorKind, Write};

/// Writes `args` to standard output and flushes it; see the module documentation for what a
/// closed pipe or another write error does.
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        exit_on_write_error(&error);
    }
}

/// A reader that closed the pipe wants no more: exit 0 without a word. Any other failure
/// (a full disk) is an error worth a line on standard error and exit code 1.
fn exit_on_write_error(error: &std::io::Error) -> ! {
    if error.kind() == ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to standard output: {error}");
    std::process::exit(1);
}

/// `print!` that ends the command quietly when standard output is a closed pipe.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!($($arg)*))
    };
}

/// `println!` that ends the command quietly when standard output is a closed pipe.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::output::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}
