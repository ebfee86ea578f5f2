//! The server binary: parse the command line, hand over to the library.

use clap::Parser;

/// jemalloc rather than glibc's malloc: fewer instructions per allocation on the request paths,
/// and its options below keep the resident set small without any environment variable.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, built into the binary (jemalloc reads them at its first allocation, before
/// `main`): two arenas rather than four per CPU, since few threads allocate much here (tokio's
/// workers, the blocking pool, the database's); freed pages given back to the OS within a second
/// (`muzzy` pages at once) by a background thread, so the resident set follows what is in use, as
/// the peak-RSS targets require. `MALLOC_CONF` in the environment still overrides them.
#[allow(unsafe_code)] // Exporting a symbol is `unsafe` in Rust 2024: it must not clash with another.
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: ConfString =
    ConfString(c"narenas:2,background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0".as_ptr());

/// A C string jemalloc reads as its `malloc_conf`.
#[repr(transparent)]
struct ConfString(*const std::ffi::c_char);

// SAFETY: the pointer is to a static, immutable C string; sharing it between threads is sound.
#[allow(unsafe_code)]
unsafe impl Sync for ConfString {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    workspace_server::run(workspace_server::Cli::parse()).await
}

#[cfg(test)]
mod tests {
    /// An option of jemalloc's as it is running, of the C type `T` stands for.
    #[allow(unsafe_code)]
    fn option<T: Default + Copy>(name: &std::ffi::CStr) -> T {
        let mut value = T::default();
        let mut len = std::mem::size_of::<T>();
        // SAFETY: `name` is NUL-terminated, and jemalloc writes at most `len` bytes into `value`
        // (it refuses a size that is not the option's own).
        let rc = unsafe {
            tikv_jemalloc_sys::mallctl(name.as_ptr(), (&raw mut value).cast(), &raw mut len, std::ptr::null_mut(), 0)
        };
        assert_eq!(rc, 0, "mallctl {name:?}");
        value
    }

    /// The options built into the binary are the ones jemalloc runs with: a misspelt symbol name
    /// would leave jemalloc on its defaults without a word (8 arenas here, 10 s decay).
    #[test]
    fn jemalloc_runs_with_the_built_in_options() {
        // The allocator is this test binary's too, so allocate once to be sure it has started.
        drop(std::hint::black_box(vec![0_u8; 100]));
        assert_eq!(option::<u32>(c"opt.narenas"), 2);
        assert!(option::<bool>(c"opt.background_thread"));
        assert_eq!(option::<isize>(c"opt.dirty_decay_ms"), 1000);
        assert_eq!(option::<isize>(c"opt.muzzy_decay_ms"), 0);
    }
}
