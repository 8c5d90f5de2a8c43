//! Rust bindings generated from `wit/host.wit`: the import traits the host implements
//! (one set, from world `host-imports`) and one typed export wrapper per component world.

/// Import traits for every host interface.
pub mod imports {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "host-imports",
        imports: { default: async },
    });
}

/// `library-component`: stories and tags.
pub mod library {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "library-component",
        imports: { default: async },
        exports: { default: async },
        with: {
            "realtime:host/log": super::imports::realtime::host::log,
            "realtime:host/sql": super::imports::realtime::host::sql,
            "realtime:host/kv": super::imports::realtime::host::kv,
            "realtime:host/channel": super::imports::realtime::host::channel,
        },
    });
}

/// `user-channel-component`: graphql-ws sockets and fan-out.
pub mod user_channel {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "user-channel-component",
        imports: { default: async },
        exports: { default: async },
        with: {
            "realtime:host/log": super::imports::realtime::host::log,
            "realtime:host/sockets": super::imports::realtime::host::sockets,
            "realtime:host/alarm": super::imports::realtime::host::alarm,
            "realtime:host/settings": super::imports::realtime::host::settings,
            "realtime:host/graphql": super::imports::realtime::host::graphql,
        },
    });
}

/// `graphql-component`: the schema and the GraphQL engine.
pub mod graphql {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "graphql-component",
        imports: { default: async },
        exports: { default: async },
        with: {
            "realtime:host/log": super::imports::realtime::host::log,
            "realtime:host/settings": super::imports::realtime::host::settings,
            "realtime:host/accounts": super::imports::realtime::host::accounts,
            "realtime:host/library": super::imports::realtime::host::library,
        },
    });
}

pub use imports::realtime::host as host_api;
