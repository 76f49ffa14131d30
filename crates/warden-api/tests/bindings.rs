//! The UI's TypeScript types (`ui/src/bindings`) are generated from the API's
//! Rust types with ts-rs and committed. This test fails when the committed
//! files differ from what the Rust types generate now; run it with
//! `WARDEN_BLESS=1` to rewrite them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ts_rs::TS;
use warden_api::{ApiError, ApprovalsChanged, Request, Response};

fn generate(dir: &Path) -> BTreeMap<String, String> {
    // JSON carries 64-bit integers as plain numbers.
    let cfg = ts_rs::Config::new()
        .with_large_int("number")
        .with_out_dir(dir);
    Request::export_all(&cfg).expect("export Request");
    Response::export_all(&cfg).expect("export Response");
    ApiError::export_all(&cfg).expect("export ApiError");
    ApprovalsChanged::export_all(&cfg).expect("export ApprovalsChanged");
    let mut files = read(dir);
    let index: String = files
        .keys()
        .filter(|name| !name.contains('/'))
        .map(|name| {
            let stem = name.trim_end_matches(".ts");
            format!("export type {{ {stem} }} from \"./{stem}\";\n")
        })
        .collect();
    files.insert("index.ts".into(), index);
    files
}

/// Every `.ts` file under `dir`, by its path relative to `dir` (ts-rs puts
/// the types of other crates, such as serde_json's, in folders).
fn read(dir: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "ts") {
                let name = path
                    .strip_prefix(dir)
                    .expect("under the folder")
                    .to_string_lossy()
                    .replace('\\', "/");
                files.insert(
                    name,
                    std::fs::read_to_string(&path).expect("read a binding"),
                );
            }
        }
    }
    files
}

#[test]
fn committed_bindings_match_the_rust_types() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let fresh = generate(tmp.path());
    let committed_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/bindings");
    if std::env::var_os("WARDEN_BLESS").is_some() {
        let _ = std::fs::remove_dir_all(&committed_dir);
        std::fs::create_dir_all(&committed_dir).expect("create ui/src/bindings");
        for (name, text) in &fresh {
            let path = committed_dir.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("create a bindings folder");
            }
            std::fs::write(path, text).expect("write a binding");
        }
        return;
    }
    let committed = read(&committed_dir);
    let stale: Vec<&String> = fresh
        .iter()
        .filter(|(name, text)| committed.get(*name) != Some(*text))
        .map(|(name, _)| name)
        .chain(committed.keys().filter(|name| !fresh.contains_key(*name)))
        .collect();
    assert!(
        stale.is_empty(),
        "ui/src/bindings is out of date with the Rust types ({stale:?}); run `WARDEN_BLESS=1 cargo test -p warden-api --test bindings` and commit the result"
    );
}
