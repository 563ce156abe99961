//! The extension finds libtorch in the torch wheel installed beside it in site-packages
//! (`minima/_minima*.so` → `torch/lib`), so it loads without `import torch` or LD_LIBRARY_PATH.

fn main() {
    println!("cargo:rustc-link-arg-cdylib=-Wl,-rpath,$ORIGIN/../torch/lib");
}
