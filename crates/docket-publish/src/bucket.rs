//! A prefix in an S3-compatible bucket, through `object_store`: immutable
//! objects written once, and the one mutable object (the checkpoint)
//! replaced only by a conditional write.

use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion, WriteMultipart};

use crate::PublishError;

/// The part size of an upload (S3's minimum part is 5 MiB).
pub const UPLOAD_PART_BYTES: usize = 8 << 20;

/// Parts of one upload in flight at once: its memory is about this many parts.
pub const UPLOAD_PARTS_IN_FLIGHT: usize = 4;

/// Where objects go: a store and a prefix in it (`s3://bucket/prefix`).
#[derive(Debug, Clone)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    url: String,
}

/// An object's bytes and the version a conditional write must name to replace it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub bytes: Bytes,
    pub e_tag: Option<String>,
    pub version: Option<String>,
}

/// Installs ring as rustls' provider for HTTPS (once; a second call is a
/// no-op), before any client is built.
fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Bucket {
    /// `s3://bucket[/prefix]`, with the endpoint, region and credentials
    /// from the environment as `object_store` reads them (`AWS_ENDPOINT`,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
    /// `AWS_ALLOW_HTTP=true` for a plain-HTTP endpoint).
    pub fn from_url(url: &str) -> Result<Self, PublishError> {
        install_crypto();
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| PublishError::Url { url: url.into(), reason: "expected s3://BUCKET[/PREFIX]".into() })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(PublishError::Url { url: url.into(), reason: "no bucket name".into() });
        }
        Self::from_builder(AmazonS3Builder::from_env().with_bucket_name(bucket), prefix, url)
    }

    /// A prefix in the S3 bucket the builder names (endpoint and
    /// credentials set by the caller).
    pub fn from_builder(builder: AmazonS3Builder, prefix: &str, url: &str) -> Result<Self, PublishError> {
        install_crypto();
        let store = builder.build().map_err(|e| PublishError::Url { url: url.into(), reason: e.to_string() })?;
        Ok(Self::new(Arc::new(store), prefix, url))
    }

    /// A prefix in a store built by the caller (tests, other back ends).
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str, url: &str) -> Self {
        Self { store, prefix: prefix.trim_matches('/').to_owned(), url: url.to_owned() }
    }

    /// The URL it was opened from, for messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The object path of `name` under the prefix.
    pub fn path(&self, name: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(name)
        } else {
            Path::from(format!("{}/{name}", self.prefix))
        }
    }

    /// Reads an object: `None` if there is none.
    pub async fn get(&self, name: &str) -> Result<Option<Versioned>, PublishError> {
        let path = self.path(name);
        match self.store.get(&path).await {
            Ok(result) => {
                let (e_tag, version) = (result.meta.e_tag.clone(), result.meta.version.clone());
                let bytes = result.bytes().await.map_err(|e| self.failed(name, e))?;
                Ok(Some(Versioned { bytes, e_tag, version }))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(self.failed(name, error)),
        }
    }

    /// Writes an immutable object once (`If-None-Match: *`). If it exists
    /// already with the same bytes (a restart re-publishing), that is fine;
    /// with other bytes, it is an error: published objects never change.
    pub async fn put_once(&self, name: &str, bytes: Vec<u8>) -> Result<(), PublishError> {
        let bytes = Bytes::from(bytes);
        let options = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
        let path = self.path(name);
        match self.store.put_opts(&path, PutPayload::from_bytes(bytes.clone()), options).await {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                match self.get(name).await? {
                    Some(found) if found.bytes == bytes => Ok(()),
                    Some(_) => Err(PublishError::Differs { object: format!("{}/{name}", self.url) }),
                    None => Err(self.failed(name, "it exists and then does not (deleted meanwhile?)")),
                }
            }
            Err(error) => Err(self.failed(name, error)),
        }
    }

    /// Replaces a mutable object only if it is still at `expected` (its
    /// ETag and version as last read or written), or creates it if
    /// `expected` is `None`. Another writer's change in between makes this
    /// fail with [`PublishError::Contended`]. Returns the new version.
    pub async fn replace(
        &self,
        name: &str,
        bytes: Vec<u8>,
        expected: Option<&Versioned>,
    ) -> Result<Versioned, PublishError> {
        let mode = match expected {
            None => PutMode::Create,
            Some(seen) => PutMode::Update(UpdateVersion { e_tag: seen.e_tag.clone(), version: seen.version.clone() }),
        };
        let bytes = Bytes::from(bytes);
        let options = PutOptions { mode, ..PutOptions::default() };
        match self.store.put_opts(&self.path(name), PutPayload::from_bytes(bytes.clone()), options).await {
            Ok(result) => Ok(Versioned { bytes, e_tag: result.e_tag, version: result.version }),
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                Err(PublishError::Contended {
                    object: format!("{}/{name}", self.url),
                    expected: expected.and_then(|v| v.e_tag.clone()),
                })
            }
            Err(error) => Err(self.failed(name, error)),
        }
    }

    /// Whether the prefix holds no object at all.
    pub async fn is_empty(&self) -> Result<bool, PublishError> {
        let prefix = (!self.prefix.is_empty()).then(|| Path::from(self.prefix.as_str()));
        let listed = self.store.list_with_delimiter(prefix.as_ref()).await.map_err(|e| self.failed("", e))?;
        Ok(listed.objects.is_empty() && listed.common_prefixes.is_empty())
    }

    /// Uploads the local file `file` as `name` (a multipart upload of
    /// [`UPLOAD_PART_BYTES`] parts, at most [`UPLOAD_PARTS_IN_FLIGHT`] at
    /// once), replacing any object of that name. `name` is taken as
    /// written: its segments are not percent-encoded again (a partition's
    /// `list=a%20b` stays so).
    pub async fn upload(&self, name: &str, file: &std::path::Path) -> Result<u64, PublishError> {
        use std::io::Read;
        let full = if self.prefix.is_empty() { name.to_owned() } else { format!("{}/{name}", self.prefix) };
        let path = Path::parse(&full).map_err(|e| self.failed(name, e))?;
        let local = |e: std::io::Error| self.failed(name, format!("reading {}: {e}", file.display()));
        let mut source = std::fs::File::open(file).map_err(local)?;
        let upload = self.store.put_multipart(&path).await.map_err(|e| self.failed(name, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, UPLOAD_PART_BYTES);
        let mut buffer = vec![0; UPLOAD_PART_BYTES];
        let mut sent = 0u64;
        loop {
            let read = match source.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(error) => {
                    let _ = writer.abort().await;
                    return Err(local(error));
                }
            };
            if let Err(error) = writer.wait_for_capacity(UPLOAD_PARTS_IN_FLIGHT).await {
                return Err(self.failed(name, error));
            }
            writer.write(&buffer[..read]);
            sent += read as u64;
        }
        writer.finish().await.map_err(|e| self.failed(name, e))?;
        Ok(sent)
    }

    fn failed(&self, name: &str, error: impl std::fmt::Display) -> PublishError {
        PublishError::Store { object: format!("{}/{name}", self.url), reason: error.to_string() }
    }
}
