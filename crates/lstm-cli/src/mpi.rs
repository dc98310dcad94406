//! `mpirun -np N lstm train ...` (cargo feature `mpi`): the library's [`Collective`] over MPI
//! (the `mpi` crate, rsmpi, on the system's OpenMPI or MPICH).
//!
//! The gradient buffer goes out as one `MPI_Allreduce` (sum) per step, the weights as one
//! `MPI_Bcast` from rank 0 at the start and before each checkpoint. A rank that dies makes
//! `mpirun` end the others (OpenMPI's default), so no rank waits forever in a collective.

use std::time::Instant;

use lstm::tasks::parallel::Collective;
use mpi::collective::SystemOperation;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

/// The world communicator of an MPI run, with the time spent in its all-reduces.
pub struct Mpi {
    // dropping the universe finalizes MPI: it lives as long as the communicator
    _universe: mpi::environment::Universe,
    world: SimpleCommunicator,
    scratch: Vec<f32>,
    /// Seconds spent in [`Collective::allreduce_sum`].
    pub reduce_seconds: f64,
    /// Number of all-reduces.
    pub reduces: u64,
}

impl Mpi {
    /// Initialises MPI when the process was started by an MPI launcher (`mpirun`, `srun`);
    /// `None` when it was not (a plain `lstm train`), or with a world of one process.
    pub fn init() -> Option<Mpi> {
        let launched = [
            "OMPI_COMM_WORLD_SIZE",
            "PMI_SIZE",
            "PMIX_RANK",
            "MPI_LOCALNRANKS",
        ]
        .iter()
        .any(|v| std::env::var_os(v).is_some());
        if !launched {
            return None;
        }
        let universe = mpi::initialize()?;
        let world = universe.world();
        if world.size() < 2 {
            return None;
        }
        Some(Mpi {
            _universe: universe,
            world,
            scratch: Vec::new(),
            reduce_seconds: 0.0,
            reduces: 0,
        })
    }
}

impl Collective for Mpi {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    fn allreduce_sum(&mut self, buf: &mut [f32]) -> lstm::Result<()> {
        let t = Instant::now();
        self.scratch.clear();
        self.scratch.extend_from_slice(buf);
        // rsmpi aborts the job on an MPI error (MPI_ERRORS_ARE_FATAL), so there is no error
        // to return here
        self.world
            .all_reduce_into(&self.scratch[..], buf, SystemOperation::sum());
        self.reduce_seconds += t.elapsed().as_secs_f64();
        self.reduces += 1;
        Ok(())
    }

    fn broadcast(&mut self, buf: &mut [f32]) -> lstm::Result<()> {
        self.world.process_at_rank(0).broadcast_into(buf);
        Ok(())
    }
}
