//! `root.img` read out of the stemcell's `image` file by the shared stemcell
//! crate (on a thread of its own) and handed to the upload as a stream of
//! chunks: constant memory, no temporary copy.

use ::stemcell::StemcellError;
use bytes::Bytes;
use futures_util::StreamExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

const CHUNK: usize = 1 << 20;
/// Chunks in flight between the reader and the upload.
const DEPTH: usize = 4;

/// The stemcell's error names the file and what is wrong with it; this
/// says what the CPI was doing.
#[derive(Debug, thiserror::Error)]
#[error("reading root.img: {0}")]
pub struct ImageReadError(#[from] pub StemcellError);

impl cpi::Classify for ImageReadError {
    fn kind(&self) -> cpi::ErrorKind {
        cpi::ErrorKind::Cpi
    }
}

/// Finds `root.img` and answers its size, before anything is made in the
/// cloud. It reads the tar headers up to `root.img` (a stemcell's image holds
/// nothing before it), so it runs in place: a thread for it cost more than
/// the read, and nothing else of the call runs yet.
pub async fn check(path: PathBuf) -> Result<u64, ImageReadError> {
    ::stemcell::root_img_size(&path).map_err(ImageReadError)
}

/// Where the reader's error is left when it fails mid-upload: the upload
/// then fails too, and the slot says why.
pub type Failure = Arc<Mutex<Option<ImageReadError>>>;

/// The upload body, and the slot holding the reader's error if it fails.
pub fn stream(path: PathBuf) -> (reqwest::Body, Failure) {
    let (body, failure) = chunks(path);
    (reqwest::Body::wrap_stream(body), failure)
}

fn chunks(
    path: PathBuf,
) -> (
    impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    Failure,
) {
    let failure = Failure::default();
    let slot = failure.clone();
    let blocks = ::stemcell::spawn_root_img_blocks(path, CHUNK, DEPTH);
    let body = futures_util::stream::unfold(blocks, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .map(move |item| match item {
        Ok(block) => Ok(Bytes::from(block.data)),
        Err(e) => {
            // Filled before the body fails, so the slot is set by the time
            // the upload returns.
            let e = ImageReadError(e);
            let shown = std::io::Error::other(e.to_string());
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
            Err(shown)
        }
    });
    (body, failure)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(dir: &std::path::Path, members: &[(&str, &[u8])]) -> PathBuf {
        let path = dir.join("image");
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        let mut tar = tar::Builder::new(gz);
        for (name, data) in members {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, name, *data).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap();
        path
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    #[test]
    fn check_answers_the_size_or_names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = image(dir.path(), &[("root.img", &[7u8; 3000])]);
        assert_eq!(rt().block_on(check(path)).unwrap(), 3000);
        let path = image(dir.path(), &[("other", b"abc")]);
        let e = cpi::Error::from(rt().block_on(check(path.clone())).unwrap_err());
        assert_eq!(e.kind(), cpi::ErrorKind::Cpi);
        assert!(e.message().contains("root.img"), "{}", e.message());
        assert!(
            e.message().contains(&path.display().to_string()),
            "{}",
            e.message()
        );
    }

    #[test]
    fn a_truncated_image_fails_the_body_and_fills_the_slot() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..3 * CHUNK as u32).map(|i| (i % 251) as u8).collect();
        let path = image(dir.path(), &[("root.img", &data)]);
        let whole = std::fs::read(&path).unwrap();
        std::fs::write(&path, &whole[..whole.len() / 2]).unwrap();
        let (body, failure) = chunks(path);
        let ended_with_error = rt().block_on(async {
            let mut body = std::pin::pin!(body);
            while let Some(chunk) = body.next().await {
                if chunk.is_err() {
                    return true;
                }
            }
            false
        });
        assert!(ended_with_error, "the body must fail, not end short");
        let e = failure.lock().unwrap().take().expect("the slot says why");
        assert!(e.to_string().contains("root.img"), "{e}");
    }
}
