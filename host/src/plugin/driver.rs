//! Driver plugins: one long-lived instance per device, rebuilt after a fault.

use std::sync::Arc;

use kakou_plugin_sdk::mirror::Mirror;
use kakou_plugin_sdk::model::{
    Command, DriverDescription, FeedOutput, Reading, ReadingValue, Setting,
};
use wasmtime::Store;
use wasmtime::component::ResourceAny;

use super::bindings::driver_world::{Driver, DriverPre};
use super::error::{CallError, CallErrorKind};
use super::loader::{Inner, Pre};
use super::manifest::PluginManifest;
use super::pool::Home;
use super::sandbox::{Clocks, Sandbox, classify, off_executor};

/// A loaded driver plugin: opens one [`DriverInstance`] per device.
#[derive(Clone)]
pub struct DriverPlugin {
    pub(crate) inner: Arc<Inner>,
}

impl DriverPlugin {
    /// Its manifest.
    pub fn manifest(&self) -> &PluginManifest {
        &self.inner.manifest
    }

    /// What the driver said about itself when it was loaded.
    pub fn description(&self) -> &DriverDescription {
        match &self.inner.description {
            super::loader::Description::Driver(d) => d,
            super::loader::Description::Rules(_) => {
                unreachable!("DriverPlugin is only built from a driver")
            }
        }
    }

    /// `name@version`.
    pub fn id(&self) -> String {
        self.inner.manifest.id()
    }

    /// sha256 of its component, hex.
    pub fn digest_hex(&self) -> String {
        hex::encode(self.inner.digest)
    }

    /// Calls made into it since it was loaded, over all its instances.
    pub fn calls(&self) -> u64 {
        self.inner.counters.calls()
    }

    /// Calls that faulted since it was loaded, over all its instances.
    pub fn faults(&self) -> u64 {
        self.inner.counters.faults()
    }

    /// Whether `other` is the same plugin: the same component and the same manifest.
    pub fn same_as(&self, other: &DriverPlugin) -> bool {
        self.inner.digest == other.inner.digest && self.inner.manifest == other.inner.manifest
    }

    /// Opens a decoder for one device. `settings` are laid over the manifest's defaults.
    pub fn open(&self, settings: &[Setting]) -> Result<DriverInstance, CallError> {
        let mut all = self.inner.manifest.settings.clone();
        all.extend_from_slice(settings);
        let mut instance = DriverInstance {
            plugin: self.clone(),
            settings: all,
            live: None,
            faults: 0,
        };
        instance.live()?;
        Ok(instance)
    }

    fn pre(&self) -> &DriverPre<Sandbox> {
        match &self.inner.pre {
            Pre::Driver(p) => p,
            Pre::Rules(_) => unreachable!("DriverPlugin is only built from a driver"),
        }
    }
}

/// Asks a freshly linked driver to describe itself (load path).
pub(crate) fn describe(
    home: &Home,
    manifest: &PluginManifest,
    pre: &DriverPre<Sandbox>,
) -> Result<DriverDescription, CallError> {
    let limits = manifest.limits;
    let (result, stderr) = off_executor(|| {
        let mut store = Sandbox::store(home, manifest, Clocks::Real, None);
        Sandbox::arm(&mut store, &limits, home.tick);
        let result = pre
            .instantiate(&mut store)
            .and_then(|bindings| bindings.kakou_plugin_decoding().call_describe(&mut store));
        let stderr = store.data_mut().take_stderr();
        (result, stderr)
    });
    result.map(Mirror::mirror).map_err(|e| CallError {
        plugin: manifest.id(),
        kind: classify(&e, &limits, stderr),
    })
}

struct Live {
    store: Store<Sandbox>,
    bindings: Driver,
    decoder: ResourceAny,
}

/// One device's decoder inside its sandbox.
///
/// A call that faults discards the instance; the next call opens a fresh one with the same
/// settings (buffered partial frames are lost with it, and counted by the caller as rejected).
pub struct DriverInstance {
    plugin: DriverPlugin,
    settings: Vec<Setting>,
    live: Option<Live>,
    faults: u64,
}

impl DriverInstance {
    /// The plugin behind this instance.
    pub fn plugin(&self) -> &DriverPlugin {
        &self.plugin
    }

    /// How many calls have faulted since the instance was opened.
    pub fn faults(&self) -> u64 {
        self.faults
    }

    fn error(&self, kind: CallErrorKind) -> CallError {
        CallError {
            plugin: self.plugin.inner.manifest.id(),
            kind,
        }
    }

    fn live(&mut self) -> Result<&mut Live, CallError> {
        if self.live.is_none() {
            let inner = &self.plugin.inner;
            let manifest = &inner.manifest;
            let home = &inner.home;
            let mut store = Sandbox::store(home, manifest, Clocks::Real, None);
            let (pre, settings) = (self.plugin.pre(), &self.settings);
            let instantiated = off_executor(|| {
                Sandbox::arm(&mut store, &manifest.limits, home.tick);
                pre.instantiate(&mut store).and_then(|bindings| {
                    let settings: Vec<super::bindings::wit_types::Setting> =
                        settings.clone().mirror();
                    let opened = bindings
                        .kakou_plugin_decoding()
                        .call_open(&mut store, &settings)?;
                    Ok((bindings, opened))
                })
            });
            match instantiated {
                Ok((bindings, Ok(decoder))) => {
                    self.live = Some(Live {
                        store,
                        bindings,
                        decoder,
                    })
                }
                Ok((_, Err(message))) => return Err(self.error(CallErrorKind::Refused(message))),
                Err(e) => {
                    let panic = store.data_mut().take_stderr();
                    return Err(self.error(CallErrorKind::Instantiate(
                        classify(&e, &manifest.limits, panic).to_string(),
                    )));
                }
            }
        }
        // Just built or already there.
        self.live.as_mut().ok_or_else(|| CallError {
            plugin: String::new(),
            kind: CallErrorKind::Instantiate("instance missing".into()),
        })
    }

    /// Runs one call with fuel and deadline armed; a fault discards the instance. Every call is
    /// counted, and every fault reported, on the plugin (see [`super::health`]).
    fn call<R: Send>(
        &mut self,
        size: impl Fn(&R) -> usize,
        f: impl FnOnce(&mut Store<Sandbox>, &Driver, ResourceAny) -> wasmtime::Result<R> + Send,
    ) -> Result<R, CallError> {
        let number = self.plugin.inner.begin_call();
        let result = self.call_inner(size, f);
        if let Err(e) = &result {
            self.plugin.inner.call_failed(number, e);
        }
        result
    }

    fn call_inner<R: Send>(
        &mut self,
        size: impl Fn(&R) -> usize,
        f: impl FnOnce(&mut Store<Sandbox>, &Driver, ResourceAny) -> wasmtime::Result<R> + Send,
    ) -> Result<R, CallError> {
        let limits = self.plugin.inner.manifest.limits;
        let tick = self.plugin.inner.home.tick;
        let live = self.live()?;
        let result = off_executor(|| {
            Sandbox::arm(&mut live.store, &limits, tick);
            f(&mut live.store, &live.bindings, live.decoder)
        });
        let data = live.store.data_mut();
        data.report_dropped_logs();
        let stderr = data.take_stderr();
        let kind = match result {
            Ok(r) => {
                let bytes = size(&r);
                if bytes <= limits.max_output_bytes {
                    return Ok(r);
                }
                CallErrorKind::OversizedResult {
                    bytes,
                    limit: limits.max_output_bytes,
                }
            }
            Err(e) => classify(&e, &limits, stderr),
        };
        self.live = None;
        self.faults += 1;
        let error = self.error(kind);
        tracing::warn!("{error}; the instance is discarded and will be rebuilt");
        Err(error)
    }

    /// Decodes bytes from the device.
    pub fn feed(&mut self, data: &[u8]) -> Result<FeedOutput, CallError> {
        self.call(
            |o: &FeedOutput| output_size(o),
            |store, b, decoder| {
                b.kakou_plugin_decoding()
                    .decoder()
                    .call_feed(store, decoder, data)
                    .map(Mirror::mirror)
            },
        )
    }

    /// Hands back and forgets the decoder's unconsumed bytes.
    pub fn drain(&mut self) -> Result<Vec<u8>, CallError> {
        self.call(Vec::len, |store, b, decoder| {
            b.kakou_plugin_decoding()
                .decoder()
                .call_drain(store, decoder)
        })
    }

    /// Bytes to send to the device now, if any.
    pub fn poll(&mut self) -> Result<Option<Vec<u8>>, CallError> {
        self.call(
            |o: &Option<Vec<u8>>| o.as_ref().map_or(0, Vec::len),
            |store, b, decoder| {
                b.kakou_plugin_decoding()
                    .decoder()
                    .call_poll(store, decoder)
            },
        )
    }

    /// Bytes that carry out a command.
    ///
    /// A failure is a typed [`CallError`] and never silent; no bytes were produced, so the
    /// command must not be taken as sent. Its [`kind`](CallError::kind) tells what to do:
    /// - [`CallErrorKind::Refused`]: the driver declined the command (it takes no commands, or
    ///   not this one, or not with these settings). The instance is kept; the same command
    ///   will be refused again, so retrying is pointless: alarm.
    /// - any other kind: the call faulted (trap, [`Timeout`](CallErrorKind::Timeout) of its
    ///   CPU-time deadline, [`Stalled`](CallErrorKind::Stalled) past its wall-clock backstop,
    ///   fuel, memory, oversized result) or its instance could not be rebuilt. The instance
    ///   was discarded and the fault counted on the plugin (see [`super::health`]); the next
    ///   call, a retry of this command included, runs on a fresh instance opened with the
    ///   same settings. [`is_fault`](super::health::is_fault) tells these apart from a refusal.
    pub fn encode(&mut self, command: &Command) -> Result<Vec<u8>, CallError> {
        let wit_command = command.clone().mirror();
        let result = self.call(
            |r: &Result<Vec<u8>, String>| r.as_ref().map_or(0, Vec::len),
            |store, b, decoder| {
                b.kakou_plugin_decoding()
                    .decoder()
                    .call_encode(store, decoder, &wit_command)
            },
        )?;
        result.map_err(|m| self.error(CallErrorKind::Refused(m)))
    }
}

/// Approximate heap size of a decoded batch, for the result limit.
fn output_size(o: &FeedOutput) -> usize {
    o.readings.iter().map(reading_size).sum::<usize>()
        + o.rejected
            .iter()
            .map(|r| 16 + r.reason.len())
            .sum::<usize>()
}

fn reading_size(r: &Reading) -> usize {
    let attrs: usize = r
        .attributes
        .iter()
        .map(|a| 16 + a.key.len() + a.value.len())
        .sum();
    let body = match &r.value {
        ReadingValue::Plate(p) => p.text.len() + p.char_confidence.len(),
        ReadingValue::Tag(t) => t.epc.len(),
        ReadingValue::Container(c) => c.number.len() + c.iso_type.as_ref().map_or(0, String::len),
        ReadingValue::Card(c) => c.uid.len(),
        ReadingValue::Position(p) => p.utc.as_ref().map_or(0, String::len),
        ReadingValue::Seal(s) => s.id.len(),
        ReadingValue::Presence(p) => p.zone.len(),
        ReadingValue::Status(s) => s.code.len() + s.message.len(),
        ReadingValue::Document(d) => d.kind.len() + d.number.len(),
        ReadingValue::Raw(r) => r.kind.len() + r.data.len(),
        ReadingValue::Weight(_) => 0,
    };
    64 + attrs + body
}
