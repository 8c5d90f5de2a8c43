//! The Library web app at `/`: the files of `--web-dir` (what `web/` builds), read and
//! gzipped once at start, served with their caching rules and a Content-Security-Policy
//! that lets the page talk to its own origin only. Paths that are not files but look
//! like the app's own routes (`/tag/news`) get `index.html`, so a reload works anywhere.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;

use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use http_body_util::Full;
use hyper::header::{
    HeaderMap, HeaderValue, ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG,
    IF_NONE_MATCH, REFERRER_POLICY, VARY, X_CONTENT_TYPE_OPTIONS,
};
use hyper::{Response, StatusCode};
use sha2::{Digest, Sha256};

use super::{text, Body};

/// Only the page's own origin, for scripts, styles, images, fonts and connections (the
/// `/graphql` fetches and its WebSocket); no plugins, no framing, no foreign forms.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; \
connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Vite names every file under `/assets/` by its content's hash: it never changes.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Everything else (`index.html` above all) is checked with the server on every use.
const REVALIDATE: &str = "no-cache";

/// One file, ready to send.
struct Asset {
    body: Bytes,
    gzipped: Option<Bytes>,
    content_type: &'static str,
    cache_control: &'static str,
    etag: HeaderValue,
}

/// The web app's files by URL path.
#[derive(Default)]
pub struct WebApp {
    files: HashMap<String, Asset>,
}

impl WebApp {
    /// Read every file under `dir`. A missing dir gives an empty app (with a warning): the
    /// API is served all the same.
    pub fn load(dir: &Path) -> std::io::Result<WebApp> {
        let mut app = WebApp::default();
        if !dir.join("index.html").is_file() {
            tracing::warn!("no web app in {} (build it with `npm run build` in web/, or set --web-dir); `/` answers 404", dir.display());
            return Ok(app);
        }
        let mut pending = vec![dir.to_path_buf()];
        while let Some(folder) = pending.pop() {
            for entry in std::fs::read_dir(&folder)? {
                let path = entry?.path();
                if path.is_dir() {
                    pending.push(path);
                    continue;
                }
                let relative = path.strip_prefix(dir).expect("under dir").to_string_lossy().replace('\\', "/");
                let url = format!("/{relative}");
                let asset = Asset::new(&url, std::fs::read(&path)?);
                app.files.insert(url, asset);
            }
        }
        tracing::info!(files = app.files.len(), "web app loaded from {}", dir.display());
        Ok(app)
    }

    /// The answer to a GET or HEAD of `path` (any path the API does not own).
    pub fn serve(&self, path: &str, headers: &HeaderMap) -> Response<Body> {
        let asset = self.files.get(path).or_else(|| is_app_route(path).then(|| self.files.get("/index.html")).flatten());
        let Some(asset) = asset else {
            return if self.files.is_empty() {
                text(StatusCode::NOT_FOUND, "The web app is not built: run scripts/serve.sh (or `npm run build` in web/).\n")
            } else {
                text(StatusCode::NOT_FOUND, "not found\n")
            };
        };
        asset.respond(headers)
    }
}

/// A path the app's router handles (no file extension in its last segment).
fn is_app_route(path: &str) -> bool {
    let last = path.rsplit('/').next().unwrap_or("");
    !last.contains('.')
}

impl Asset {
    fn new(url: &str, body: Vec<u8>) -> Asset {
        let content_type = content_type(url);
        let etag = HeaderValue::from_str(&format!("\"{}\"", &hex(&Sha256::digest(&body))[..20])).expect("hex is a header value");
        let gzipped = is_text(content_type).then(|| gzip(&body)).filter(|g| g.len() < body.len()).map(Bytes::from);
        let cache_control = if url.starts_with("/assets/") { IMMUTABLE } else { REVALIDATE };
        Asset { body: Bytes::from(body), gzipped, content_type, cache_control, etag }
    }

    fn respond(&self, request: &HeaderMap) -> Response<Body> {
        let not_modified = request.get(IF_NONE_MATCH).is_some_and(|tags| {
            tags.to_str().is_ok_and(|tags| tags.split(',').any(|t| t.trim() == "*" || t.trim().trim_start_matches("W/") == self.etag))
        });
        let gzip = self.gzipped.as_ref().filter(|_| accepts_gzip(request));
        let (status, body) = match (not_modified, gzip) {
            (true, _) => (StatusCode::NOT_MODIFIED, Bytes::new()),
            (false, Some(gzipped)) => (StatusCode::OK, gzipped.clone()),
            (false, None) => (StatusCode::OK, self.body.clone()),
        };
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static(self.cache_control));
        headers.insert(ETAG, self.etag.clone());
        headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
        headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        if self.gzipped.is_some() {
            headers.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
        }
        if gzip.is_some() && !not_modified {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        response
    }
}

/// Whether `Accept-Encoding` lists gzip (or `*`) with a non-zero quality.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|coding| {
        let mut parts = coding.split(';');
        let name = parts.next().unwrap_or("").trim();
        let quality = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        (name.eq_ignore_ascii_case("gzip") || name == "*") && quality > 0.0
    })
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(body).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn content_type(url: &str) -> &'static str {
    match url.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn is_text(content_type: &str) -> bool {
    content_type.starts_with("text/") || content_type == "application/json" || content_type == "image/svg+xml"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (hyper::header::HeaderName::from_static(k), HeaderValue::from_static(v))).collect()
    }

    #[test]
    fn gzip_is_chosen_by_quality() {
        assert!(accepts_gzip(&headers(&[("accept-encoding", "gzip, deflate, br")])));
        assert!(accepts_gzip(&headers(&[("accept-encoding", "br;q=1.0, gzip;q=0.5")])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "gzip;q=0")])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "identity")])));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn app_routes_are_paths_without_an_extension() {
        assert!(is_app_route("/"));
        assert!(is_app_route("/tag/news"));
        assert!(!is_app_route("/assets/missing.js"));
        assert!(!is_app_route("/favicon.ico"));
    }

    #[test]
    fn hashed_assets_are_immutable_and_the_page_is_not() {
        let app = WebApp {
            files: [
                ("/index.html".to_string(), Asset::new("/index.html", b"<!doctype html>".repeat(50))),
                ("/assets/app-1a2b.js".to_string(), Asset::new("/assets/app-1a2b.js", b"console.log(1);".repeat(50))),
            ]
            .into_iter()
            .collect(),
        };
        let page = app.serve("/tag/news", &headers(&[("accept-encoding", "gzip")]));
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.headers()[CACHE_CONTROL], REVALIDATE);
        assert_eq!(page.headers()[CONTENT_ENCODING], "gzip");
        assert!(page.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap().contains("connect-src 'self'"));
        let script = app.serve("/assets/app-1a2b.js", &HeaderMap::new());
        assert_eq!(script.headers()[CACHE_CONTROL], IMMUTABLE);
        assert!(script.headers().get(CONTENT_ENCODING).is_none());
        let etag = script.headers()[ETAG].clone();
        let mut again = HeaderMap::new();
        again.insert(IF_NONE_MATCH, etag);
        assert_eq!(app.serve("/assets/app-1a2b.js", &again).status(), StatusCode::NOT_MODIFIED);
        assert_eq!(app.serve("/assets/other.js", &HeaderMap::new()).status(), StatusCode::NOT_FOUND);
    }
}
