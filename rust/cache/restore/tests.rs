use super::*;
use crate::cache::insert::insert;
use std::os::unix::fs::MetadataExt;

fn modes(m: &[&str]) -> Vec<LinkMode> {
    link::parse_modes(m).unwrap()
}

fn tree(root: &Path) {
    fs::create_dir_all(root.join("d/e")).unwrap();
    fs::write(root.join("a"), b"A").unwrap();
    fs::write(root.join("d/b"), b"B").unwrap();
    fs::write(root.join("d/e/c"), b"C").unwrap();
    fs::write(root.join("x.sh"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(root.join("x.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("d/b", root.join("lnk")).unwrap();
}

fn listing(root: &Path) -> Vec<(String, Vec<u8>)> {
    manifest::walk(root)
        .unwrap()
        .into_iter()
        .map(|w| {
            let content = match &w.kind {
                manifest::Kind::File => fs::read(&w.abs).unwrap(),
                manifest::Kind::Link(t) => t.clone(),
            };
            (String::from_utf8(w.rel).unwrap(), content)
        })
        .collect()
}

#[test]
fn restore_dir_each_mode_replaces_exactly() {
    for m in ["copy", "hardlink", "reflink"] {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        tree(&src);
        let want = listing(&src);
        let cache = d.path().join("cache");
        let info = insert(&src, &cache, None, modes(&["copy"])).unwrap();
        let dest = d.path().join("out/dest");
        fs::create_dir_all(&dest).unwrap();
        fs::write(dest.join("extra"), b"junk").unwrap();
        let used = restore(&info.hash, true, &dest, &cache, modes(&[m, "copy"]), None).unwrap();
        assert_eq!(listing(&dest), want, "{m}");
        let x = fs::metadata(dest.join("x.sh")).unwrap().mode() & 0o777;
        assert_eq!(x, 0o755);
        let a = fs::metadata(dest.join("a")).unwrap().mode() & 0o777;
        if used == LinkMode::Hardlink {
            assert_eq!(a, 0o444);
        } else {
            assert_eq!(a, 0o644, "{m} -> {used:?}");
        }
        let names: Vec<_> = fs::read_dir(d.path().join("out"))
            .unwrap()
            .flatten()
            .collect();
        assert_eq!(names.len(), 1, "no temp left beside dest");
    }
}

#[test]
fn copy_restore_refuses_corrupt_object() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("f");
    fs::write(&f, b"good").unwrap();
    let cache = d.path().join("cache");
    let info = insert(&f, &cache, None, modes(&["copy"])).unwrap();
    let obj = Cache::new(&cache).object_path(&info.hash).unwrap();
    fs::set_permissions(&obj, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&obj, b"evil").unwrap();
    let dest = d.path().join("dest");
    fs::write(&dest, b"old").unwrap();
    let e = restore(&info.hash, false, &dest, &cache, modes(&["copy"]), None).unwrap_err();
    assert!(matches!(e, Error::CacheCorrupt { .. }), "{e}");
    assert!(e.to_string().contains(&obj.display().to_string()));
    assert_eq!(fs::read(&dest).unwrap(), b"old");
    assert_eq!(fs::read_dir(d.path()).unwrap().count(), 3); // f, cache, dest
}

#[test]
fn missing_object_is_reported() {
    let d = tempfile::tempdir().unwrap();
    let e = restore(
        &"ab".repeat(32),
        false,
        &d.path().join("x"),
        &d.path().join("cache"),
        modes(&["copy"]),
        None,
    )
    .unwrap_err();
    assert!(matches!(e, Error::CacheMissing { .. }), "{e}");
}

#[test]
fn refuses_symlinked_parent_outside_project() {
    let d = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let proj = d.path().join("proj");
    fs::create_dir_all(proj.join(".pivot/cache")).unwrap();
    let f = proj.join("f");
    fs::write(&f, b"x").unwrap();
    let cache = proj.join(".pivot/cache");
    let info = insert(&f, &cache, None, modes(&["copy"])).unwrap();
    std::os::unix::fs::symlink(outside.path(), proj.join("evil")).unwrap();
    let e = restore(
        &info.hash,
        false,
        &proj.join("evil/f"),
        &cache,
        modes(&["copy"]),
        None,
    )
    .unwrap_err();
    assert!(matches!(e, Error::UnsafePath { .. }), "{e}");
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
    // a symlink that stays inside is fine
    fs::create_dir(proj.join("real")).unwrap();
    std::os::unix::fs::symlink("real", proj.join("ok")).unwrap();
    restore(
        &info.hash,
        false,
        &proj.join("ok/f"),
        &cache,
        modes(&["copy"]),
        None,
    )
    .unwrap();
    assert_eq!(fs::read(proj.join("real/f")).unwrap(), b"x");
}

#[test]
fn dest_symlink_is_replaced_not_followed() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("f");
    fs::write(&f, b"new").unwrap();
    let cache = d.path().join("cache");
    let info = insert(&f, &cache, None, modes(&["copy"])).unwrap();
    let target = d.path().join("target");
    fs::write(&target, b"keep").unwrap();
    let dest = d.path().join("dest");
    std::os::unix::fs::symlink(&target, &dest).unwrap();
    restore(&info.hash, false, &dest, &cache, modes(&["copy"]), None).unwrap();
    assert_eq!(fs::read(&target).unwrap(), b"keep");
    assert!(!fs::symlink_metadata(&dest)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read(&dest).unwrap(), b"new");
}
