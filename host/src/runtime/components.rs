//! Component versions: compile (with an on-disk cache of compiled code), check against
//! the component's WIT world, and install as the version new instances use. A version
//! that fails either step is refused and the serving one stays.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use parking_lot::RwLock;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::Engine;

use super::bindings::{graphql::GraphqlComponentPre, library::LibraryComponentPre, user_channel::UserChannelComponentPre};
use super::key::ComponentKind;
use super::state::ActorState;
use crate::imports;

/// A component checked against its world, ready to instantiate.
pub enum Prepared {
    Library(LibraryComponentPre<ActorState>),
    UserChannel(UserChannelComponentPre<ActorState>),
    Graphql(GraphqlComponentPre<ActorState>),
}

/// One installed version of a component.
pub struct Version {
    pub kind: ComponentKind,
    /// 1 for the version loaded at start, then +1 for each swap.
    pub number: u64,
    /// SHA-256 of the `.wasm` bytes, hex.
    pub digest: String,
    pub prepared: Prepared,
}

pub struct ComponentStore {
    engine: Engine,
    cache_dir: PathBuf,
    linkers: Vec<Linker<ActorState>>,
    current: [RwLock<Option<Arc<Version>>>; 3],
    next_number: [AtomicU64; 3],
}

impl ComponentStore {
    pub fn new(engine: Engine, cache_dir: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&cache_dir).with_context(|| format!("creating {}", cache_dir.display()))?;
        let linkers = ComponentKind::ALL
            .into_iter()
            .map(|kind| imports::linker(&engine, kind))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            engine,
            cache_dir,
            linkers,
            current: Default::default(),
            next_number: Default::default(),
        })
    }

    /// The version new instances of `kind` use.
    pub fn current(&self, kind: ComponentKind) -> Option<Arc<Version>> {
        self.current[kind as usize].read().clone()
    }

    /// Compile and check `wasm` as `kind` without installing it.
    pub fn prepare(&self, kind: ComponentKind, wasm: &[u8]) -> Result<(Prepared, String)> {
        let digest = digest(wasm);
        let component = self.compile_cached(wasm, &digest)?;
        let pre = self.linkers[kind as usize]
            .instantiate_pre(&component)
            .map_err(|e| anyhow!("does not match the `{}` world's imports: {e:#}", world_name(kind)))?;
        let wrong_exports = |e: wasmtime::Error| anyhow!("does not match the `{}` world's exports: {e:#}", world_name(kind));
        let prepared = match kind {
            ComponentKind::Library => Prepared::Library(LibraryComponentPre::new(pre).map_err(wrong_exports)?),
            ComponentKind::UserChannel => Prepared::UserChannel(UserChannelComponentPre::new(pre).map_err(wrong_exports)?),
            ComponentKind::Graphql => Prepared::Graphql(GraphqlComponentPre::new(pre).map_err(wrong_exports)?),
        };
        Ok((prepared, digest))
    }

    /// Install a checked version; returns its number.
    pub fn install(&self, kind: ComponentKind, prepared: Prepared, digest: String) -> Arc<Version> {
        let number = self.next_number[kind as usize].fetch_add(1, Ordering::SeqCst) + 1;
        let version = Arc::new(Version { kind, number, digest, prepared });
        *self.current[kind as usize].write() = Some(version.clone());
        version
    }

    /// Prepare and install in one step.
    pub fn load(&self, kind: ComponentKind, wasm: &[u8]) -> Result<Arc<Version>> {
        let (prepared, digest) = self.prepare(kind, wasm)?;
        Ok(self.install(kind, prepared, digest))
    }

    fn compile_cached(&self, wasm: &[u8], digest: &str) -> Result<Component> {
        let compat = {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            self.engine.precompile_compatibility_hash().hash(&mut hasher);
            hasher.finish()
        };
        let cached = self.cache_dir.join(format!("{digest}-{compat:016x}.cwasm"));
        if cached.exists() {
            // SAFETY: the file was written by `Component::serialize` of this same engine
            // configuration (the compatibility hash is part of its name) into our data dir.
            if let Ok(component) = unsafe { Component::deserialize_file(&self.engine, &cached) } {
                return Ok(component);
            }
        }
        if !wasmparser_is_component(wasm) {
            return Err(anyhow!("is not a WebAssembly component"));
        }
        let component = Component::new(&self.engine, wasm).map_err(|e| anyhow!("does not compile: {e:#}"))?;
        if let Ok(bytes) = component.serialize() {
            let tmp = cached.with_extension("tmp");
            if std::fs::write(&tmp, bytes).is_ok() {
                let _ = std::fs::rename(&tmp, &cached);
            }
        }
        Ok(component)
    }
}

/// The file a component is loaded from in the components directory.
pub fn find_in_dir(dir: &Path, kind: ComponentKind) -> Option<PathBuf> {
    [kind.name().to_string(), kind.name().replace('-', "_")]
        .into_iter()
        .map(|stem| dir.join(format!("{stem}.wasm")))
        .find(|path| path.is_file())
}

pub fn world_name(kind: ComponentKind) -> &'static str {
    match kind {
        ComponentKind::Library => "library-component",
        ComponentKind::UserChannel => "user-channel-component",
        ComponentKind::Graphql => "graphql-component",
    }
}

/// A component's binary starts with the wasm magic and the component-model layer.
fn wasmparser_is_component(wasm: &[u8]) -> bool {
    wasm.len() >= 8 && wasm[0..4] == *b"\0asm" && wasm[6..8] == [0x01, 0x00]
}

/// SHA-256 of a component's bytes, hex: names a version.
pub fn digest(wasm: &[u8]) -> String {
    hex(&Sha256::digest(wasm))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
