// Fault points armed through the environment (see fault_point.hpp); test builds only.
#include "testing/fault_point.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
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
  const char* spec = std::getenv(env);
  if (spec == nullptr || *spec == '\0') return;
  const char* colon = std::strrchr(spec, ':');
  const std::size_t len = colon != nullptr ? static_cast<std::size_t>(colon - spec) : std::strlen(spec);
  if (len == 0 || len >= sizeof a.name) return;
  std::memcpy(a.name, spec, len);
  a.target = colon != nullptr ? std::strtol(colon + 1, nullptr, 10) : 1;
  if (a.target < 1) a.target = 1;
}

Armed& kill_spec() {
  static Armed a = [] {
    Armed x;
    parse("RINGBUS_KILL_AT", x);
    return x;
  }();
  return a;
}

Armed& fail_spec() {
  static Armed a = [] {
    Armed x;
    parse("RINGBUS_FAIL_AT", x);
    return x;
  }();
  return a;
}

bool hit(Armed& a, const char* name) {
  if (a.target == 0 || std::strcmp(a.name, name) != 0) return false;
  // relaxed: a counter private to this process's test run.
  return a.seen.fetch_add(1, std::memory_order_relaxed) + 1 == a.target;
}

}  // namespace

void kill_point(const char* name) noexcept {
  if (hit(kill_spec(), name)) ::kill(::getpid(), SIGKILL);
}

bool fault_point_fails(const char* name) noexcept { return hit(fail_spec(), name); }

}  // namespace ringbus::detail
