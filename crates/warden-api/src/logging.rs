//! Logs: readable lines on stderr, JSON lines in a daily-rotated file in the
//! data folder (seven kept). The level comes from RUST_LOG, else the
//! configuration, else "info".

use std::path::Path;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub fn init(
    data_dir: &Path,
    configured: Option<&str>,
) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let filter = || {
        EnvFilter::try_from_default_env()
            .or_else(|_| EnvFilter::try_new(configured.unwrap_or("info")))
            .unwrap_or_else(|_| EnvFilter::new("info"))
    };
    let _ = warden_store::private::create_dir(&data_dir.join("logs"));
    let file = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("warden")
        .filename_suffix("log.json")
        .max_log_files(7)
        .build(data_dir.join("logs"));
    let (file_layer, guard) = match file {
        Ok(appender) => {
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let layer = tracing_subscriber::fmt::layer()
                .json()
                .with_writer(writer)
                .with_filter(filter());
            (Some(layer), Some(guard))
        }
        Err(e) => {
            eprintln!("warning: logs will not be written to a file: {e}");
            (None, None)
        }
    };
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_filter(filter());
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file_layer)
        .try_init();
    guard
}
