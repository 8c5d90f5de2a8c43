//! The host side of every WIT import, each scoped to the calling actor.
//! One file per interface; `link` adds the ones a component world needs to its linker.

mod accounts;
mod alarm;
mod channel;
mod forward;
mod kv;
mod log;
mod settings;
mod sockets;
mod sql;

use wasmtime::component::{HasSelf, Linker};

use crate::runtime::bindings::host_api;
use crate::runtime::key::ComponentKind;
use crate::runtime::state::ActorState;

/// A linker with WASI and the host interfaces of `kind`'s world.
pub fn linker(engine: &wasmtime::Engine, kind: ComponentKind) -> anyhow::Result<Linker<ActorState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    let l = &mut linker;
    host_api::log::add_to_linker::<_, HasSelf<_>>(l, |s| s)?;
    match kind {
        ComponentKind::Library => {
            host_api::sql::add_to_linker::<_, HasSelf<_>>(l, |s| s)?;
            host_api::kv::add_to_linker::<_, HasSelf<_>>(l, |s| s)?;
            host_api::channel::add_to_linker::<_, HasSelf<_>>(l, |s| s)?;
            host_api::settings::add_to_linker::<_, HasSelf<_>>(l, |s| s)?;
        }
        ComponentKind::UserChannel => {
            host_api::sockets::add_to_linker::<_, HasSelf<_>>(l, |s| s)?;
            host_api::alarm::add_to_linker::<_, HasSelf<_>>(l, |s| s)?;
            host_api::settings::add_to_linker::<_, HasSelf<_>>(l, |s| s)?;
            host_api::graphql::add_to_linker::<_, HasSelf<_>>(l, |s| s)?;
            host_api::library::add_to_linker::<_, HasSelf<_>>(l, |s| s)?;
        }
        ComponentKind::Graphql => {
            host_api::settings::add_to_linker::<_, HasSelf<_>>(l, |s| s)?;
            host_api::accounts::add_to_linker::<_, HasSelf<_>>(l, |s| s)?;
            host_api::library::add_to_linker::<_, HasSelf<_>>(l, |s| s)?;
        }
    }
    Ok(linker)
}
