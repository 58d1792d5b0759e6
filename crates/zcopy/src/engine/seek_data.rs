//! `lseek(fd, off, SEEK_DATA)` and `SEEK_HOLE`: where a sparse file keeps its data,
//! so a copy can move only the data and leave the holes as holes.
//!
//! A 10 GiB file with 1 MiB of data has one or a few data segments; copying them
//! and then setting the length leaves the copy as sparse as the source. File
//! systems without hole tracking report the whole file as one data segment, which
//! is correct, merely dense.
//!
//! # References
//!  - [lseek(2)](https://man7.org/linux/man-pages/man2/lseek.2.html), "Seeking file data and holes"

use std::io;
use std::ops::Range;
use std::os::fd::AsFd;

use rustix::fs::SeekFrom;
use rustix::io::Errno;

/// The data segments of the first `size` bytes of `file`, in order.
pub fn data_segments(file: impl AsFd, size: u64) -> io::Result<Vec<Range<u64>>> {
    let fd = file.as_fd();
    let mut segments = Vec::new();
    let mut pos = 0;
    while pos < size {
        let start = match rustix::fs::seek(fd, SeekFrom::Data(pos)) {
            Ok(start) => start,
            // ENXIO: no data at or after `pos`; the rest is a hole.
            Err(Errno::NXIO) => break,
            // EINVAL: a file system without SEEK_DATA; treat the rest as data.
            Err(Errno::INVAL) => pos,
            Err(e) => return Err(e.into()),
        };
        if start >= size {
            break;
        }
        let end = match rustix::fs::seek(fd, SeekFrom::Hole(start)) {
            Ok(end) => end.min(size),
            Err(Errno::INVAL) => size,
            Err(e) => return Err(e.into()),
        };
        segments.push(start..end);
        pos = end;
    }
    Ok(segments)
}

/// Whether `file` has fewer blocks allocated than its length needs: it has holes.
pub fn has_holes(file: impl AsFd) -> io::Result<bool> {
    let st = rustix::fs::fstat(file)?;
    Ok((st.st_blocks as u64) * 512 < st.st_size as u64)
}
