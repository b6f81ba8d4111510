//! Watching the files a running site is made of, debounced: the plugin folders
//! (`plugins/drivers/<name>`, `plugins/rules/<name>`), the region rule set file and the site
//! manifest.
//!
//! Owns the `notify` watchers and turns their raw events into [`Target`]s, each reported once
//! it has been quiet for the debounce time, so a package copied file by file or renamed into
//! place in several steps is looked at once, whole. It reads no file and loads nothing: that is
//! the supervisor's (see [`super`]).
//!
//! The plugin folder is watched by the platform's watcher (inotify), recursively. The site
//! manifest and the rule set file are polled instead ([`POLL_FILES`]): a folder watch would
//! also report every write to whatever else lives beside them, and a store or spool kept in
//! the site's folder is written for every truck. Polling the two files by path also follows
//! an editor that saves by renaming a new file over the old one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, PollWatcher, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

/// How often the site manifest and the rule set file are looked at. Their contents are
/// compared too, so two saves within one second of file time are both seen.
pub(crate) const POLL_FILES: Duration = Duration::from_secs(1);

/// Something that changed on disk and may need to be loaded again.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// `plugins/drivers/<name>`.
    Driver(String),
    /// `plugins/rules/<name>`.
    Rules(String),
    /// The region rule set file the site names.
    RuleSet,
    /// The site manifest.
    Site,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Driver(n) => write!(f, "drivers/{n}"),
            Target::Rules(n) => write!(f, "rules/{n}"),
            Target::RuleSet => f.write_str("the region rule set file"),
            Target::Site => f.write_str("the site manifest"),
        }
    }
}

/// Why the watcher could not watch.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The platform's file watcher could not start.
    #[error("cannot start the file watcher: {0}")]
    Start(#[source] notify::Error),
    /// A folder could not be watched.
    #[error("cannot watch {}: {source}", path.display())]
    Watch {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: notify::Error,
    },
}

/// What to watch.
#[derive(Debug, Clone)]
pub(crate) struct Paths {
    /// The site's plugin folder (`drivers/`, `rules/` below it), watched recursively.
    pub plugins: PathBuf,
    /// The site manifest file.
    pub site: PathBuf,
    /// The region rule set file, when the site names one.
    pub ruleset: Option<PathBuf>,
}

/// A raw event and whether it came from polling a file (every such event is a change).
type RawEvent = (bool, notify::Result<notify::Event>);

/// The debounced watcher.
pub(crate) struct FileWatcher {
    watcher: RecommendedWatcher,
    /// Polls the site manifest and the rule set file.
    files: PollWatcher,
    raw: mpsc::UnboundedReceiver<RawEvent>,
    /// Folders and files watched.
    watched: BTreeSet<PathBuf>,
    paths: Paths,
    pending: BTreeMap<Target, Instant>,
    debounce: Duration,
}

/// The path as the watcher reports it: canonical where it exists (the file, else its folder).
fn canonical(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => dir
            .canonicalize()
            .map_or_else(|_| path.to_path_buf(), |d| d.join(name)),
        _ => path.to_path_buf(),
    }
}

impl FileWatcher {
    /// Starts watching `paths`; changes are reported after `debounce` of quiet. The plugin
    /// folder and its `drivers/` and `rules/` are made when missing: a folder made after the
    /// watch started is watched only from the moment the watcher sees it, so a package
    /// renamed into a brand-new `drivers/` at once could be missed.
    pub(crate) fn start(paths: Paths, debounce: Duration) -> Result<Self, WatchError> {
        for kind in ["drivers", "rules"] {
            let dir = paths.plugins.join(kind);
            if !dir.is_dir()
                && let Err(e) = std::fs::create_dir_all(&dir)
            {
                tracing::warn!("cannot make {}: {e}", dir.display());
            }
        }
        let (tx, raw) = mpsc::unbounded_channel::<RawEvent>();
        let folders = tx.clone();
        let watcher = notify::recommended_watcher(move |event| {
            let _ = folders.send((false, event));
        })
        .map_err(WatchError::Start)?;
        let files = PollWatcher::new(
            move |event| {
                let _ = tx.send((true, event));
            },
            notify::Config::default()
                .with_poll_interval(POLL_FILES)
                .with_compare_contents(true),
        )
        .map_err(WatchError::Start)?;
        let paths = Paths {
            plugins: canonical(&paths.plugins),
            site: canonical(&paths.site),
            ruleset: paths.ruleset.as_deref().map(canonical),
        };
        let mut w = FileWatcher {
            watcher,
            files,
            raw,
            watched: BTreeSet::new(),
            paths: paths.clone(),
            pending: BTreeMap::new(),
            debounce,
        };
        w.watch(&paths.plugins, RecursiveMode::Recursive)?;
        w.watch_file(&paths.site)?;
        w.set_ruleset(paths.ruleset.as_deref())?;
        Ok(w)
    }

    /// Where the region rule set file is now (the site manifest may name another).
    pub(crate) fn set_ruleset(&mut self, path: Option<&Path>) -> Result<(), WatchError> {
        let new = path.map(canonical);
        if new == self.paths.ruleset && new.as_ref().is_some_and(|p| self.watched.contains(p)) {
            return Ok(());
        }
        if let Some(old) = self.paths.ruleset.take()
            && old != self.paths.site
            && self.watched.remove(&old)
        {
            let _ = self.files.unwatch(&old);
        }
        self.paths.ruleset = new.clone();
        if let Some(file) = new {
            if !file.is_file() {
                tracing::warn!(
                    "{} does not exist: the rule set file is not watched",
                    file.display()
                );
                return Ok(());
            }
            self.watch_file(&file)?;
        }
        Ok(())
    }

    /// Polls one file by its path (see the module doc).
    fn watch_file(&mut self, file: &Path) -> Result<(), WatchError> {
        if self.watched.contains(file) {
            return Ok(());
        }
        self.files
            .watch(file, RecursiveMode::NonRecursive)
            .map_err(|source| WatchError::Watch {
                path: file.to_path_buf(),
                source,
            })?;
        self.watched.insert(file.to_path_buf());
        Ok(())
    }

    fn watch(&mut self, dir: &Path, mode: RecursiveMode) -> Result<(), WatchError> {
        // A folder inside the recursively watched plugin folder is watched already.
        if self.watched.contains(dir)
            || (dir.starts_with(&self.paths.plugins) && self.watched.contains(&self.paths.plugins))
        {
            return Ok(());
        }
        self.watcher
            .watch(dir, mode)
            .map_err(|source| WatchError::Watch {
                path: dir.to_path_buf(),
                source,
            })?;
        self.watched.insert(dir.to_path_buf());
        Ok(())
    }

    /// Waits until some targets changed and have been quiet for the debounce time, and returns
    /// them. Cancel-safe: what it has seen is kept for the next call.
    pub(crate) async fn next(&mut self) -> Vec<Target> {
        loop {
            let now = Instant::now();
            let ready: Vec<Target> = self
                .pending
                .iter()
                .filter(|(_, at)| **at <= now)
                .map(|(t, _)| t.clone())
                .collect();
            if !ready.is_empty() {
                for t in &ready {
                    self.pending.remove(t);
                }
                return ready;
            }
            let wake = self.pending.values().min().copied();
            tokio::select! {
                event = self.raw.recv() => match event {
                    Some((polled, Ok(e))) => self.note(&e, polled),
                    Some((_, Err(e))) => tracing::warn!("file watcher: {e}"),
                    None => std::future::pending::<()>().await,
                },
                () = sleep_until(wake.unwrap_or(now)), if wake.is_some() => {}
            }
        }
    }

    /// Notes a raw event. A polled file's events are all changes (its time or its contents);
    /// of the folder watcher's, reads and metadata changes are not.
    fn note(&mut self, event: &notify::Event, polled: bool) {
        let relevant = polled
            || match &event.kind {
                // The daemon's own reads (the load path) must not count as changes.
                EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
                EventKind::Access(_) | EventKind::Other => false,
                EventKind::Modify(ModifyKind::Metadata(_)) => false,
                _ => true,
            };
        if !relevant {
            return;
        }
        for path in &event.paths {
            if let Some(t) = self.classify(path) {
                tracing::debug!("{} changed ({:?})", path.display(), event.kind);
                self.pending.insert(t, Instant::now() + self.debounce);
            }
        }
    }

    /// The target a changed path belongs to: a plugin folder itself or a file directly in it,
    /// the rule set file, the site manifest. Folders whose name starts with `.` (a package
    /// being copied before it is renamed into place) and anything deeper are not targets.
    pub(crate) fn classify(&self, path: &Path) -> Option<Target> {
        if path == self.paths.site {
            return Some(Target::Site);
        }
        if Some(path) == self.paths.ruleset.as_deref() {
            return Some(Target::RuleSet);
        }
        let rel = path.strip_prefix(&self.paths.plugins).ok()?;
        let parts: Vec<&str> = rel
            .components()
            .map(|c| match c {
                Component::Normal(n) => n.to_str(),
                _ => None,
            })
            .collect::<Option<_>>()?;
        let (kind, name) = match parts.as_slice() {
            [kind, name] | [kind, name, _] => (*kind, *name),
            _ => return None,
        };
        if name.starts_with('.') || !crate::config::valid_id(name) {
            return None;
        }
        match kind {
            "drivers" => Some(Target::Driver(name.to_owned())),
            "rules" => Some(Target::Rules(name.to_owned())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_targets() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("plugins/drivers")).unwrap();
        std::fs::write(root.join("site.toml"), "").unwrap();
        let w = FileWatcher::start(
            Paths {
                plugins: root.join("plugins"),
                site: root.join("site.toml"),
                ruleset: Some(root.join("regions/r.toml")),
            },
            Duration::from_millis(10),
        )
        .unwrap();
        let t = |p: &str| w.classify(&root.join(p));
        assert_eq!(t("site.toml"), Some(Target::Site));
        assert_eq!(t("regions/r.toml"), Some(Target::RuleSet));
        assert_eq!(t("regions/other.toml"), None);
        assert_eq!(
            t("plugins/drivers/xk3190"),
            Some(Target::Driver("xk3190".into()))
        );
        assert_eq!(
            t("plugins/drivers/xk3190/plugin.wasm"),
            Some(Target::Driver("xk3190".into()))
        );
        assert_eq!(
            t("plugins/rules/weight-check/plugin.toml"),
            Some(Target::Rules("weight-check".into()))
        );
        assert_eq!(t("plugins/drivers/xk3190/src/lib.rs"), None);
        assert_eq!(t("plugins/drivers/.xk3190.incoming/plugin.wasm"), None);
        assert_eq!(t("plugins/drivers"), None);
        assert_eq!(t("plugins/other/x"), None);
    }

    #[tokio::test]
    async fn a_burst_of_changes_is_one_target_once_quiet() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let plugin = root.join("plugins/drivers/scale");
        std::fs::create_dir_all(&plugin).unwrap();
        std::fs::write(root.join("site.toml"), "").unwrap();
        let mut w = FileWatcher::start(
            Paths {
                plugins: root.join("plugins"),
                site: root.join("site.toml"),
                ruleset: None,
            },
            Duration::from_millis(100),
        )
        .unwrap();
        // A package renamed into place in steps, and the manifest edited.
        let incoming = root.join("plugins/drivers/.scale.incoming");
        std::fs::create_dir_all(&incoming).unwrap();
        std::fs::write(incoming.join("plugin.toml"), "x").unwrap();
        std::fs::rename(&plugin, root.join("plugins/drivers/.scale.old")).unwrap();
        std::fs::rename(&incoming, &plugin).unwrap();
        std::fs::write(root.join("site.toml"), "y").unwrap();
        let mut seen = BTreeSet::new();
        while seen.len() < 2 {
            let got = tokio::time::timeout(Duration::from_secs(30), w.next())
                .await
                .expect("changes within 30 s");
            for t in got {
                assert!(seen.insert(t.clone()), "{t} reported twice");
            }
        }
        assert_eq!(
            seen.into_iter().collect::<Vec<_>>(),
            [Target::Driver("scale".into()), Target::Site]
        );
        // Reading a file is not a change.
        let _ = std::fs::read(plugin.join("plugin.toml")).unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(400), w.next())
                .await
                .is_err()
        );
    }
}
