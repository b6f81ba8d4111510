//! Giving the memory a compile used back to the operating system.
//!
//! Compiling a component with Cranelift allocates tens of megabytes for a moment, on several
//! threads at once. glibc's allocator keeps what is freed in its arenas for reuse, so a daemon
//! that compiled its plugins at start-up (an empty artifact cache: the first run, or a new
//! version) would hold twice the memory of one that loaded them from the cache, for as long
//! as it runs. After a compile the free pages are handed back.

/// Returns the allocator's free pages to the kernel. Cheap when there is little to return;
/// called after each compile, never per passage.
#[allow(unsafe_code)]
pub(crate) fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` has no preconditions: it takes the allocator's own locks, touches
    // only memory the allocator holds free, and may be called from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
