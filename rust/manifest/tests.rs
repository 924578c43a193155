use super::walk::{walk_hash, STAT_CHUNK};
use super::*;
use crate::index::Index;
use std::fs;
use std::os::unix::fs::symlink;

/// Walk and hash a directory: the manifest `hash_dir_info` summarises.
fn hash_dir(root: &Path, idx: Option<&Index>) -> Result<(Manifest, DirInfo)> {
    let (v, _, info) = walk_hash(root, idx)?;
    let entries = v
        .into_iter()
        .map(|e| Entry {
            path: e.path,
            hash: hash::hex(&blake3::Hash::from_bytes(e.hash)),
            size: e.size,
            exec: e.exec,
            link: e.link,
        })
        .collect();
    Ok((Manifest { entries }, info))
}

fn tree() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    fs::create_dir_all(r.join("a/b")).unwrap();
    fs::create_dir_all(r.join("empty")).unwrap();
    fs::write(r.join("a/b/x.txt"), b"hello").unwrap();
    fs::write(r.join("a-c"), b"").unwrap();
    fs::write(r.join("top"), b"t").unwrap();
    fs::set_permissions(r.join("top"), fs::Permissions::from_mode(0o755)).unwrap();
    d
}

#[test]
fn walk_is_sorted_bytewise_and_skips_empty_dirs() {
    let d = tree();
    let (m, info) = hash_dir(d.path(), None).unwrap();
    let paths: Vec<&[u8]> = m.entries.iter().map(|e| e.path.as_slice()).collect();
    assert_eq!(paths, vec![&b"a-c"[..], b"a/b/x.txt", b"top"]);
    assert_eq!(info.nfiles, 3);
    assert_eq!(info.size, 6);
    assert!(m.entries[2].exec);
    assert!(!m.entries[1].exec);
    assert_eq!(info.hash, hash::hash_bytes(&m.to_bytes()));
}

#[test]
fn bytes_round_trip_through_parse() {
    let d = tree();
    symlink("b/x.txt", d.path().join("a/l")).unwrap();
    let (m, _) = hash_dir(d.path(), None).unwrap();
    let bytes = m.to_bytes();
    assert!(bytes.starts_with(HEADER));
    let back = Manifest::parse(&bytes, Path::new("obj")).unwrap();
    assert_eq!(back, m);
    let l = m.entries.iter().find(|e| e.path == b"a/l").unwrap();
    assert_eq!(l.link.as_deref(), Some(&b"b/x.txt"[..]));
}

#[test]
fn links_outside_are_errors_naming_the_link() {
    let d = tree();
    symlink("../../..", d.path().join("a/out")).unwrap();
    let e = hash_dir(d.path(), None).unwrap_err();
    assert!(matches!(e, Error::Manifest { .. }));
    assert!(e.to_string().contains("a/out"), "{e}");
}

#[test]
fn absolute_link_inside_is_stored_relative() {
    let d = tree();
    let real = fs::canonicalize(d.path()).unwrap();
    symlink(real.join("top"), d.path().join("a/b/abs")).unwrap();
    let (m, _) = hash_dir(d.path(), None).unwrap();
    let l = m.entries.iter().find(|e| e.path == b"a/b/abs").unwrap();
    assert_eq!(l.link.as_deref(), Some(&b"../../top"[..]));
}

#[test]
fn roundabout_link_through_root_link_is_caught() {
    let d = tree();
    symlink(".", d.path().join("r")).unwrap();
    symlink("r/..", d.path().join("esc")).unwrap();
    assert!(hash_dir(d.path(), None).is_err());
}

#[test]
fn fifo_is_an_error() {
    let d = tree();
    let p = d.path().join("a/fifo");
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let e = hash_dir(d.path(), None).unwrap_err();
    assert!(
        e.to_string().contains("a/fifo") && e.to_string().contains("fifo"),
        "{e}"
    );
}

#[test]
fn non_utf8_names_round_trip() {
    let d = tempfile::tempdir().unwrap();
    let name = OsStr::from_bytes(b"caf\xe9\"\n.txt");
    fs::write(d.path().join(name), b"x").unwrap();
    let (m, _) = hash_dir(d.path(), None).unwrap();
    let bytes = m.to_bytes();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.contains(r#""caf\udce9\"\n.txt""#), "{text}");
    assert_eq!(Manifest::parse(&bytes, Path::new("o")).unwrap(), m);
}

fn entry(p: &str) -> Entry {
    Entry {
        path: p.as_bytes().to_vec(),
        hash: "0".repeat(64),
        size: 0,
        exec: false,
        link: None,
    }
}

#[test]
fn parse_rejects_unsafe_and_non_canonical() {
    let bad_paths = ["../x", "/abs", "a//b", "a/./b", "a/..", "a\0b", ""];
    for p in bad_paths {
        let m = Manifest {
            entries: vec![entry(p)],
        };
        let e = Manifest::parse(&m.to_bytes(), Path::new("obj")).unwrap_err();
        assert!(matches!(e, Error::UnsafePath { .. }), "{p:?}: {e}");
        assert!(e.to_string().contains("obj"));
    }
    let dup = Manifest {
        entries: vec![entry("a"), entry("a")],
    };
    assert!(Manifest::parse(&dup.to_bytes(), Path::new("o")).is_err());
    let unsorted = Manifest {
        entries: vec![entry("b"), entry("a")],
    };
    assert!(Manifest::parse(&unsorted.to_bytes(), Path::new("o")).is_err());
    let through = Manifest {
        entries: vec![entry("a"), entry("a/b")],
    };
    assert!(Manifest::parse(&through.to_bytes(), Path::new("o")).is_err());
    let mut link = Entry::for_link(b"a/l".to_vec(), b"../../x".to_vec());
    let m = Manifest {
        entries: vec![link.clone()],
    };
    assert!(Manifest::parse(&m.to_bytes(), Path::new("o")).is_err());
    link = Entry::for_link(b"a/l".to_vec(), b"../x".to_vec());
    let m = Manifest {
        entries: vec![link],
    };
    assert!(Manifest::parse(&m.to_bytes(), Path::new("o")).is_ok());
    let good = Manifest {
        entries: vec![entry("a")],
    }
    .to_bytes();
    let s = String::from_utf8(good).unwrap();
    for bad in [
        s.replace("\"size\":0", "\"size\":00"),
        s.replace("\"a\"", "\"\\u0061\""),
        s.trim_end().to_string(),
        s.replace("{\"path\"", "{ \"path\""),
        "garbage".to_string(),
        String::new(),
    ] {
        assert!(
            Manifest::parse(bad.as_bytes(), Path::new("o")).is_err(),
            "{bad:?}"
        );
    }
    assert!(Manifest::parse(HEADER, Path::new("o"))
        .unwrap()
        .entries
        .is_empty());
}

#[test]
fn unreadable_dir_error_names_it() {
    let d = tree();
    // Root ignores permissions; only meaningful for ordinary users.
    if unsafe { libc::geteuid() } == 0 {
        return;
    }
    let p = d.path().join("a");
    fs::set_permissions(&p, fs::Permissions::from_mode(0o000)).unwrap();
    let e = hash_dir(d.path(), None).unwrap_err();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    assert!(e.to_string().contains("/a"), "{e}");
}

#[test]
fn large_directory_parallel_stat_matches_canonical_bytes_and_index() {
    // Enough files for the chunked parallel `fstatat` path, plus a link and a subdirectory.
    let d = tree();
    let r = d.path();
    fs::create_dir_all(r.join("big")).unwrap();
    for i in 0..(2 * STAT_CHUNK + 7) {
        fs::write(r.join(format!("big/f{i}")), i.to_string()).unwrap();
    }
    symlink("top", r.join("ln")).unwrap();
    let (m, info) = hash_dir(r, None).unwrap();
    assert_eq!(info.nfiles, 2 * STAT_CHUNK as u64 + 7 + 4);
    assert_eq!(info.hash, hash::hash_bytes(&m.to_bytes()));
    assert!(m.entries.windows(2).all(|w| w[0].path < w[1].path));
    // Through an index (entries racy at first, then hits): same result each time.
    let state = tempfile::tempdir().unwrap();
    let idx = Index::load(state.path());
    assert_eq!(hash_dir_info(r, Some(&idx)).unwrap(), info);
    idx.save().unwrap();
    let idx = Index::load(state.path());
    assert_eq!(hash_dir(r, Some(&idx)).unwrap().1, info);
}

#[test]
fn file_names_lists_the_files_of_parse_and_skips_links() {
    let d = tempfile::tempdir().unwrap();
    // Escapes in names (a quote, a backslash, a byte that is not UTF-8) must not derail the scan.
    for (name, body) in [
        (&b"q\"uote"[..], &b"1"[..]),
        (b"back\\slash", b"2"),
        (b"caf\xe9", b"3"),
        (b"sub/x", b"4"),
        (b"exec.sh", b"5"),
    ] {
        let p = d.path().join(OsStr::from_bytes(name));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, body).unwrap();
    }
    fs::set_permissions(d.path().join("exec.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    symlink("sub/x", d.path().join("ln")).unwrap();
    let (m, _) = hash_dir(d.path(), None).unwrap();
    let bytes = m.to_bytes();
    let want: Vec<[u8; 32]> = m
        .entries
        .iter()
        .filter(|e| e.link.is_none())
        .map(|e| hash::raw_from_hex(e.hash.as_bytes()).unwrap())
        .collect();
    assert_eq!(want.len(), 5);
    assert_eq!(file_names(&bytes, Path::new("o")).unwrap(), want);
    assert!(file_names(HEADER, Path::new("o")).unwrap().is_empty());
    let cut = &bytes[..bytes.len() - 1];
    let e = file_names(cut, Path::new("obj")).unwrap_err();
    assert!(e.to_string().contains("obj"), "{e}");
    let mut bad = bytes.clone();
    let at = bytes.windows(8).position(|w| w == b"\"hash\":\"").unwrap() + 8;
    bad[at] = b'Z';
    assert!(file_names(&bad, Path::new("obj")).is_err());
}
