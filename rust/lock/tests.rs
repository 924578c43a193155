use super::*;

const H: &str = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";

fn sample() -> String {
    format!(
        r#"{{"schema_version":1,"stage":"train","code":{{"func:m.f":"00ff","class:m.P":"ab"}},
        "params":{{"lr":0.1,"big":1e20,"nested":{{"b":[1,2.5,null],"a":"x\u0085y"}}}},
        "deps":{{"data/b.csv":"{H}","data/a.csv":"{H}"}},
        "outs":{{"model/":{{"size":3,"hash":"{H}","nfiles":2,"is_dir":true,"cache":true}}}}}}"#
    )
}

#[test]
fn canonical_bytes_are_stable_and_readable() {
    let a = encode(&sample(), Path::new("x.lock")).unwrap();
    let text = String::from_utf8(a.clone()).unwrap();
    let expected = format!(
        "{{\n  \"schema_version\": 1,\n  \"stage\": \"train\",\n  \"code\": {{\n    \"class:m.P\": \"ab\",\n    \"func:m.f\": \"00ff\"\n  }},\n  \"params\": {{\n    \"big\": 1.0e+20,\n    \"lr\": 0.1,\n    \"nested\": {{\"a\":\"x\\u0085y\",\"b\":[1,2.5,null]}}\n  }},\n  \"deps\": {{\n    \"data/a.csv\": \"{H}\",\n    \"data/b.csv\": \"{H}\"\n  }},\n  \"outs\": {{\n    \"model/\": {{\"cache\":true,\"hash\":\"{H}\",\"is_dir\":true,\"nfiles\":2,\"size\":3}}\n  }}\n}}\n"
    );
    assert_eq!(text, expected);
    // decode → encode is a fixed point.
    let back = decode(&a, Path::new("x.lock")).unwrap();
    assert_eq!(encode(&back, Path::new("x.lock")).unwrap(), a);
}

#[test]
fn empty_maps_are_inline() {
    let j = r#"{"schema_version":1,"stage":"s","code":{},"params":{},"deps":{},"outs":{}}"#;
    let t = String::from_utf8(encode(j, Path::new("l")).unwrap()).unwrap();
    assert!(t.contains("\"code\": {},\n"), "{t}");
}

fn err_of(json: &str) -> String {
    decode(json.as_bytes(), Path::new(".pivot/stages/train.lock"))
        .unwrap_err()
        .to_string()
}

#[test]
fn malformed_locks_name_file_and_field() {
    let base = sample();
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "empty"),
        (base[..base.len() / 2].to_string(), "not valid JSON"),
        (format!("<<<<<<< HEAD\n{base}"), "conflict marker"),
        (
            base.replace("\"schema_version\":1", "\"schema_version\":2"),
            "upgrade pivot",
        ),
        (
            base.replace("\"schema_version\":1,", ""),
            "schema_version: missing",
        ),
        (
            base.replace("\"stage\":\"train\"", "\"stage\":\"train\",\"extra\":1"),
            "extra: unknown field",
        ),
        (
            base.replace(
                &format!("\"size\":3,\"hash\":\"{H}\""),
                "\"size\":3,\"hash\":\"ABC\"",
            ),
            "outs[\"model/\"].hash: not a 64-hex",
        ),
        (
            base.replace("data/a.csv", "../a.csv"),
            "deps[\"../a.csv\"]: path contains '..'",
        ),
        (base.replace("data/a.csv", "/abs"), "path is absolute"),
        (base.replace("data/a.csv", "a\\nb"), "newline"),
        (base.replace("data/a.csv", "a\\u0000b"), "NUL"),
        (
            base.replace("\"nfiles\":2", "\"nfiles\":-2"),
            "outs[\"model/\"].nfiles",
        ),
        (base.replace("\"00ff\"", "\"XYZ\""), "code[\"func:m.f\"]"),
    ];
    for (json, want) in cases {
        let e = err_of(&json);
        assert!(e.contains(".pivot/stages/train.lock"), "{e}");
        assert!(e.contains(want), "{want:?} not in {e:?}");
    }
    let e = decode(b"\xff\xfe", Path::new("l")).unwrap_err();
    assert!(e.to_string().contains("UTF-8"));
    let big = vec![b' '; usize::try_from(MAX_LOCK_BYTES).unwrap() + 1];
    assert!(decode(&big, Path::new("l"))
        .unwrap_err()
        .to_string()
        .contains("larger"));
}

#[test]
fn newer_schema_is_its_own_error() {
    let j = sample().replace("\"schema_version\":1", "\"schema_version\":7");
    let e = decode(j.as_bytes(), Path::new("s.lock")).unwrap_err();
    assert!(matches!(e, Error::SchemaVersion { found: 7, .. }));
}

#[test]
fn read_write_round_trip() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("train.lock");
    assert_eq!(read(&p).unwrap(), None);
    write(&p, &sample()).unwrap();
    let got = read(&p).unwrap().unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), encode(&got, &p).unwrap());
}
