//! tauri-build reads `tauri.conf.json` from its working folder; the file sits
//! at the repository root (where the project keeps it), so the build runs
//! from there.

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    println!(
        "cargo:rerun-if-changed={}",
        root.join("tauri.conf.json").display()
    );
    if let Err(e) = std::env::set_current_dir(&root) {
        panic!(
            "could not enter the repository root {}: {e}",
            root.display()
        );
    }
    tauri_build::build()
}
