//! Where tensors live, and how many CPU threads libtorch uses.

use tch::Device;

use crate::ModelError;

/// `cpu`, `cuda` or `cuda:N`. CUDA needs libtorch's CUDA backend, `libtorch_cuda.so`: the
/// binary links only the CPU libraries (so it runs on machines without CUDA libraries), and
/// loads the CUDA backend from beside the loaded `libtorch_cpu.so` when a GPU is asked for.
pub fn parse_device(name: &str) -> Result<Device, ModelError> {
    let index = match name {
        "cpu" => return Ok(Device::Cpu),
        "cuda" => 0,
        other => other
            .strip_prefix("cuda:")
            .and_then(|i| i.parse().ok())
            .ok_or_else(|| ModelError::Config(format!("unknown device {other:?} (cpu, cuda or cuda:N)")))?,
    };
    load_cuda_backend()?;
    if !tch::Cuda::is_available() {
        return Err(ModelError::Config("--device cuda: no CUDA device is available".into()));
    }
    Ok(Device::Cuda(index))
}

fn load_cuda_backend() -> Result<(), ModelError> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let cpu_library = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| path.ends_with("/libtorch_cpu.so"))
        .ok_or_else(|| ModelError::Config("cannot locate the loaded libtorch_cpu.so".into()))?;
    let cuda_library = std::path::Path::new(cpu_library).with_file_name("libtorch_cuda.so");
    // SAFETY: loading libtorch's own CUDA backend runs its static initialisers, which register
    // the CUDA device with the already loaded libtorch; the library is never unloaded.
    let library = unsafe { libloading::Library::new(&cuda_library) }
        .map_err(|e| ModelError::Config(format!("loading {}: {e}", cuda_library.display())))?;
    std::mem::forget(library);
    Ok(())
}

/// Sets the number of intra-op threads libtorch uses, and keeps freed tensor memory mapped
/// ([`keep_freed_memory`]). One intra-op thread is the default: OpenMP workers spin while
/// waiting and slow everything down on a busy 2-core machine.
pub fn configure_threads(intra_op: usize) {
    tch::set_num_threads(intra_op.max(1) as i32);
    keep_freed_memory();
}

/// The largest mmap threshold glibc accepts on 64-bit systems (`HEAP_MAX_SIZE / 2`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD_MAX: i32 = 32 << 20;

/// libtorch takes CPU tensors straight from malloc, and an energy + forces step allocates and
/// frees tensors of megabytes hundreds of times. With glibc's defaults each is a fresh mmap
/// whose pages fault in zeroed and return to the kernel on free: `perf` found nearly a quarter
/// of a PaiNN training step's time in the kernel's page handling. Serving tensors up to 32 MiB from the heap and
/// never trimming it keeps those pages mapped; the peak resident memory is unchanged, but
/// memory freed after the peak stays with the process until it ends. Once per process.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static TUNED: std::sync::Once = std::sync::Once::new();
        // SAFETY: mallopt only changes glibc's allocation thresholds; it is safe to call at any
        // time, and a refused value (return 0) leaves the default in place.
        TUNED.call_once(|| unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX);
            libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        });
    }
}

/// The environment variable that sets [`memory_budget`], in GiB.
pub const MEMORY_BUDGET_VARIABLE: &str = "MINIMA_MEMORY_GB";

/// GiB a model job may plan to allocate when `MINIMA_MEMORY_GB` is not set: enough for every
/// configuration in configs/ with room to spare, small enough to stop a mistyped size long
/// before the machine swaps or libtorch aborts.
pub const DEFAULT_MEMORY_BUDGET_GB: f64 = 8.0;

/// Bytes a model job may plan to allocate: `MINIMA_MEMORY_GB` GiB when set, else
/// [`DEFAULT_MEMORY_BUDGET_GB`].
pub fn memory_budget() -> Result<u64, ModelError> {
    let gib = match std::env::var(MEMORY_BUDGET_VARIABLE) {
        Ok(text) => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|g| g.is_finite() && *g > 0.0)
            .ok_or_else(|| {
                ModelError::Config(format!(
                    "{MEMORY_BUDGET_VARIABLE}={text:?}: expected a positive number of GiB"
                ))
            })?,
        Err(_) => DEFAULT_MEMORY_BUDGET_GB,
    };
    Ok((gib * GIB) as u64)
}

const GIB: f64 = (1u64 << 30) as f64;

/// `bytes` in GiB, for messages.
pub fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / GIB)
}

/// Refuses a job that would need `bytes` (described by `what`) over [`memory_budget`], with
/// the estimate and `lower`, the settings that lower it.
pub fn check_memory(what: &str, bytes: u64, lower: &str) -> Result<(), ModelError> {
    let budget = memory_budget()?;
    if bytes <= budget {
        return Ok(());
    }
    Err(ModelError::Memory(format!(
        "{what} needs about {}, over the memory budget of {} ({MEMORY_BUDGET_VARIABLE}, default {DEFAULT_MEMORY_BUDGET_GB}); {lower}, or raise {MEMORY_BUDGET_VARIABLE} if the machine has the memory",
        gib(bytes),
        gib(budget)
    )))
}
