#pragma once
// SIGTERM and SIGUSR1 (Slurm's preemption warning) ask a run to stop at the next step
// boundary: every rank then saves a checkpoint and exits with kInterruptedExitCode.
namespace sparser::train {

// EX_TEMPFAIL: "try again later"; slurm/sweep.sbatch requeues a task that exits with it.
inline constexpr int kInterruptedExitCode = 75;

void install_stop_handlers();
// For a command that does not train (--dry-run): the signals act as by default again, and
// one that came already ends the process now.
void restore_default_stop_actions();
bool stop_requested();
// For tests: request a stop as the signal handler would.
void request_stop();

}  // namespace sparser::train
