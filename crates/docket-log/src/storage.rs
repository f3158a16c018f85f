//! The file operations the log needs, behind a trait so that tests can
//! inject torn, lost and corrupted writes (see `tests/faults.rs`).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

/// A directory of segment files.
pub trait Storage: Clone + Send + 'static {
    type File: SegmentFile;
    /// Names of the segment files present, in any order.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Opens an existing file for reading and appending.
    fn open(&self, name: &str) -> io::Result<Self::File>;
    /// Creates a new, empty file and makes its directory entry durable.
    fn create(&self, name: &str) -> io::Result<Self::File>;
    /// Appends to the seq -> offset index of segment `name` (see
    /// `segment::index_name`). The index is derived data, checked on every
    /// use and rebuilt on open, so it is never synced. Storage without one
    /// keeps nothing (readers then scan the segment).
    fn append_index(&self, name: &str, offsets: &[u8]) -> io::Result<()> {
        let _ = (name, offsets);
        Ok(())
    }
    /// The index of segment `name` as stored (empty when there is none).
    fn read_index(&self, name: &str) -> io::Result<Vec<u8>> {
        let _ = name;
        Ok(Vec::new())
    }
    /// Replaces the index of segment `name`.
    fn replace_index(&self, name: &str, offsets: &[u8]) -> io::Result<()> {
        let _ = (name, offsets);
        Ok(())
    }
}

/// One append-only segment file.
pub trait SegmentFile: Send {
    /// The whole file.
    fn read_all(&mut self) -> io::Result<Vec<u8>>;
    /// The file from byte `offset` on (empty past its end): an open that
    /// resumes in the middle of a segment reads only its end.
    fn read_from(&mut self, offset: u64) -> io::Result<Vec<u8>> {
        let bytes = self.read_all()?;
        Ok(usize::try_from(offset).ok().and_then(|start| bytes.get(start..)).unwrap_or_default().to_vec())
    }
    /// Appends bytes (not yet durable).
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Makes every appended byte durable (`fdatasync`).
    fn sync(&mut self) -> io::Result<()>;
    /// Cuts the file to `len` bytes and makes that durable.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
}

/// Segment files in a directory of the real file system.
#[derive(Debug, Clone)]
pub struct FsStorage {
    dir: PathBuf,
}

impl FsStorage {
    /// Segment files live directly in `dir`, which must exist.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
}

/// Makes a directory's entries durable.
pub fn sync_dir(dir: &std::path::Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Storage for FsStorage {
    type File = FsFile;

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name.ends_with(crate::segment::SEGMENT_SUFFIX) {
                names.push(name);
            }
        }
        Ok(names)
    }

    // Segment files are opened O_APPEND: `append` writes at the end whatever
    // the file position, so a handle that was never read (a register's
    // reopened segment) cannot write over the segment from its start.
    fn open(&self, name: &str) -> io::Result<FsFile> {
        let file = OpenOptions::new().read(true).append(true).open(self.dir.join(name))?;
        Ok(FsFile { file })
    }

    fn create(&self, name: &str) -> io::Result<FsFile> {
        let file = OpenOptions::new().read(true).append(true).create_new(true).open(self.dir.join(name))?;
        file.sync_all()?;
        sync_dir(&self.dir)?;
        Ok(FsFile { file })
    }

    fn append_index(&self, name: &str, offsets: &[u8]) -> io::Result<()> {
        let path = self.dir.join(crate::segment::index_name(name));
        OpenOptions::new().create(true).append(true).open(path)?.write_all(offsets)
    }

    fn read_index(&self, name: &str) -> io::Result<Vec<u8>> {
        match std::fs::read(self.dir.join(crate::segment::index_name(name))) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            other => other,
        }
    }

    fn replace_index(&self, name: &str, offsets: &[u8]) -> io::Result<()> {
        let path = self.dir.join(crate::segment::index_name(name));
        let temporary = path.with_extension("idx.tmp");
        std::fs::write(&temporary, offsets)?;
        std::fs::rename(temporary, path)
    }
}

/// A segment file on disk.
#[derive(Debug)]
pub struct FsFile {
    file: File,
}

impl SegmentFile for FsFile {
    fn read_all(&mut self) -> io::Result<Vec<u8>> {
        self.read_from(0)
    }

    fn read_from(&mut self, offset: u64) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.file.seek(SeekFrom::Start(offset))?;
        self.file.read_to_end(&mut bytes)?;
        self.file.seek(SeekFrom::End(0))?;
        Ok(bytes)
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        self.file.seek(SeekFrom::End(0))?;
        self.file.sync_all()
    }
}
