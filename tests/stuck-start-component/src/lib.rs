//! A `library-component` that never finishes starting: `_initialize`, which the component
//! runs at instantiation, loops forever. The host must stop it like a call that runs too long.

wit_bindgen::generate!({ path: "../../wit", world: "library-component" });

struct Stuck;

impl exports::realtime::host::library::Guest for Stuck {
    fn call(_method: String, _args: String) -> Result<String, String> {
        Err("unreachable: this component never starts".into())
    }
}

export!(Stuck);

/// Run by the component's start, before any export can be called.
#[unsafe(no_mangle)]
pub extern "C" fn _initialize() {
    loop {
        std::hint::black_box(());
    }
}
