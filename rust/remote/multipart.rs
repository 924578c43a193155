//! Create-only multipart uploads: nothing on a remote is ever overwritten, big keys included.
//!
//! `object_store` completes a multipart upload unconditionally, so two pushes racing on the
//! same big object (both sent a `HEAD` before either finished) would each complete it. Here:
//! - on S3 the completion is sent by us, presigned with `If-None-Match: *`: the server
//!   refuses (412) to complete over an existing key, and the loser aborts its upload;
//! - on other stores (a directory, the in-memory store of the tests) the parts go to a fresh
//!   staging key `tmp/<random>`, which is then renamed create-only onto the real key (on a
//!   directory: a hard link, which fails if the name exists, then the staging name is removed).
//!
//! Either way the caller learns whether it created the key or found it there.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use object_store::aws::AmazonS3;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as Key;
use object_store::signer::{SignedUrlOptions, Signer};
use object_store::{MultipartUpload, ObjectStoreExt, PutPayload};
use reqwest::header::{HeaderValue, IF_NONE_MATCH};
use reqwest::{Method, StatusCode};

use super::{Backoff, Remote};
use crate::error::{Error, RemoteKind, Result};

/// Where staged uploads of non-S3 stores live until renamed into place (`pivot gc --remote`
/// removes stale ones).
pub const STAGING: &str = "tmp";

/// How long the presigned completion request stays valid (it is sent at once; retries sign
/// again).
const SIGNED_FOR: Duration = Duration::from_mins(15);

pub enum Upload {
    S3 {
        s3: Arc<AmazonS3>,
        key: Key,
        id: String,
    },
    Staged {
        up: Box<dyn MultipartUpload>,
        staging: Key,
    },
}

/// A fresh, unguessable staging name.
fn staging_name() -> String {
    format!("{STAGING}/{}", crate::atomic::random_hex())
}

impl Upload {
    /// Begin an upload that will publish `rel`.
    pub async fn start(r: &Remote, rel: &str) -> Result<Upload> {
        if let Some(s3) = &r.s3 {
            let key = r.key(rel);
            let id = s3
                .create_multipart(&key)
                .await
                .map_err(|e| r.map_err(&e, rel))?;
            return Ok(Upload::S3 {
                s3: s3.clone(),
                key,
                id,
            });
        }
        let staging = r.key(&staging_name());
        let up = r
            .store
            .put_multipart(&staging)
            .await
            .map_err(|e| r.map_err(&e, rel))?;
        Ok(Upload::Staged { up, staging })
    }

    /// Send part `idx` (0-based, in order of the bytes); the future is independent of `self`.
    pub fn put_part(
        &mut self,
        idx: usize,
        data: PutPayload,
    ) -> BoxFuture<'static, object_store::Result<Option<PartId>>> {
        match self {
            Upload::S3 { s3, key, id } => {
                let (s3, key, id) = (s3.clone(), key.clone(), id.clone());
                async move { s3.put_part(&key, &id, idx, data).await.map(Some) }.boxed()
            }
            Upload::Staged { up, .. } => up.put_part(data).map(|r| r.map(|()| None)).boxed(),
        }
    }

    /// Publish the uploaded parts (`parts`: the S3 part ids in order) as `rel`, create-only.
    /// Ok(false): `rel` already existed; the upload was discarded.
    pub async fn finish(self, r: &Remote, rel: &str, parts: Vec<PartId>) -> Result<bool> {
        match self {
            Upload::S3 { s3, key, id } => {
                let created = complete_create_only(r, &s3, rel, &key, &id, &parts).await;
                if !matches!(created, Ok(true)) {
                    let _ = s3.abort_multipart(&key, &id).await;
                }
                created
            }
            Upload::Staged { mut up, staging } => {
                up.complete().await.map_err(|e| r.map_err(&e, rel))?;
                crate::atomic::kill_point("remote_staged_complete");
                match r.store.rename_if_not_exists(&staging, &r.key(rel)).await {
                    Ok(()) => Ok(true),
                    Err(object_store::Error::AlreadyExists { .. }) => {
                        let _ = r.store.delete(&staging).await;
                        Ok(false)
                    }
                    Err(e) => {
                        let _ = r.store.delete(&staging).await;
                        Err(r.map_err(&e, rel))
                    }
                }
            }
        }
    }

    /// Give up (best effort: a crash leaves what `pivot gc --remote` or a bucket lifecycle
    /// rule removes).
    pub async fn abort(self, r: &Remote) {
        match self {
            Upload::S3 { s3, key, id } => {
                let _ = s3.abort_multipart(&key, &id).await;
            }
            Upload::Staged { mut up, staging } => {
                let _ = up.abort().await;
                let _ = r.store.delete(&staging).await;
            }
        }
    }
}

/// An unfinished S3 multipart upload under the remote's prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenUpload {
    pub key: String,
    pub id: String,
    /// When it was started, in seconds since the epoch (the store's clock).
    pub initiated: i64,
}

/// The text of each `<tag>…</tag>` in `xml` (S3 listings: flat, no attributes on these tags).
fn tags<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = vec![];
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(&after[..j]);
        rest = &after[j + close.len()..];
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// `2026-12-07T02:01:20.000Z` -> seconds since the epoch (UTC; fractions dropped).
fn parse_utc(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    if bytes.len() < 19 || bytes[4] != b'-' || bytes[7] != b'-' || bytes[10] != b'T' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// One page of a `ListMultipartUploads` answer, and the markers of the next page if any.
fn parse_uploads(xml: &str) -> (Vec<OpenUpload>, Option<(String, String)>) {
    let uploads = tags(xml, "Upload")
        .into_iter()
        .filter_map(|u| {
            Some(OpenUpload {
                key: unescape(tags(u, "Key").first()?),
                id: unescape(tags(u, "UploadId").first()?),
                initiated: parse_utc(tags(u, "Initiated").first()?)?,
            })
        })
        .collect();
    let truncated = tags(xml, "IsTruncated").first() == Some(&"true");
    let next = match (
        tags(xml, "NextKeyMarker").first(),
        tags(xml, "NextUploadIdMarker").first(),
    ) {
        (Some(k), Some(u)) if truncated => Some((unescape(k), unescape(u))),
        _ => None,
    };
    (uploads, next)
}

/// Every unfinished multipart upload under the remote's prefix (S3 only; `object_store` has
/// no call for it, so the request is presigned and sent here like the completion).
pub async fn open_uploads(r: &Remote) -> Result<Vec<OpenUpload>> {
    let Some(s3) = &r.s3 else {
        return Ok(vec![]);
    };
    let prefix = if r.prefix.is_empty() {
        String::new()
    } else {
        format!("{}/", r.prefix)
    };
    let what = "listing unfinished uploads";
    let mut all = vec![];
    let mut marker: Option<(String, String)> = None;
    loop {
        let mut q = vec![("uploads", String::new()), ("prefix", prefix.clone())];
        if let Some((k, u)) = &marker {
            q.push(("key-marker", k.clone()));
            q.push(("upload-id-marker", u.clone()));
        }
        let opts = SignedUrlOptions::new().with_query(q);
        let url = s3
            .signed_url_opts(Method::GET, &Key::from(""), SIGNED_FOR, &opts)
            .await
            .map_err(|e| r.map_err(&e, what))?;
        let resp = r
            .http()
            .get(url)
            .send()
            .await
            .map_err(|e| r.error(RemoteKind::Other, format!("{what}: {e}")))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(refused(r, what, status, error_code(&text)));
        }
        let (page, next) = parse_uploads(&text);
        all.extend(page);
        match next {
            Some(m) if Some(&m) != marker.as_ref() => marker = Some(m),
            _ => return Ok(all),
        }
    }
}

/// Abort an unfinished upload found by `open_uploads`.
pub async fn abort_open(r: &Remote, u: &OpenUpload) -> Result<()> {
    let Some(s3) = &r.s3 else { return Ok(()) };
    match s3.abort_multipart(&Key::from(u.key.as_str()), &u.id).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(r.map_err(&e, &u.key)),
    }
}

/// The body of a `CompleteMultipartUpload` request (part numbers are 1-based).
fn completion_body(parts: &[PartId]) -> String {
    let mut body = String::from("<CompleteMultipartUpload>");
    for (i, p) in parts.iter().enumerate() {
        let etag = p
            .content_id
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        let _ = write!(
            body,
            "<Part><PartNumber>{}</PartNumber><ETag>{etag}</ETag></Part>",
            i + 1
        );
    }
    body.push_str("</CompleteMultipartUpload>");
    body
}

/// The error of a request the server answered with `status` (and S3 error `code`), for
/// `what`: an authentication error names the credential sources tried.
fn refused(r: &Remote, what: &str, status: StatusCode, code: Option<&str>) -> Error {
    let code = code.unwrap_or("");
    if status == StatusCode::FORBIDDEN {
        let msg = format!(
            "{what}: access denied ({code}); credentials tried: {}",
            r.cred_desc
        );
        return r.error(RemoteKind::Auth, msg);
    }
    r.error(
        RemoteKind::Other,
        format!("{what}: HTTP {} {code}", status.as_u16()),
    )
}

/// The S3 error code of a response body (`<Code>…</Code>`), if any.
fn error_code(body: &str) -> Option<&str> {
    let start = body.find("<Code>")? + "<Code>".len();
    let end = body[start..].find("</Code>")? + start;
    Some(&body[start..end])
}

/// `CompleteMultipartUpload` with `If-None-Match: *`, retried on 5xx, timeouts and the
/// "200 with an error body" answer S3 documents for this call. Ok(false) when the key exists.
async fn complete_create_only(
    r: &Remote,
    s3: &AmazonS3,
    rel: &str,
    key: &Key,
    id: &str,
    parts: &[PartId],
) -> Result<bool> {
    let body = completion_body(parts);
    let opts = SignedUrlOptions::new()
        .with_query([("uploadId", id)])
        .with_signed_header(IF_NONE_MATCH, HeaderValue::from_static("*"));
    let what = format!("{rel}: completing the upload failed");
    let failed = |msg: String| r.error(RemoteKind::Other, format!("{what}: {msg}"));
    let mut backoff = Backoff::new(r.max_retries);
    loop {
        let url = s3
            .signed_url_opts(Method::POST, key, SIGNED_FOR, &opts)
            .await
            .map_err(|e| r.map_err(&e, rel))?;
        let sent = r
            .http()
            .post(url)
            .header(IF_NONE_MATCH, "*")
            .header("content-type", "application/xml")
            .body(body.clone())
            .send()
            .await;
        let retry = match sent {
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                let code = error_code(&text);
                match (status, code) {
                    (StatusCode::PRECONDITION_FAILED, _) => return Ok(false),
                    (s, None) if s.is_success() => return Ok(true),
                    // An earlier attempt that timed out may have completed it: the upload id
                    // is gone and the key is there.
                    (_, Some("NoSuchUpload")) if backoff.failed > 0 && r.exists(rel).await? => {
                        return Ok(true)
                    }
                    (s, c) if s.is_server_error() || s.is_success() => {
                        format!("HTTP {} {}", s.as_u16(), c.unwrap_or(""))
                    }
                    (s, c) => return Err(refused(r, &what, s, c)),
                }
            }
            Err(e) if e.is_timeout() || e.is_connect() || e.is_request() => e.to_string(),
            Err(e) => return Err(failed(e.to_string())),
        };
        if !backoff.wait().await {
            return Err(failed(format!(
                "{retry} (after {} attempts)",
                backoff.failed + 1
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use futures::StreamExt;
    use object_store::ObjectStore;

    #[test]
    fn completion_body_numbers_parts_from_one_and_escapes_etags() {
        let parts = vec![
            PartId {
                content_id: "\"a\"".into(),
            },
            PartId {
                content_id: "<b>&".into(),
            },
        ];
        assert_eq!(
            completion_body(&parts),
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"a\"</ETag></Part>\
             <Part><PartNumber>2</PartNumber><ETag>&lt;b&gt;&amp;</ETag></Part>\
             </CompleteMultipartUpload>"
        );
        assert_eq!(
            error_code("<Error><Code>NoSuchUpload</Code></Error>"),
            Some("NoSuchUpload")
        );
        assert_eq!(error_code("<CompleteMultipartUploadResult/>"), None);
    }

    #[test]
    fn a_staged_upload_never_replaces_an_existing_key() {
        let d = tempfile::tempdir().unwrap();
        let dir = Remote::open(&super::super::RemoteConfig {
            name: "dir".into(),
            url: d.path().to_str().unwrap().into(),
            jobs: 2,
            ..Default::default()
        })
        .unwrap();
        for r in [memory_remote(), dir] {
            assert!(r
                .block_on(r.put_once("objects/ab/cd", "first".into()))
                .unwrap());
            let created = r.block_on(async {
                let mut up = Upload::start(&r, "objects/ab/cd").await.unwrap();
                up.put_part(0, "second".into()).await.unwrap();
                up.finish(&r, "objects/ab/cd", vec![]).await.unwrap()
            });
            assert!(!created, "the key existed");
            let got = r.block_on(r.get_small("objects/ab/cd")).unwrap().unwrap();
            assert_eq!(&got[..], b"first");
            // The staging key is gone, and a fresh key is created.
            let left: Vec<_> = r.block_on(r.store.list(Some(&r.key(STAGING))).collect::<Vec<_>>());
            assert!(left.is_empty(), "{left:?}");
            let created = r.block_on(async {
                let mut up = Upload::start(&r, "objects/ef/gh").await.unwrap();
                up.put_part(0, "third".into()).await.unwrap();
                up.finish(&r, "objects/ef/gh", vec![]).await.unwrap()
            });
            assert!(created);
            let got = r.block_on(r.get_small("objects/ef/gh")).unwrap().unwrap();
            assert_eq!(&got[..], b"third");
        }
        let staged = d.path().join(STAGING);
        assert!(std::fs::read_dir(&staged).map_or(0, Iterator::count) == 0);
    }

    #[test]
    fn a_list_of_uploads_is_parsed_with_its_next_page() {
        let xml = "<ListMultipartUploadsResult><Bucket>b</Bucket>\
            <NextKeyMarker>p/objects/ab/c</NextKeyMarker><NextUploadIdMarker>u2</NextUploadIdMarker>\
            <IsTruncated>true</IsTruncated>\
            <Upload><Key>p/objects/ab/c&amp;d</Key><UploadId>u1</UploadId>\
            <Initiated>2026-12-07T02:01:20.000Z</Initiated></Upload>\
            <Upload><Key>p/packs/x.pack</Key><UploadId>u2</UploadId>\
            <Initiated>1970-01-02T00:00:01Z</Initiated></Upload></ListMultipartUploadsResult>";
        let (ups, next) = parse_uploads(xml);
        assert_eq!(ups.len(), 2);
        assert_eq!(ups[0].key, "p/objects/ab/c&d");
        assert_eq!(ups[0].initiated, 1_796_608_880);
        assert_eq!(ups[1].initiated, 86_401);
        assert_eq!(next, Some(("p/objects/ab/c".into(), "u2".into())));
        let (_, last) = parse_uploads("<IsTruncated>false</IsTruncated>");
        assert_eq!(last, None);
        assert_eq!(parse_utc("2000-03-01T00:00:00Z"), Some(951_868_800));
        assert_eq!(parse_utc("garbage"), None);
    }

    #[test]
    fn staging_names_differ() {
        let a = staging_name();
        assert!(a.starts_with("tmp/") && a.len() == 4 + 32, "{a}");
        assert_ne!(a, staging_name());
    }
}
