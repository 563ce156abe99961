//! Data-parallel training over MPI: every rank holds the whole model, takes its share of each
//! global batch, and the ranks sum their gradients before every optimiser step, so that all of
//! them make the same update (the one a single process makes on the whole batch, up to the
//! order of floating-point sums). [`Ranks`] is what the training loop needs from the ranks;
//! [`Alone`] is one process, and the `mpi` feature adds MPI (OpenMPI through the `mpi`
//! crate). On CUDA machines NCCL would take MPI's place for the gradient sum (an
//! `ncclAllReduce` over the flattened gradients on the device, with MPI or a file only to
//! share NCCL's unique id), leaving the rest of this scheme as it is.

use anyhow::Result;

/// The processes training one model together.
pub trait Ranks {
    /// This process's rank, 0 … size − 1; rank 0 writes the run's files and logs.
    fn rank(&self) -> usize;
    fn size(&self) -> usize;
    /// Sums `values` element-wise over the ranks, in place, on every rank.
    fn sum(&self, values: &mut [f64]);
    /// Overwrites `values` with rank 0's, on every rank.
    fn broadcast(&self, values: &mut [f64]);
    /// Ends every rank's run after an error on one (an MPI abort); one process just returns.
    fn abort(&self, code: i32);
}

/// One process.
pub struct Alone;

impl Ranks for Alone {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn sum(&self, _values: &mut [f64]) {}
    fn broadcast(&self, _values: &mut [f64]) {}
    fn abort(&self, _code: i32) {}
}

/// Whether this process was started by `mpirun` (OpenMPI's or another PMI launcher's
/// environment) as one of several ranks.
pub fn launched_as_ranks() -> bool {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"].iter().any(|key| {
        std::env::var(key)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .is_some_and(|n| n > 1)
    })
}

/// The ranks of this process: MPI's when started by `mpirun` with several ranks, else one.
pub fn ranks() -> Result<Box<dyn Ranks>> {
    if !launched_as_ranks() {
        return Ok(Box::new(Alone));
    }
    #[cfg(feature = "mpi")]
    {
        Ok(Box::new(mpi_ranks::Mpi::initialize()?))
    }
    #[cfg(not(feature = "mpi"))]
    {
        anyhow::bail!(
            "started by mpirun as one of several ranks, but this minima was built without MPI: build it with `scripts/setup.sh --mpi` (cargo's feature `mpi`)"
        )
    }
}

#[cfg(feature = "mpi")]
mod mpi_ranks {
    use mpi::collective::SystemOperation;
    use mpi::topology::SimpleCommunicator;
    use mpi::traits::*;

    /// MPI_COMM_WORLD; MPI is finalised when this is dropped.
    pub struct Mpi {
        _universe: mpi::environment::Universe,
        world: SimpleCommunicator,
    }

    impl Mpi {
        pub fn initialize() -> anyhow::Result<Mpi> {
            let universe = mpi::initialize().ok_or_else(|| anyhow::anyhow!("MPI was initialised already"))?;
            let world = universe.world();
            Ok(Mpi {
                _universe: universe,
                world,
            })
        }
    }

    impl super::Ranks for Mpi {
        fn rank(&self) -> usize {
            self.world.rank() as usize
        }
        fn size(&self) -> usize {
            self.world.size() as usize
        }
        fn sum(&self, values: &mut [f64]) {
            let local = values.to_vec();
            self.world.all_reduce_into(&local[..], values, SystemOperation::sum());
        }
        fn broadcast(&self, values: &mut [f64]) {
            self.world.process_at_rank(0).broadcast_into(values);
        }
        fn abort(&self, code: i32) {
            self.world.abort(code);
        }
    }
}
