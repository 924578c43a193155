use super::*;
use std::os::unix::fs::PermissionsExt;

/// Entries visible to `idx` (its snapshot and this process's deferred ones).
fn entries(idx: &Index) -> usize {
    let extra = idx.overlay.as_ref().map_or(0, |o| {
        o.keys().filter(|k| !idx.base.contains_key(k)).count()
    });
    idx.base.len() + extra
}

/// Hash `f` through the index under `state` and save it (what `paths::hash_path` does).
fn hash_saved(f: &Path, state: &Path) -> String {
    let idx = Index::load(state);
    let (h, _) = hash_file_with(f, &fs::metadata(f).unwrap(), Some(&idx)).unwrap();
    idx.save().unwrap();
    h
}

fn backdate(p: &Path) {
    // Make mtime old; ctime stays "now", so entries are racy until 2 s have passed.
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let t = [
        libc::timespec {
            tv_sec: 1_000_000_000,
            tv_nsec: 0,
        },
        libc::timespec {
            tv_sec: 1_000_000_000,
            tv_nsec: 0,
        },
    ];
    assert_eq!(
        unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), t.as_ptr(), 0) },
        0
    );
}

#[test]
fn encode_decode_round_trip_and_corruption() {
    let mut map = Map::default();
    for i in 0..10u64 {
        map.insert(
            (1, i),
            Rec {
                size: i,
                mtime_ns: 5,
                ctime_ns: 6,
                recorded_ns: 7,
                hash: [u8::try_from(i).unwrap(); 32],
            },
        );
    }
    let b = encode(&map);
    assert_eq!(decode(&b).unwrap(), map);
    let mut bad = b.clone();
    bad[40] ^= 1;
    assert!(decode(&bad).is_err());
    assert!(decode(&b[..b.len() - 1]).is_err());
    assert!(decode(b"garbage").is_err());
}

#[test]
fn racy_entries_are_not_trusted_and_fresh_ones_are() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("f");
    fs::write(&f, b"abc").unwrap();
    // An mtime not older than the stat (here: in the future) is racy on any clock.
    let future = std::time::SystemTime::now() + std::time::Duration::from_secs(1);
    File::options()
        .write(true)
        .open(&f)
        .unwrap()
        .set_modified(future)
        .unwrap();
    let state = d.path().join("state");
    let h1 = hash_saved(&f, &state);
    let idx = Index::load(&state);
    let m = fs::metadata(&f).unwrap();
    assert!(idx.lookup(&m).is_none(), "just written: racy");
    // Pretend the entry was recorded long after the file's last change.
    let rec = idx.base[&key(&m)];
    let mut map = (*idx.base).clone();
    map.insert(
        key(&m),
        Rec {
            recorded_ns: rec.recorded_ns + 3 * RACY_WINDOW_NS,
            ..rec
        },
    );
    let trusted = Index {
        dir: idx.dir.clone(),
        local_dev: None,
        stamp: OnceLock::new(),
        overlay: None,
        base: Arc::new(map),
        pending: Mutex::new(vec![]),
        warning: None,
    };
    assert_eq!(trusted.lookup(&m).as_deref(), Some(h1.as_str()));
    // Any change of ctime invalidates (chmod changes ctime only).
    std::thread::sleep(std::time::Duration::from_millis(20));
    fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
    backdate(&f);
    assert!(trusted.lookup(&fs::metadata(&f).unwrap()).is_none());
}

#[test]
fn corrupt_index_is_ignored_and_rebuilt() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("f");
    fs::write(&f, b"abc").unwrap();
    let state = d.path().join("state");
    fs::create_dir_all(state.join("index")).unwrap();
    fs::write(
        state.join("index/stat.idx"),
        b"garbage garbage garbage garbage garbage",
    )
    .unwrap();
    let idx = Index::load(&state);
    assert!(idx.warning.is_some());
    let h = hash_saved(&f, &state);
    assert_eq!(h, hash::hash_bytes(b"abc"));
    let again = Index::load(&state);
    assert!(again.warning.is_none());
    assert_eq!(entries(&again), 1);
}

#[test]
fn deferred_entries_are_visible_in_process_and_written_by_the_flush() {
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("state");
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    fs::write(&a, b"one").unwrap();
    fs::write(&b, b"two").unwrap();
    hash_saved(&a, &state); // saved at once: deferral is off
    let file = Index::file(&state.join("index"));
    let before = fs::read(&file).unwrap();

    let idx = Index::load(&state);
    let m = fs::metadata(&b).unwrap();
    idx.record(&m, now_ns(), &blake3::hash(b"two"));
    idx.defer(std::mem::take(&mut *idx.pending.lock().unwrap()));
    assert_eq!(
        fs::read(&file).unwrap(),
        before,
        "deferred: nothing written yet"
    );
    assert_eq!(
        entries(&Index::load(&state)),
        2,
        "a later load sees the deferred entry"
    );

    flush_deferred().unwrap();
    assert!(!deferred()
        .lock()
        .unwrap()
        .contains_key(&state.join("index")));
    let data = fs::read(&file).unwrap();
    assert_eq!(
        decode(&data).unwrap().len(),
        2,
        "the flush merged it into the file"
    );
}

#[test]
fn local_filesystems_compare_with_their_own_clock() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("f");
    fs::write(&f, b"abc").unwrap();
    let state = d.path().join("state"); // not created yet: its parent decides
    let idx = Index::load(&state);
    let m = fs::metadata(&f).unwrap();
    // The temp dir is ext4, tmpfs or similar on every machine these tests run on.
    assert_eq!(idx.local_dev, Some(m.dev()));
    let mt = mtime_ns(&m);
    let at = |recorded_ns: i64| {
        let mut map = Map::default();
        map.insert(
            key(&m),
            Rec {
                size: m.len(),
                mtime_ns: mt,
                ctime_ns: ctime_ns(&m),
                recorded_ns,
                hash: [7; 32],
            },
        );
        Index {
            base: Arc::new(map),
            ..Index::load(&state)
        }
    };
    assert!(
        at(mt).lookup(&m).is_none(),
        "stat in the write's own tick: racy"
    );
    assert!(at(mt + 1).lookup(&m).is_some(), "a later tick: trusted");
    let far = Index {
        local_dev: None,
        ..at(mt + 1)
    };
    assert!(far.lookup(&m).is_none(), "another filesystem keeps 2 s");
    assert!(at(mt + 2 * RACY_WINDOW_NS).lookup(&m).is_some());
}

#[test]
fn the_stamp_is_the_filesystem_clock_between_writes() {
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("state");
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    fs::write(&a, b"before").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(30));
    let idx = Index::load(&state);
    let stamp = idx.stamp();
    assert!(state.join("index/clock").is_file());
    assert_eq!(idx.stamp(), stamp, "one stamp per loaded index");
    fs::write(&b, b"after").unwrap();
    let (ma, mb) = (fs::metadata(&a).unwrap(), fs::metadata(&b).unwrap());
    assert!(
        mtime_ns(&ma) < stamp,
        "a write 30 ms earlier is older than the stamp"
    );
    assert!(
        mtime_ns(&mb) >= stamp,
        "a write after the stamp is never older than it"
    );
    assert!(stamp <= now_ns());
    // A file hashed 30 ms after its last write is trusted by the next load.
    hash_saved(&a, &state);
    assert!(Index::load(&state).lookup(&ma).is_some());
}

#[test]
fn links_made_while_a_file_is_read_are_not_a_change() {
    // A parallel checkout hard-links one cache object to two outputs: the link moves the ctime
    // of the file another thread is hashing, which must not make that file "changed".
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f");
    fs::write(&f, vec![7u8; 64 * 1024]).unwrap();
    let want = hash::hash_file(&f).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let (f, stop) = (f.clone(), stop.clone());
        let other = dir.path().join("g");
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                fs::hard_link(&f, &other).unwrap();
                fs::remove_file(&other).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        })
    };
    for _ in 0..500 {
        let (got, _) = hash_file_with(&f, &fs::metadata(&f).unwrap(), None).unwrap();
        assert_eq!(got, want);
    }
    stop.store(true, Ordering::Relaxed);
    churn.join().unwrap();
}
