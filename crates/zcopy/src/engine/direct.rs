//! `O_DIRECT` reads: the device's DMA writes straight into our buffer, bypassing
//! the page cache, the seed's "direct I/O".
//!
//! Applies to reading regular files on file systems that support it (ext4, xfs,
//! btrfs); tmpfs and some FUSE file systems refuse `O_DIRECT` at `open` with
//! `EINVAL`, and the caller falls back to buffered reads. The buffer address, the
//! file offset and the length must be multiples of the alignment `statx` reports
//! (`STATX_DIOALIGN`, Linux 6.1+; 4096 is assumed where it is not reported). No
//! page-cache pages are created, so a scan leaves the cache as it found it, and
//! there is no kernel → user copy; but there is no readahead either, so each read
//! waits for the device: large buffers matter.
//!
//! # References
//!  - [open(2)](https://man7.org/linux/man-pages/man2/open.2.html), section "O_DIRECT"
//!  - [statx(2)](https://man7.org/linux/man-pages/man2/statx.2.html), `STATX_DIOALIGN`

use std::alloc::{self, Layout};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd};

use rustix::fs::{AtFlags, OFlags, StatxFlags};

/// A file opened again with `O_DIRECT`, and the alignment its reads need.
pub struct DirectFile {
    file: File,
    /// Required alignment of buffer addresses.
    pub mem_align: usize,
    /// Required alignment of offsets and lengths.
    pub offset_align: usize,
}

impl DirectFile {
    /// Opens `file` again (through `/proc/self/fd`) with `O_DIRECT`, leaving the
    /// caller's descriptor as it is. `EINVAL` means the file system refuses direct I/O.
    pub fn reopen(file: &File) -> io::Result<DirectFile> {
        let path = format!("/proc/self/fd/{}", file.as_raw_fd());
        let fd = rustix::fs::open(
            path.as_str(),
            OFlags::RDONLY | OFlags::DIRECT | OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        let (mem_align, offset_align) =
            match rustix::fs::statx(&fd, "", AtFlags::EMPTY_PATH, StatxFlags::DIOALIGN) {
                Ok(st)
                    if st.stx_mask & StatxFlags::DIOALIGN.bits() != 0
                        && st.stx_dio_offset_align != 0 =>
                {
                    (
                        st.stx_dio_mem_align as usize,
                        st.stx_dio_offset_align as usize,
                    )
                }
                _ => (4096, 4096),
            };
        Ok(DirectFile {
            file: File::from(fd),
            mem_align: mem_align.max(1),
            offset_align: offset_align.max(1),
        })
    }

    /// `pread` into an aligned buffer at an aligned offset.
    pub fn read_at(&self, buf: &mut AlignedBuf, pos: u64) -> io::Result<usize> {
        loop {
            match rustix::io::pread(self.file.as_fd(), buf.as_mut_slice(), pos) {
                Err(rustix::io::Errno::INTR) => continue,
                other => return other.map_err(Into::into),
            }
        }
    }
}

/// A heap buffer whose address is a multiple of `align`.
pub struct AlignedBuf {
    ptr: *mut u8,
    layout: Layout,
}

// SAFETY: the buffer is plain owned memory with no thread affinity.
unsafe impl Send for AlignedBuf {}

impl AlignedBuf {
    /// A zeroed buffer of `len` bytes (rounded up to `align`) aligned to `align`.
    pub fn new(len: usize, align: usize) -> AlignedBuf {
        let align = align.next_power_of_two();
        let len = len.max(align).div_ceil(align) * align;
        let layout = Layout::from_size_align(len, align).expect("a valid buffer layout");
        // SAFETY: `layout` has a non-zero size.
        let ptr = unsafe { alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            alloc::handle_alloc_error(layout);
        }
        AlignedBuf { ptr, layout }
    }

    /// The whole buffer.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` points to `layout.size()` initialised bytes we own.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.layout.size()) }
    }

    /// The first `n` bytes.
    pub fn filled(&self, n: usize) -> &[u8] {
        assert!(n <= self.layout.size());
        // SAFETY: `ptr` points to at least `n` initialised bytes we own.
        unsafe { std::slice::from_raw_parts(self.ptr, n) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this very layout.
        unsafe { alloc::dealloc(self.ptr, self.layout) }
    }
}
