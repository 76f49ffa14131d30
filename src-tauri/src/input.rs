//! Whether a click or key in Warden's windows came from the person.
//!
//! On X11 every client of the display can make clicks and key presses in any
//! window through the XTEST extension, and an agent running as the person is
//! such a client (`xdotool` is all it takes). XInput2, which GTK uses, says
//! which device each event came from, and XTEST's are devices of their own
//! (the "Virtual core XTEST pointer" and "… keyboard"); events made inside
//! the process (WebKit's automation, for one) carry the seat's master device
//! rather than a physical one. So each press and release in each window is
//! remembered with whether a physical device made it, and an approval from a
//! window whose latest input was not the person's, or was not recent, is
//! answered with a request for an authenticator code instead
//! (`commands::rpc`). The same holds for every change of policy from the
//! main window: after a program's click, or none, it runs only on the next
//! code the person confirms there, one code per change. Wayland gives other clients no way to make input, so
//! there every event counts as the person's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tauri::plugin::{Builder, TauriPlugin};
use tauri::{Runtime, Webview};

/// How long after the person's last press or release a decision from that
/// window still counts as theirs.
const RECENT: Duration = Duration::from_secs(5);

/// How long a code the person just typed into a window stands for the next
/// change of policy asked from it.
const CONFIRMED: Duration = Duration::from_secs(60);

#[derive(Clone, Copy)]
struct Seen {
    at: Instant,
    by_person: bool,
}

/// The latest input in each window, by label.
#[derive(Default)]
pub struct Inputs {
    latest: Mutex<HashMap<String, Seen>>,
    /// When a code was last confirmed from each window, until a change of
    /// policy from that window uses it.
    confirmed: Mutex<HashMap<String, Instant>>,
}

/// Why a decision does not count as the person's.
#[derive(Debug, PartialEq, Eq)]
pub enum NotThePerson {
    /// No press or release reached the window lately (a program drove it).
    NoInput,
    /// The latest one was made by a program (XTEST).
    Synthetic,
}

impl NotThePerson {
    pub fn why(&self) -> &'static str {
        match self {
            NotThePerson::NoInput => "no recent input from the person in the window",
            NotThePerson::Synthetic => "synthetic input in the window",
        }
    }
}

impl Inputs {
    fn saw(&self, window: &str, by_person: bool) {
        self.latest.lock().insert(
            window.to_string(),
            Seen {
                at: Instant::now(),
                by_person,
            },
        );
    }

    /// Whether what `window` just asked follows the person's own input.
    pub fn was_the_person(&self, window: &str) -> Result<(), NotThePerson> {
        match self.latest.lock().get(window) {
            Some(seen) if seen.at.elapsed() > RECENT => Err(NotThePerson::NoInput),
            Some(Seen {
                by_person: true, ..
            }) => Ok(()),
            Some(_) => Err(NotThePerson::Synthetic),
            None => Err(NotThePerson::NoInput),
        }
    }

    /// The person just proved a code from `window` (a program of theirs
    /// cannot: the secret is sealed); the next change of policy asked from
    /// it within a minute counts as theirs.
    pub fn confirmed(&self, window: &str) {
        self.confirmed
            .lock()
            .insert(window.to_string(), Instant::now());
    }

    /// Uses up the code confirmed from `window`, if it is recent: one code,
    /// one change.
    pub fn take_confirmation(&self, window: &str) -> bool {
        self.confirmed
            .lock()
            .remove(window)
            .is_some_and(|at| at.elapsed() <= CONFIRMED)
    }

    /// Watches every webview the app opens.
    pub fn plugin<R: Runtime>(self: &Arc<Self>) -> TauriPlugin<R> {
        let inputs = self.clone();
        Builder::new("input-watch")
            .on_webview_ready(move |webview| inputs.watch(&webview))
            .build()
    }

    fn watch<R: Runtime>(self: &Arc<Self>, webview: &Webview<R>) {
        let inputs = self.clone();
        let label = webview.label().to_string();
        let watched = webview.with_webview(move |platform| {
            #[cfg(target_os = "linux")]
            linux::watch(&platform.inner(), inputs, label);
            #[cfg(not(target_os = "linux"))]
            {
                // macOS (kCGEventSourceUnixProcessID) and Windows
                // (LLMHF_INJECTED) are not wired yet: no input is known there,
                // so approvals from a window take a code.
                let _ = (platform, inputs, label);
            }
        });
        if let Err(e) = watched {
            tracing::error!(error = %e, "could not watch the window's input; approving there will take a code");
        }
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::sync::Arc;

    use gtk::glib::Propagation;
    use gtk::prelude::*;

    use super::Inputs;

    pub fn watch(view: &webkit2gtk::WebView, inputs: Arc<Inputs>, label: String) {
        let x11 = view
            .display()
            .type_()
            .name()
            .to_ascii_lowercase()
            .contains("x11");
        let (i, l) = (inputs.clone(), label.clone());
        view.connect_button_press_event(move |_, e| {
            i.saw(&l, by_person(x11, e));
            Propagation::Proceed
        });
        let (i, l) = (inputs.clone(), label.clone());
        view.connect_button_release_event(move |_, e| {
            i.saw(&l, by_person(x11, e));
            Propagation::Proceed
        });
        let (i, l) = (inputs.clone(), label.clone());
        view.connect_key_press_event(move |_, e| {
            i.saw(&l, by_person(x11, e));
            Propagation::Proceed
        });
        view.connect_key_release_event(move |_, e| {
            inputs.saw(&label, by_person(x11, e));
            Propagation::Proceed
        });
    }

    /// A physical device made this event: on X11, a device of its own (not
    /// the seat's master, which events made inside the process carry) that
    /// is not one of XTEST's.
    fn by_person(x11: bool, event: &gtk::gdk::Event) -> bool {
        if !x11 {
            return true;
        }
        let Some(device) = event.source_device() else {
            return false;
        };
        let name = device.name().map(|n| n.to_string()).unwrap_or_default();
        let physical = device.device_type() != gtk::gdk::DeviceType::Master;
        tracing::debug!(device = %name, physical, "input in a window");
        physical && !name.contains("XTEST")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_persons_recent_input_counts() {
        let inputs = Inputs::default();
        assert_eq!(inputs.was_the_person("prompt"), Err(NotThePerson::NoInput));
        inputs.saw("prompt", true);
        assert_eq!(inputs.was_the_person("prompt"), Ok(()));
        assert_eq!(inputs.was_the_person("main"), Err(NotThePerson::NoInput));
        inputs.saw("prompt", false);
        assert_eq!(
            inputs.was_the_person("prompt"),
            Err(NotThePerson::Synthetic)
        );
        inputs.latest.lock().insert(
            "prompt".into(),
            Seen {
                at: Instant::now() - RECENT - Duration::from_millis(1),
                by_person: true,
            },
        );
        assert_eq!(inputs.was_the_person("prompt"), Err(NotThePerson::NoInput));
    }

    #[test]
    fn a_confirmed_code_stands_for_one_change_from_its_window() {
        let inputs = Inputs::default();
        assert!(!inputs.take_confirmation("main"));
        inputs.confirmed("main");
        assert!(!inputs.take_confirmation("prompt"), "another window's code");
        assert!(inputs.take_confirmation("main"));
        assert!(!inputs.take_confirmation("main"), "used once");
        inputs.confirmed.lock().insert(
            "main".into(),
            Instant::now() - CONFIRMED - Duration::from_millis(1),
        );
        assert!(!inputs.take_confirmation("main"), "too old");
    }
}
