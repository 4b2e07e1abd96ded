#include "train/stop_signal.h"

#include <csignal>

namespace sparser::train {

namespace {
volatile std::sig_atomic_t g_stop = 0;  // the signal that asked for a stop
extern "C" void on_stop_signal(int signal) { g_stop = signal; }
}  // namespace

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  // A stop is a flag read at step boundaries: reads and waits it interrupts go on.
  action.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGUSR1, &action, nullptr);
}

void restore_default_stop_actions() {
  std::signal(SIGTERM, SIG_DFL);
  std::signal(SIGUSR1, SIG_DFL);
  if (g_stop != 0) std::raise(g_stop);
}

bool stop_requested() { return g_stop != 0; }
void request_stop() { g_stop = SIGTERM; }

}  // namespace sparser::train
