//! Loop-mounting a disk file by system call: a free loop device from
//! /dev/loop-control, bound to the file with LOOP_CONFIGURE (auto-clear, so
//! the device is freed with the last unmount, as `mount -o loop` does), then
//! mount(2) as ext4. The `mount` tool does the same through libmount at the
//! cost of a process, a locale load, a mountinfo parse and a filesystem
//! probe per attach; the Go CPI pays those too.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

// <linux/loop.h>
// `Ioctl` is the request type of the libc linked (c_ulong in glibc, c_int in musl).
const LOOP_CTL_GET_FREE: libc::Ioctl = 0x4C82;
const LOOP_CONFIGURE: libc::Ioctl = 0x4C0A;
const LO_FLAGS_AUTOCLEAR: u32 = 4;
const LO_NAME_SIZE: usize = 64;

#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; LO_NAME_SIZE],
    lo_crypt_name: [u8; LO_NAME_SIZE],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

/// Binds `file` to a free loop device and mounts it (ext4) at `target`.
pub fn mount(file: &Path, target: &Path) -> io::Result<()> {
    let backing = OpenOptions::new().read(true).write(true).open(file)?;
    let tgt = CString::new(target.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let (device, dev_path) = bind_free_device(&backing, file)?;
    let src = CString::new(dev_path).map_err(io::Error::other)?;
    // SAFETY: NUL-terminated strings that live across the call; no data.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            tgt.as_ptr(),
            c"ext4".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    let err = (rc != 0).then(io::Error::last_os_error);
    // The mount holds the device now; closing ours lets auto-clear free it
    // at the last unmount (or now, when the mount failed).
    drop(device);
    err.map_or(Ok(()), Err)
}

/// A free loop device, bound to `backing`. Another process may take the
/// device between GET_FREE and CONFIGURE (EBUSY): then ask again.
fn bind_free_device(backing: &File, file: &Path) -> io::Result<(File, String)> {
    let control = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/loop-control")?;
    let mut last = io::Error::other("no free loop device");
    for _ in 0..8 {
        // SAFETY: an ioctl without argument on an open descriptor.
        let n = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let path = format!("/dev/loop{n}");
        // Without devtmpfs (some containers) a new device has no node yet.
        let device = OpenOptions::new().read(true).write(true).open(&path)?;
        let mut config = LoopConfig {
            fd: backing.as_raw_fd() as u32,
            block_size: 0,
            info: LoopInfo64 {
                lo_device: 0,
                lo_inode: 0,
                lo_rdevice: 0,
                lo_offset: 0,
                lo_sizelimit: 0,
                lo_number: 0,
                lo_encrypt_type: 0,
                lo_encrypt_key_size: 0,
                lo_flags: LO_FLAGS_AUTOCLEAR,
                lo_file_name: [0; LO_NAME_SIZE],
                lo_crypt_name: [0; LO_NAME_SIZE],
                lo_encrypt_key: [0; 32],
                lo_init: [0; 2],
            },
            reserved: [0; 8],
        };
        // What `losetup -l` shows as the backing file (63 bytes at most).
        let name = file.as_os_str().as_bytes();
        let len = name.len().min(LO_NAME_SIZE - 1);
        config.info.lo_file_name[..len].copy_from_slice(&name[..len]);
        // SAFETY: a pointer to a live, fully initialised loop_config.
        let rc = unsafe { libc::ioctl(device.as_raw_fd(), LOOP_CONFIGURE, &config) };
        if rc == 0 {
            return Ok((device, path));
        }
        last = io::Error::last_os_error();
        if last.raw_os_error() != Some(libc::EBUSY) {
            return Err(last);
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_config_has_the_kernel_layout() {
        assert_eq!(std::mem::size_of::<LoopInfo64>(), 232);
        assert_eq!(std::mem::size_of::<LoopConfig>(), 304);
    }
}
