//! Placing fetched objects into the local cache: verified first, named last (docs/remote.md,
//! "Fetch").
//!
//! An object's bytes are written to a file that has no name yet and hashed on the way; only when
//! the hash equals the object's name is the file given that name. Where the filesystem supports
//! it (probed once per fetch) the file is an unnamed `O_TMPFILE` in `files/`, named with one
//! `linkat` into its shard: no temp entry created and removed in `files/`, no cross-directory
//! rename (which takes the filesystem-wide rename lock), and nothing left behind by a kill.
//! Elsewhere it is a named temp in `files/` moved with `place_temp`, the cache's insert rule.
//! Either way an object already in place is kept when intact and replaced when damaged.
//!
//! Stat index: a fetched object's content is known (it was just hashed), so it is recorded in
//! the stat index and the checkout that follows links it without reading it again. So that the
//! entry is sound, the object's mtime is set, while the file is still unnamed (no one else can
//! write to it), to a time before the index stamp of this fetch: any later write moves the
//! mtime past the stamp, which the index notices (`Index::lookup_object`).

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use super::transfer::Got;
use crate::atomic::{self, kill_point};
use crate::cache::insert::{object_intact, place_temp};
use crate::cache::link::{self, OBJECT_MODE};
use crate::cache::Cache;
use crate::error::{Error, IoContext, Result};
use crate::index::{Index, RACY_WINDOW_NS};

/// Kill point: an object verified, not yet named.
pub const KILL_POINT: &str = "fetch_object_write";

/// Writes verified objects into one cache (shared by the threads of one fetch).
pub struct Placer<'a> {
    cache: &'a Cache,
    idx: Option<&'a Index>,
    /// `idx`'s stamp, taken before any object of this fetch was written.
    stamp: i64,
    /// None: named temps (no `O_TMPFILE` here).
    tmpfile: Option<Naming>,
}

/// An object being written: its file (unnamed, or a named temp) and its hash so far.
pub struct Pending {
    file: File,
    tmp: Option<PathBuf>,
    /// For errors: the temp, or the directory of the unnamed file.
    at: PathBuf,
    hasher: blake3::Hasher,
    written: u64,
}

impl Pending {
    pub fn write(&mut self, b: &[u8]) -> Result<()> {
        self.hasher.update(b);
        self.written += b.len() as u64;
        self.file.write_all(b).map_err(|e| self.err(e))
    }

    fn err(&self, e: io::Error) -> Error {
        Error::io(self.at.clone(), e)
    }
}

/// An object not named (a mismatch, a write error such as a full disk, a fetch abandoned
/// because another transfer failed) leaves neither a partial file nor the space it took.
impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(t) = self.tmp.take() {
            let _ = fs::remove_file(t);
        }
    }
}

fn open_tmpfile(dir: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .mode(OBJECT_MODE)
        .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
        .open(dir)
}

/// How an unnamed file is given its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Naming {
    /// `linkat(fd, "", …, AT_EMPTY_PATH)`: no path walk; needs `CAP_DAC_READ_SEARCH`.
    EmptyPath,
    /// `linkat("/proc/self/fd/N", …, AT_SYMLINK_FOLLOW)`: unprivileged, through `/proc`.
    ProcFd,
}

/// Give the unnamed file `f` the name `dst` (EEXIST if taken).
fn link_tmpfile(f: &File, dst: &Path, how: Naming) -> io::Result<()> {
    let dst = CString::new(dst.as_os_str().as_bytes())?;
    let rc = match how {
        // SAFETY: a valid fd, an empty NUL-terminated path and a valid destination path.
        Naming::EmptyPath => unsafe {
            libc::linkat(
                f.as_raw_fd(),
                c"".as_ptr(),
                libc::AT_FDCWD,
                dst.as_ptr(),
                libc::AT_EMPTY_PATH,
            )
        },
        Naming::ProcFd => {
            let src = CString::new(format!("/proc/self/fd/{}", f.as_raw_fd()))?;
            // SAFETY: valid NUL-terminated paths; AT_SYMLINK_FOLLOW resolves the fd's magic
            // link to the open (unnamed) inode, the documented way to name an O_TMPFILE
            // without privileges.
            unsafe {
                libc::linkat(
                    libc::AT_FDCWD,
                    src.as_ptr(),
                    libc::AT_FDCWD,
                    dst.as_ptr(),
                    libc::AT_SYMLINK_FOLLOW,
                )
            }
        }
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether unnamed files can be created in `dir` and named afterwards (kernel, filesystem and
/// privileges or `/proc` cooperate), and how: one probe per fetch, its name removed at once.
fn tmpfile_naming(dir: &Path) -> Option<Naming> {
    [Naming::EmptyPath, Naming::ProcFd]
        .into_iter()
        .find(|&how| {
            let Ok(f) = open_tmpfile(dir) else {
                return false;
            };
            let probe = atomic::temp_path_in(dir);
            let ok = link_tmpfile(&f, &probe, how).is_ok();
            let _ = fs::remove_file(&probe);
            ok
        })
}

/// Set the mtime of the open file to `ns` (nanoseconds since the epoch), atime untouched.
fn set_mtime(f: &File, ns: i64) -> io::Result<()> {
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: ns.div_euclid(1_000_000_000),
            tv_nsec: ns.rem_euclid(1_000_000_000),
        },
    ];
    // SAFETY: valid fd and a two-element timespec array.
    if unsafe { libc::futimens(f.as_raw_fd(), times.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl<'a> Placer<'a> {
    /// `cache.prepare()` must have run (`files/` exists).
    pub fn new(cache: &'a Cache, idx: Option<&'a Index>) -> Placer<'a> {
        Placer {
            cache,
            idx,
            stamp: idx.map_or(0, Index::stamp),
            tmpfile: tmpfile_naming(&cache.files),
        }
    }

    /// Start writing an object.
    pub fn begin(&self) -> Result<Pending> {
        let (file, tmp) = if self.tmpfile.is_some() {
            (open_tmpfile(&self.cache.files).at(&self.cache.files)?, None)
        } else {
            let tmp = atomic::temp_path_in(&self.cache.files);
            let f = link::create_new(&tmp, OBJECT_MODE).at(&tmp)?;
            (f, Some(tmp))
        };
        Ok(Pending {
            at: tmp.clone().unwrap_or_else(|| self.cache.files.clone()),
            file,
            tmp,
            hasher: blake3::Hasher::new(),
            written: 0,
        })
    }

    /// Store an object whose bytes are all in memory: checked before any file is created.
    pub fn store(&self, hash: &str, data: &[u8]) -> Result<Got> {
        if blake3::hash(data).to_hex().as_str() != hash {
            return Ok(Got::Corrupt);
        }
        let mut p = self.begin()?;
        p.write(data)?;
        self.finish(p, hash)
    }

    /// Verify the written object and name it (see module doc); a mismatch discards it.
    pub fn finish(&self, mut p: Pending, hash: &str) -> Result<Got> {
        if p.hasher.finalize().to_hex().as_str() != hash {
            drop(p); // a named temp goes with it
            return Ok(Got::Corrupt);
        }
        match self.name(&mut p, hash) {
            Ok(()) => Ok(Got::Stored(p.written)),
            Err(e) => {
                drop(p); // a named temp goes with it
                Err(e)
            }
        }
    }

    fn name(&self, p: &mut Pending, hash: &str) -> Result<()> {
        let meta = match self.idx {
            Some(_) => {
                // Before the stamp by more than the racy window, so the entry is trusted.
                set_mtime(&p.file, self.stamp - RACY_WINDOW_NS - 1).map_err(|e| p.err(e))?;
                Some(p.file.metadata().map_err(|e| p.err(e))?)
            }
            None => None,
        };
        let obj = self.cache.object_path(hash)?;
        let mut placed = true;
        if let Some(tmp) = &p.tmp {
            placed = place_temp(self.cache, tmp, hash, p.written, KILL_POINT)?;
            if !placed {
                let _ = fs::remove_file(tmp);
            }
            p.tmp = None; // moved into the cache, or removed: nothing for `drop` to do
        } else {
            let how = self.tmpfile.expect("a file without a temp name is unnamed");
            self.cache.ensure_shard(hash)?;
            kill_point(KILL_POINT);
            match link_tmpfile(&p.file, &obj, how) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let intact = fs::symlink_metadata(&obj)
                        .is_ok_and(|m| m.is_file() && m.len() == p.written)
                        && object_intact(&obj, hash);
                    if intact {
                        placed = false;
                    } else {
                        // It names other bytes (truncated by a crash, or edited): replace it.
                        let tmp = atomic::temp_path_in(&self.cache.files);
                        link_tmpfile(&p.file, &tmp, how).at(&tmp)?;
                        fs::rename(&tmp, &obj).at(&obj).inspect_err(|_| {
                            let _ = fs::remove_file(&tmp);
                        })?;
                    }
                }
                Err(e) => return Err(Error::io(obj, e)),
            }
        }
        if let (true, Some(i), Some(m)) = (placed, self.idx, meta) {
            let h = blake3::Hash::from_hex(hash).expect("validated hash");
            i.record(&m, self.stamp, &h);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> (tempfile::TempDir, Cache) {
        let d = tempfile::tempdir().unwrap();
        let c = Cache::new(d.path());
        c.prepare().unwrap();
        (d, c)
    }

    fn leftovers(c: &Cache) -> Vec<String> {
        fs::read_dir(&c.files)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect()
    }

    #[test]
    fn a_verified_object_is_named_and_recorded_so_the_index_vouches_for_it() {
        let (d, c) = cache();
        let state = d.path().join("state");
        let idx = Index::load(&state);
        let pl = Placer::new(&c, Some(&idx));
        let h = crate::hash::hash_bytes(b"content");
        assert_eq!(pl.store(&h, b"content").unwrap(), Got::Stored(7));
        let obj = c.object_path(&h).unwrap();
        assert_eq!(fs::read(&obj).unwrap(), b"content");
        let m = fs::symlink_metadata(&obj).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777,
            0o444
        );
        idx.save().unwrap();
        let again = Index::load(&state);
        assert_eq!(again.lookup_object(&m).as_deref(), Some(h.as_str()));
        assert!(leftovers(&c).is_empty(), "{:?}", leftovers(&c));
    }

    #[test]
    fn bytes_that_do_not_match_their_name_are_never_named() {
        let (_d, c) = cache();
        let pl = Placer::new(&c, None);
        let h = crate::hash::hash_bytes(b"good");
        assert_eq!(pl.store(&h, b"evil").unwrap(), Got::Corrupt);
        let mut p = pl.begin().unwrap();
        p.write(b"ev").unwrap();
        p.write(b"il").unwrap();
        assert_eq!(pl.finish(p, &h).unwrap(), Got::Corrupt);
        assert!(!c.object_path(&h).unwrap().exists());
        assert!(leftovers(&c).is_empty(), "{:?}", leftovers(&c));
    }

    #[test]
    fn an_intact_object_is_kept_and_a_truncated_one_replaced() {
        let (_d, c) = cache();
        let pl = Placer::new(&c, None);
        let h = crate::hash::hash_bytes(b"twelve bytes");
        let obj = c.object_path(&h).unwrap();
        fs::create_dir_all(obj.parent().unwrap()).unwrap();
        fs::write(&obj, b"twelve").unwrap();
        assert_eq!(pl.store(&h, b"twelve bytes").unwrap(), Got::Stored(12));
        assert_eq!(fs::read(&obj).unwrap(), b"twelve bytes");
        let ino = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&obj).unwrap());
        assert_eq!(pl.store(&h, b"twelve bytes").unwrap(), Got::Stored(12));
        let ino2 = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&obj).unwrap());
        assert_eq!(ino, ino2, "an intact object is not rewritten");
        assert!(leftovers(&c).is_empty(), "{:?}", leftovers(&c));
    }

    #[test]
    fn named_temps_work_where_unnamed_files_do_not() {
        let (_d, c) = cache();
        let mut pl = Placer::new(&c, None);
        pl.tmpfile = None;
        let h = crate::hash::hash_bytes(b"x");
        assert_eq!(pl.store(&h, b"x").unwrap(), Got::Stored(1));
        assert_eq!(fs::read(c.object_path(&h).unwrap()).unwrap(), b"x");
        assert_eq!(pl.store(&h, b"y").unwrap(), Got::Corrupt);
        assert!(leftovers(&c).is_empty(), "{:?}", leftovers(&c));
    }

    #[test]
    fn both_ways_of_naming_an_unnamed_file_place_the_object() {
        for how in [Naming::EmptyPath, Naming::ProcFd] {
            let (_d, c) = cache();
            let mut pl = Placer::new(&c, None);
            if pl.tmpfile.is_none() {
                return; // no O_TMPFILE on this file system: the named-temp test covers it
            }
            let probe = atomic::temp_path_in(&c.files);
            let f = open_tmpfile(&c.files).unwrap();
            if link_tmpfile(&f, &probe, how).is_err() {
                continue; // EmptyPath without the capability
            }
            fs::remove_file(&probe).unwrap();
            pl.tmpfile = Some(how);
            let h = crate::hash::hash_bytes(b"named");
            assert_eq!(pl.store(&h, b"named").unwrap(), Got::Stored(5), "{how:?}");
            assert_eq!(fs::read(c.object_path(&h).unwrap()).unwrap(), b"named");
            assert!(leftovers(&c).is_empty(), "{:?}", leftovers(&c));
        }
    }

    #[test]
    fn an_object_left_unnamed_leaves_no_file_in_either_mode() {
        // A write error (a full disk) or a fetch abandoned mid-object drops the Pending.
        for tmpfile in [true, false] {
            let (_d, c) = cache();
            let mut pl = Placer::new(&c, None);
            if !tmpfile {
                pl.tmpfile = None;
            }
            let mut p = pl.begin().unwrap();
            p.write(b"half of an obj").unwrap();
            drop(p);
            assert!(leftovers(&c).is_empty(), "{:?}", leftovers(&c));
        }
    }
}
