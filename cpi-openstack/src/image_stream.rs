//! `root.img` read out of the stemcell's `image` file (a gzipped tar) on a
//! blocking thread and handed to the upload as a stream of chunks: constant
//! memory, no temporary copy.

use bytes::Bytes;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

const CHUNK: usize = 1 << 20;
/// Chunks in flight between the reader and the upload.
const DEPTH: usize = 4;

#[derive(Debug, thiserror::Error)]
#[error("reading root.img from {path}: {message}")]
pub struct ImageReadError {
    pub path: String,
    pub message: String,
}

impl cpi::Classify for ImageReadError {
    fn kind(&self) -> cpi::ErrorKind {
        cpi::ErrorKind::Cpi
    }
}

fn is_root_img(p: &Path) -> bool {
    p.file_name().is_some_and(|n| n == "root.img") && p.components().count() <= 2
}

fn open(path: &Path) -> std::io::Result<tar::Archive<flate2::read::GzDecoder<std::fs::File>>> {
    let file = std::fs::File::open(path)?;
    Ok(tar::Archive::new(flate2::read::GzDecoder::new(file)))
}

/// Finds `root.img` and answers its size, before anything is made in the cloud.
pub async fn check(path: PathBuf) -> Result<u64, ImageReadError> {
    let shown = path.display().to_string();
    let err = move |message: String| ImageReadError {
        path: shown.clone(),
        message,
    };
    tokio::task::spawn_blocking(move || -> Result<u64, String> {
        let mut archive = open(&path).map_err(|e| e.to_string())?;
        for entry in archive.entries().map_err(|e| e.to_string())? {
            let entry = entry.map_err(|e| e.to_string())?;
            if is_root_img(&entry.path().map_err(|e| e.to_string())?) {
                return Ok(entry.size());
            }
        }
        Err("the image has no root.img".into())
    })
    .await
    .map_err(|e| err(e.to_string()))?
    .map_err(err)
}

/// The upload body, and a slot holding the reader's error if it fails
/// (the upload then fails too, and the slot says why).
pub fn stream(path: PathBuf) -> (reqwest::Body, Arc<Mutex<Option<ImageReadError>>>) {
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(DEPTH);
    let failure = Arc::new(Mutex::new(None));
    let slot = failure.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(message) = pump(&path, &tx) {
            let e = ImageReadError {
                path: path.display().to_string(),
                message,
            };
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (reqwest::Body::wrap_stream(body), failure)
}

fn pump(path: &Path, tx: &mpsc::Sender<std::io::Result<Bytes>>) -> Result<(), String> {
    let mut archive = open(path).map_err(|e| e.to_string())?;
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        if !is_root_img(&entry.path().map_err(|e| e.to_string())?) {
            continue;
        }
        let expected = entry.size();
        let mut sent = 0u64;
        loop {
            let mut buf = vec![0u8; CHUNK];
            let n = read_full(&mut entry, &mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            buf.truncate(n);
            sent += n as u64;
            if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                return Ok(()); // the upload ended first; it reports why
            }
        }
        if sent != expected {
            return Err(format!("truncated: {sent} of {expected} bytes"));
        }
        return Ok(());
    }
    Err("the image has no root.img".into())
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}
