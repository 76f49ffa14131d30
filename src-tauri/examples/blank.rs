//! A blank Tauri window and nothing else, built from the same configuration
//! and crates as Warden's app: the baseline `tests/bench-app-memory.sh`
//! measures the app's memory against.

fn main() {
    let mut context = tauri::generate_context!("../tauri.conf.json");
    context.config_mut().app.windows.clear();
    let built = tauri::Builder::default()
        .setup(|app| {
            tauri::WebviewWindowBuilder::new(
                app,
                "blank",
                tauri::WebviewUrl::App("blank.html".into()),
            )
            .title("blank")
            .inner_size(1280.0, 800.0)
            .build()?;
            Ok(())
        })
        .run(context);
    if let Err(e) = built {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
