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

/// Sets the number of intra-op threads libtorch uses. One intra-op thread is the default:
/// OpenMP workers spin while waiting and slow everything down on a busy 2-core machine.
pub fn configure_threads(intra_op: usize) {
    tch::set_num_threads(intra_op.max(1) as i32);
}
