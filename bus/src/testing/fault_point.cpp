// Fault points armed through the environment (see fault_point.hpp); test builds only.
#include "testing/fault_point.hpp"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>

namespace ringbus::detail {
namespace {

// A parsed "<name>[:<n>]" and how many times the point was passed so far.
struct Armed {
  char name[128] = {};
  long target = 0;  // 0: not armed
  std::atomic<long> seen{0};
};

void parse(const char* env, Armed& a) {
  a.name[0] = '\0';
  a.target = 0;
  a.seen.store(0, std::memory_order_relaxed);
  const char* spec = std::getenv(env);
  if (spec == nullptr || *spec == '\0') return;
  const char* colon = std::strrchr(spec, ':');
  const std::size_t len =
      colon != nullptr ? static_cast<std::size_t>(colon - spec) : std::strlen(spec);
  if (len == 0 || len >= sizeof a.name) return;
  std::memcpy(a.name, spec, len);
  a.target = colon != nullptr ? std::strtol(colon + 1, nullptr, 10) : 1;
  if (a.target < 1) a.target = 1;
}

Armed& kill_spec() {
  static Armed a;
  static const bool kParsed = (parse("RINGBUS_KILL_AT", a), true);
  (void)kParsed;
  return a;
}

Armed& fail_spec() {
  static Armed a;
  static const bool kParsed = (parse("RINGBUS_FAIL_AT", a), true);
  (void)kParsed;
  return a;
}

std::atomic<FaultHook> hook_fn{nullptr};
std::atomic<void*> hook_arg{nullptr};

bool hit(Armed& a, const char* name) {
  if (a.target == 0 || std::strcmp(a.name, name) != 0) return false;
  // relaxed: a counter private to this process's test run.
  return a.seen.fetch_add(1, std::memory_order_relaxed) + 1 == a.target;
}

}  // namespace

void kill_point(const char* name) noexcept {
  // acquire: pairs with set_fault_hook(); the argument is stored before the function.
  if (FaultHook hook = hook_fn.load(std::memory_order_acquire)) {
    hook(name, hook_arg.load(std::memory_order_relaxed));
  }
  if (hit(kill_spec(), name)) ::kill(::getpid(), SIGKILL);
}

void reload_fault_points() noexcept {
  parse("RINGBUS_KILL_AT", kill_spec());
  parse("RINGBUS_FAIL_AT", fail_spec());
}

void set_fault_hook(FaultHook hook, void* arg) noexcept {
  hook_arg.store(arg, std::memory_order_relaxed);
  // release: the argument is visible before the hook is.
  hook_fn.store(hook, std::memory_order_release);
}

bool fault_point_fails(const char* name) noexcept { return hit(fail_spec(), name); }

}  // namespace ringbus::detail
