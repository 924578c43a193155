use super::*;
use std::os::unix::fs::MetadataExt;

fn modes(m: &[&str]) -> Vec<LinkMode> {
    link::parse_modes(m).unwrap()
}

fn all_objects_valid(cache: &Path) -> usize {
    let mut n = 0;
    for shard in fs::read_dir(cache.join("files")).unwrap().flatten() {
        assert!(
            shard.file_type().unwrap().is_dir(),
            "stray file in files/: {:?}",
            shard.path()
        );
        for o in fs::read_dir(shard.path()).unwrap().flatten() {
            let name = format!(
                "{}{}",
                shard.file_name().to_str().unwrap(),
                o.file_name().to_str().unwrap()
            );
            assert_eq!(hash::hash_file(&o.path()).unwrap(), name);
            assert_eq!(o.metadata().unwrap().permissions().mode() & 0o777, 0o444);
            n += 1;
        }
    }
    n
}

#[test]
fn insert_file_each_mode() {
    for m in ["copy", "hardlink", "reflink"] {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("f.txt");
        fs::write(&f, b"hello").unwrap();
        let cache = d.path().join("cache");
        let r = insert(&f, &cache, None, modes(&[m, "copy"])).unwrap();
        assert_eq!(r.hash, hash::hash_bytes(b"hello"));
        assert_eq!((r.size, r.nfiles, r.is_dir), (5, 1, false));
        assert_eq!(all_objects_valid(&cache), 1);
        assert_eq!(fs::read(&f).unwrap(), b"hello");
        let obj = Cache::new(&cache).object_path(&r.hash).unwrap();
        let same = fs::metadata(&obj).unwrap().ino() == fs::metadata(&f).unwrap().ino();
        assert_eq!(same, m == "hardlink", "{m}");
        // re-insert: the object is not rewritten
        let ino = fs::metadata(&obj).unwrap().ino();
        insert(&f, &cache, None, modes(&[m, "copy"])).unwrap();
        assert_eq!(fs::metadata(&obj).unwrap().ino(), ino);
        assert!(Cache::new(&cache).contains(&r.hash, false).unwrap());
    }
}

#[test]
fn insert_dir_dedups_and_writes_manifest() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("out");
    fs::create_dir_all(root.join("sub")).unwrap();
    fs::write(root.join("a"), b"same").unwrap();
    fs::write(root.join("sub/b"), b"same").unwrap();
    fs::write(root.join("run.sh"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("a", root.join("ln")).unwrap();
    let cache = d.path().join("cache");
    let state = d.path().join("state");
    let before = crate::paths::hash_path(&root, None).unwrap();
    let r = insert(&root, &cache, Some(&state), modes(&["hardlink", "copy"])).unwrap();
    assert_eq!(r, before, "insert hashes like hash_path");
    assert_eq!(all_objects_valid(&cache), 3); // "same", run.sh, manifest
    let c = Cache::new(&cache);
    let m = c.read_manifest(&r.hash).unwrap();
    assert_eq!(m.entries.len(), 4);
    assert!(c.contains(&r.hash, true).unwrap());
    // exec file was copied, keeps its mode; hard-linked ones are read-only
    let md = fs::metadata(root.join("run.sh")).unwrap();
    assert_eq!(md.permissions().mode() & 0o777, 0o755);
    assert_eq!(
        fs::metadata(root.join("a")).unwrap().ino(),
        fs::metadata(root.join("sub/b")).unwrap().ino()
    );
    // second insert with the index: same result
    let r2 = insert(&root, &cache, Some(&state), modes(&["hardlink"])).unwrap();
    assert_eq!(r2, r);
    assert_eq!(all_objects_valid(&cache), 3);
}
