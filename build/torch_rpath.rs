//! Build script shared by every crate whose binaries or tests link libtorch: it gives them an
//! rpath to the libtorch that torch-sys linked against (`LIBTORCH`, set project-relative in
//! `.cargo/config.toml`), so `minima` and the test binaries run without `LD_LIBRARY_PATH`.
fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Some(libtorch) = std::env::var_os("LIBTORCH") {
        let lib = std::path::Path::new(&libtorch).join("lib");
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    }
}
